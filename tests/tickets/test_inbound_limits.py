"""The inbound endpoints under hostile input: endless bodies, bad lengths, bad headers, bad JSON.

Every refusal is a JSON 4xx. The memory check runs the Starlette endpoint in its own process
and reads its resident set from /proc while a 300 MiB chunked unsigned body is offered.
"""

from __future__ import annotations

import json
import os
import select
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from collector.http.desk_inbound import PATH, InboundDesk
from collector.http.desk_server import InboundServer
from collector.pipeline.ticket_service import TicketService
from collector.store import ticket_tables as schema
from collector.store.tickets import INBOUND_KEEP_S, TicketStore
from tests.support.inbound import SECRET, open_now, raw_request, signed
from tests.support.inbound_app import SECRET as APP_SECRET
from tests.support.tickets import ENGINE, Devices, make_book

ROOT = Path(__file__).resolve().parents[2]
MIB = 1024 * 1024


def _kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(f"{field} not in /proc/{pid}/status")


def offer_chunked(port: int, path: str, total: int) -> tuple[bytes, int]:
    """Send up to ``total`` bytes chunked, stopping as soon as the server answers or hangs up;
    returns (the answer, bytes sent)."""
    sock = socket.create_connection(("127.0.0.1", port))
    sock.sendall(
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        "Transfer-Encoding: chunked\r\n\r\n".encode()
    )
    block = b"[" * (64 * 1024)
    chunk = b"%x\r\n" % len(block) + block + b"\r\n"
    sock.setblocking(False)
    sent, answer, pending = 0, b"", memoryview(b"")
    deadline = time.monotonic() + 120
    while sent < total and time.monotonic() < deadline:
        readable, writable, _ = select.select([sock], [sock], [], 1.0)
        if readable:
            break
        if writable:
            if not pending:
                pending = memoryview(chunk)
            try:
                n = sock.send(pending)
            except (BrokenPipeError, ConnectionResetError):
                break
            pending, sent = pending[n:], sent + n
    sock.setblocking(True)
    sock.settimeout(10)
    try:
        while b"\r\n\r\n" not in answer or not answer.rstrip().endswith(b"}"):
            data = sock.recv(65536)
            if not data:
                break
            answer += data
    except (ConnectionResetError, TimeoutError):
        pass
    sock.close()
    return answer, sent


