"""Delivery to a real HTTP receiver on loopback: outages, retries, order, signatures, SIGKILL."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import jsonschema
import sqlalchemy as sa
from standardwebhooks.webhooks import Webhook

from collector.delivery.adapters.jira import JiraAdapter
from collector.delivery.adapters.webhook import WebhookAdapter
from collector.delivery.backoff import Backoff
from collector.delivery.sinks import Sink
from collector.delivery.worker import DeliveryWorker
from collector.store import ticket_tables as schema
from collector.store.tickets import TicketStore
from tests.support.outbox import SCHEMA, outbox_rows
from tests.support.receiver import Answer, Receiver
from tests.support.services import free_port, require_program, wait_for_port
from tests.support.tickets import make_events, new_secret, wait_until

ROOT = Path(__file__).resolve().parents[2]


def check_delivered_once_in_order(receiver: Receiver, ids: list[str], secret: str) -> None:
    accepted = receiver.accepted()
    got = [r.headers["webhook-id"] for r in accepted]
    assert sorted(got) == sorted(ids), "every event arrives, none twice"
    assert all(r.headers["idempotency-key"] == r.headers["webhook-id"] for r in accepted)
    by_ticket: dict[str, list[int]] = {}
    verifier = Webhook(secret)
    for r in accepted:
        verifier.verify(r.body, r.headers)  # the standardwebhooks package, not our code
        body = r.json()
        jsonschema.validate(body, SCHEMA)
        by_ticket.setdefault(body["ticket"]["number"], []).append(body["seq"])
    for seqs in by_ticket.values():
        assert seqs == sorted(seqs), "per-ticket order"


async def test_outage_then_500s_then_429_every_event_arrives(tmp_path: Path) -> None:
    store = TicketStore(f"sqlite:///{tmp_path / 't.db'}")
    store.migrate()
    ids = make_events(store, devices=3)
    port = free_port()
    secret = new_secret()
    receiver = Receiver(port)
    sink = Sink("desk", WebhookAdapter(receiver.url), secret=secret, backoff=Backoff(0.05, 0.2))
    worker = DeliveryWorker(store, {"desk": sink}, poll_s=0.05)
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    try:
        # The desk is down: connection refused, the rows wait and retry.
        await wait_until(lambda: all(r.attempts >= 2 for r in outbox_rows(store) if r.seq == 1))
        assert all(
            (r.last_error or "").startswith("connect_failed: ")
            for r in outbox_rows(store)
            if r.seq == 1
        )
        assert receiver.received == []

        def answers(n: int) -> Answer:
            if n < 5:
                return Answer(500)
            if n == 5:
                return Answer(429, {"Retry-After": "1"})
            return Answer(200)

        receiver.set_answers(answers)
        receiver.start()
        await wait_until(lambda: store.outbox_counts()["pending"] == 0)
    finally:
        stop.set()
        await task
        receiver.stop()
    assert store.outbox_counts() == {"pending": 0, "delivered": len(ids), "dead": 0}
    check_delivered_once_in_order(receiver, ids, secret)
    statuses = [r.status for r in receiver.received]
    assert statuses[:6] == [500, 500, 500, 500, 500, 429]
    throttled = receiver.received[5]
    retry = next(
        r
        for r in receiver.received[6:]
        if r.headers["webhook-id"] == throttled.headers["webhook-id"]
    )
    assert retry.at - throttled.at >= 1.0, "Retry-After honoured"
    store.close()


async def test_dead_letter_after_configured_time_and_on_rejection(tmp_path: Path) -> None:
    store = TicketStore(f"sqlite:///{tmp_path / 't.db'}")
    store.migrate()
    make_events(store, devices=1)
    port = free_port()
    receiver = Receiver(port, lambda n: Answer(503) if n < 1000 else Answer(200))
    receiver.start()
    sink = Sink("desk", WebhookAdapter(receiver.url), backoff=Backoff(0.02, 0.05), dead_after_s=0.3)
    worker = DeliveryWorker(store, {"desk": sink}, poll_s=0.02)
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    try:
        await wait_until(lambda: store.outbox_counts()["dead"] == 1)
        # A desk that refuses the request (400) dead-letters at once: retrying cannot help.
        receiver.set_answers(lambda _n: Answer(400, body=b'{"error": "bad field"}'))
        make_events(store, devices=2)  # a new ticket whose events go to a rejecting desk
        worker.notify()
        await wait_until(lambda: store.outbox_counts()["dead"] == 2)
        sent = len(receiver.received)
        await worker.run_once()  # nothing more is due: each ticket's rest waits behind its dead row
        assert len(receiver.received) == sent
    finally:
        stop.set()
        await task
        receiver.stop()
    rows = outbox_rows(store)
    # The opening of each ticket is dead; its later events are held (pending), not sent.
    assert [r.state for r in rows if r.seq == 1] == ["dead", "dead"]
    assert all(r.state == "pending" for r in rows if r.seq > 1)
    assert any("still failing after 0.3s: HTTP 503" in r.last_error for r in rows if r.last_error)
    assert any(r.last_error.startswith("rejected: HTTP 400") for r in rows if r.last_error)
    assert worker.metrics.dead._value.get() == 2  # the alert gauge
    store.close()


def test_sigkill_during_delivery_then_restart_delivers_the_rest(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 't.db'}"
    store = TicketStore(db)
    store.migrate()
    ids = make_events(store, devices=25)
    port = free_port()
    secret = new_secret()

    def slow(n: int) -> Answer:
        time.sleep(0.02)  # keep requests in flight long enough to kill the worker mid-way
        return Answer(200)

    receiver = Receiver(port, slow)
    receiver.start()
    wait_for_port(port)
    sinks = tmp_path / "sinks.yaml"
    sinks.write_text(
        f"sinks:\n  - name: desk\n    type: webhook\n    url: {receiver.url}\n"
        "    secret_env: DESK_SECRET\n"
    )
    env = {**os.environ, "DESK_SECRET": secret}
    cmd = [sys.executable, "-m", "collector", "deliver", "--db", db, "--sinks", str(sinks)]
    cmd += ["--poll", "0.05"]
    log = (tmp_path / "deliver.log").open("w")
    first = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 30
        while len(receiver.accepted()) < 10:
            assert time.monotonic() < deadline, "first worker delivered nothing"
            assert first.poll() is None, (tmp_path / "deliver.log").read_text()
            time.sleep(0.005)
        first.send_signal(signal.SIGKILL)
        first.wait()
    finally:
        if first.poll() is None:
            first.kill()
    assert store.outbox_counts()["pending"] > 0, "killed during delivery"
    second = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 60
        while store.outbox_counts()["pending"] > 0:
            assert time.monotonic() < deadline, "restarted worker did not finish"
            assert second.poll() is None
            time.sleep(0.05)
        second.send_signal(signal.SIGTERM)
        assert second.wait(timeout=10) == 0
    finally:
        if second.poll() is None:
            second.kill()
        receiver.stop()
        log.close()
    store.close()
    # At-least-once across a crash: a request in flight at the kill may arrive twice; the
    # desk drops the repeat by its webhook-id. After that, each event exactly once, in order.
    seen: set[str] = set()
    first_arrivals = []
    for r in receiver.accepted():
        if r.headers["webhook-id"] not in seen:
            seen.add(r.headers["webhook-id"])
            first_arrivals.append(r)
    assert seen == set(ids)
    assert len(receiver.accepted()) - len(ids) <= 16  # at most the pass in progress at the kill
    verifier = Webhook(secret)
    per_ticket: dict[str, list[int]] = {}
    for r in first_arrivals:
        verifier.verify(r.body, r.headers)
        body = r.json()
        per_ticket.setdefault(body["ticket"]["number"], []).append(body["seq"])
    assert all(seqs == sorted(seqs) for seqs in per_ticket.values())


def self_signed(tmp_path: Path) -> tuple[Path, Path]:
    openssl = require_program("openssl")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


async def test_tls_is_verified(tmp_path: Path) -> None:
    store = TicketStore(f"sqlite:///{tmp_path / 't.db'}")
    store.migrate()
    ids = make_events(store, devices=1)
    cert, key = self_signed(tmp_path)
    receiver = Receiver(free_port(), tls=(cert, key))
    receiver.start()
    stop = asyncio.Event()
    untrusted = Sink("desk", WebhookAdapter(receiver.url), backoff=Backoff(0.05, 0.1))
    worker = DeliveryWorker(store, {"desk": untrusted}, poll_s=0.05)
    task = asyncio.create_task(worker.run(stop))
    try:
        # An unknown certificate is refused (and retried), never sent to blindly.
        await wait_until(lambda: any("CERTIFICATE_VERIFY_FAILED" in (r.last_error or "")
                                     for r in outbox_rows(store)))  # fmt: skip
        stop.set()
        await task
        assert receiver.received == []
        trusted = Sink("desk", WebhookAdapter(receiver.url), ca_file=str(cert))
        stop = asyncio.Event()
        task = asyncio.create_task(DeliveryWorker(store, {"desk": trusted}, poll_s=0.05).run(stop))
        await wait_until(lambda: store.outbox_counts()["pending"] == 0)
    finally:
        stop.set()
        await task
        receiver.stop()
    assert sorted(r.headers["idempotency-key"] for r in receiver.accepted()) == sorted(ids)
    store.close()


async def test_desk_adapter_keeps_the_desks_own_id(tmp_path: Path) -> None:
    """Jira answers the creation with its issue key; later events address that issue."""
    store = TicketStore(f"sqlite:///{tmp_path / 't.db'}")
    store.migrate()
    make_events(store, devices=1)

    def jira(n: int) -> Answer:
        if n == 0:  # the look-up before the create: no such request yet
            return Answer(200, body=b'{"issues": []}')
        return (
            Answer(201, body=b'{"issueId": "10001", "issueKey": "OPS-1"}')
            if n == 1
            else Answer(200)
        )

    receiver = Receiver(free_port(), jira)
    receiver.start()
    base = receiver.url.removesuffix("/hook")
    adapter = JiraAdapter(base, "1", "10", transitions={"resolved": "31"})
    sink = Sink("jira", adapter, headers={"authorization": "Basic eDp5"})
    service_rows = outbox_rows(store)
    with store.engine.begin() as conn:  # the events were queued for "desk": send them to jira
        conn.execute(sa.update(schema.outbox).values(sink="jira"))
    stop = asyncio.Event()
    task = asyncio.create_task(DeliveryWorker(store, {"jira": sink}, poll_s=0.05).run(stop))
    try:
        await wait_until(lambda: store.outbox_counts()["pending"] == 0)
    finally:
        stop.set()
        await task
        receiver.stop()
    assert [(r.method, r.path.split("?")[0]) for r in receiver.received] == [
        ("GET", "/rest/api/3/search/jql"),
        ("POST", "/rest/servicedeskapi/request"),
        ("POST", "/rest/servicedeskapi/request/OPS-1/comment"),  # acknowledged
        ("POST", "/rest/servicedeskapi/request/OPS-1/comment"),  # commented
        ("POST", "/rest/servicedeskapi/request/OPS-1/transition"),  # resolved
    ]
    assert len(service_rows) == 4
    assert all(r.headers["authorization"] == "Basic eDp5" for r in receiver.received)
    assert store.remote_ref("jira", service_rows[0].ticket) == "OPS-1"
    store.close()


async def test_the_outbox_gauge_follows_commits_and_deliveries(tmp_path: Path) -> None:
    store = TicketStore(f"sqlite:///{tmp_path / 't.db'}")
    store.migrate()
    ids = make_events(store, devices=2)
    receiver = Receiver(free_port())
    sink = Sink("desk", WebhookAdapter(receiver.url), secret=new_secret(), backoff=Backoff(30, 60))
    worker = DeliveryWorker(store, {"desk": sink}, poll_s=60.0)  # no polling: events drive it
    gauge = worker.metrics.outbox

    def shown(state: str) -> float:
        return float(gauge.labels(state)._value.get())

    stop = asyncio.Event()
    receiver.start()
    task = asyncio.create_task(worker.run(stop))
    try:
        await wait_until(lambda: shown("delivered") == len(ids), 10)  # at delivery, not later
        assert shown("pending") == 0
        receiver.set_answers(lambda _n: Answer(503))  # the desk fails; new rows are committed
        more = make_events(store, devices=1)
        worker.notify()
        await wait_until(lambda: shown("pending") == len(more), 10)
        assert shown("delivered") == len(ids)
    finally:
        stop.set()
        await task
        receiver.stop()
    store.close()