def test_300_mib_chunked_unsigned_body_is_refused_while_rss_stays_flat(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.support.inbound_app", f"sqlite:///{tmp_path / 't.db'}"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env=env,
        cwd=ROOT,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().decode()
        assert line.startswith("port "), line
        port = int(line.split()[1])
        # one ordinary request first, so lazily imported code is in the baseline
        assert httpx.post(f"http://127.0.0.1:{port}{PATH}", content=b"{}").status_code == 401
        before_rss, before_peak = _kib(proc.pid, "VmRSS"), _kib(proc.pid, "VmHWM")
        answer, sent = offer_chunked(port, PATH, 300 * MIB)
        after_rss, after_peak = _kib(proc.pid, "VmRSS"), _kib(proc.pid, "VmHWM")
        head, _, body = answer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 413"), answer[:200]
        assert json.loads(body.split(b"\r\n")[-1] or body)["error"] == "body_too_large"
        grown_mb = (max(after_rss, after_peak) - min(before_rss, before_peak)) / 1024
        print(json.dumps({"offered_mib": 300, "sent_mib": round(sent / MIB, 2),
                          "rss_growth_mb": round(grown_mb, 2)}))  # fmt: skip
        assert grown_mb < 10
        # the server is still fine
        assert httpx.post(f"http://127.0.0.1:{port}{PATH}", content=b"{}").status_code == 401
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture
def stdlib_desk(store: TicketStore) -> Iterator[tuple[TicketService, int]]:
    service = TicketService(
        book_factory=lambda: make_book(Devices()), store=store, sla=ENGINE, sinks=("desk",)
    )
    server = InboundServer(InboundDesk(service, SECRET))
    server.start()
    try:
        yield service, server.port
    finally:
        server.stop()


@pytest.mark.parametrize(
    ("length", "status", "error"),
    [
        (None, 411, "length_required"),
        ("-1", 400, "bad_content_length"),
        ("12abc", 400, "bad_content_length"),
        (str(10**12), 413, "body_too_large"),
    ],
)
def test_stdlib_server_refuses_bad_lengths_before_reading(
    stdlib_desk: tuple[TicketService, int], length: str | None, status: int, error: str
) -> None:
    _, port = stdlib_desk
    head = f"POST {PATH} HTTP/1.1\r\nHost: x\r\n"
    if length is None:
        head += "Transfer-Encoding: chunked\r\n"
    else:
        head += f"Content-Length: {length}\r\n"
    got, body = raw_request(port, (head + "\r\n").encode())
    assert (got, body["error"]) == (status, error)


def test_stdlib_server_refuses_an_endless_chunked_body_at_once(
    stdlib_desk: tuple[TicketService, int],
) -> None:
    _, port = stdlib_desk
    answer, sent = offer_chunked(port, PATH, 300 * MIB)
    assert answer.startswith(b"HTTP/1.1 411"), answer[:100]
    assert sent < 64 * MIB


def test_hostile_bodies_and_headers_get_json_4xx(stdlib_desk: tuple[TicketService, int]) -> None:
    service, port = stdlib_desk
    url = f"http://127.0.0.1:{port}{PATH}"
    number = open_now(service)
    deep = b"[" * 30000 + b"]" * 30000
    cases: list[tuple[bytes, dict[str, str | bytes], int, str]] = [
        (deep, dict(signed(deep, "d1")), 400, "bad_json"),
        (b"\xff\xfe", dict(signed(b"", "d2")), 401, "bad_signature"),
        (b'{"fault": 12, "action": "ack"}', {}, 400, "bad_request"),
        (b'{"fault": "x", "action": ["ack"]}', {}, 400, "bad_request"),
        (
            json.dumps({"fault": number, "action": "resolve", "repaired": "yes"}).encode(),
            {},
            400,
            "bad_request",
        ),
        (json.dumps({"fault": "F" * 40, "action": "ack"}).encode(), {}, 400, "bad_request"),
        (b"[1, 2]", {}, 400, "bad_request"),
    ]
    for i, (body, headers, status, error) in enumerate(cases):
        sent_headers: dict[str, str | bytes] = headers or dict(signed(body, f"c{i}"))
        reply = httpx.post(url, content=body, headers=sent_headers)
        assert (reply.status_code, reply.json()["error"]) == (status, error), (i, reply.text)
    latin = {**signed(b"{}", "n1"), "webhook-signature": b"v1,\xe9t\xe9"}
    reply = httpx.post(url, content=b"{}", headers=latin)
    assert (reply.status_code, reply.json()["error"]) == (401, "bad_headers")
    long_id = "x" * 300
    body = json.dumps({"fault": number, "action": "ack"}).encode()
    reply = httpx.post(url, content=body, headers=signed(body, long_id))
    assert (reply.status_code, reply.json()["error"]) == (400, "id_too_long")
    ticket = service.book.get(number)
    assert ticket is not None and ticket.acknowledged_at is None


def test_a_comment_sent_with_an_ack_is_applied(
    stdlib_desk: tuple[TicketService, int], store: TicketStore
) -> None:
    service, port = stdlib_desk
    number = open_now(service)
    body = json.dumps({"fault": number, "action": "ack", "comment": "on my way"}).encode()
    reply = httpx.post(f"http://127.0.0.1:{port}{PATH}", content=body, headers=signed(body, "k1"))
    assert reply.status_code == 200, reply.text
    assert reply.json()["results"] == ["applied", "applied"]
    import sqlalchemy as sa

    with store.engine.connect() as conn:
        bodies = conn.execute(sa.select(schema.outbox.c.body).order_by(schema.outbox.c.id))
        events = [json.loads(b) for b in bodies.scalars()]
    assert [e["type"] for e in events] == ["ticket_opened", "acknowledged", "commented"]
    assert events[2]["detail"]["comment"] == "on my way"


def test_inbound_seen_is_pruned(store: TicketStore) -> None:
    now = 2_000_000_000.0
    with store.transaction() as tx:
        tx.remember_inbound("old", 200, "{}", now - INBOUND_KEEP_S - 1)
        tx.remember_inbound("recent", 200, "{}", now - 60)
    with store.transaction() as tx:
        tx.remember_inbound("new", 200, "{}", now)
        assert tx.inbound_response("old") is None
        assert tx.inbound_response("recent") == (200, "{}")


assert APP_SECRET.startswith("whsec_")
