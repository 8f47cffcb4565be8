"""A small service desk: receives the collector's webhooks, checks their signatures, answers.

It verifies Standard Webhooks signatures with the standard library alone (HMAC-SHA256 over
``id.timestamp.body`` with the ``whsec_`` key), independently of the collector's signing code,
keeps every request (``webhooks.jsonl`` in the demo folder, headers and body, so a test can
check them again with another implementation) and acknowledges each new ticket over the
collector's inbound endpoint, signed with the desk's own secret, as a desk agent would.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import secrets
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

log = logging.getLogger("fleetdesk.demo")
TOLERANCE_S = 300


def new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


def _key(secret: str) -> bytes:
    return base64.b64decode(secret.removeprefix("whsec_"))


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(_key(secret), f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256)
    return "v1," + base64.b64encode(mac.digest()).decode()


def verified(secret: str, headers: dict[str, str], body: bytes, now: float) -> bool:
    msg_id, stamp = headers.get("webhook-id", ""), headers.get("webhook-timestamp", "")
    if not msg_id or not stamp.isdigit() or abs(now - int(stamp)) > TOLERANCE_S:
        return False
    expected = sign(secret, msg_id, int(stamp), body)
    given = headers.get("webhook-signature", "").split(" ")
    return any(hmac.compare_digest(expected, g) for g in given)


@dataclass
class Desk:
    """The receiver; :meth:`start` serves on a free loopback port in a thread."""

    workdir: Path
    secret: str = field(default_factory=new_secret)  # the collector signs with it
    desk_secret: str = field(default_factory=new_secret)  # we sign our actions with it
    ack_after_s: float = 2.0
    printer: Callable[[str], None] = print
    received: int = 0
    verified: int = 0
    refused: int = 0
    duplicates: int = 0
    by_type: Counter[str] = field(default_factory=Counter)
    tickets: dict[str, dict[str, Any]] = field(default_factory=dict)  # last state per number
    acks_sent: int = 0
    acks_ok: int = 0
    collector_url: str | None = None  # set once the collector listens
    _seen: set[str] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: ThreadingHTTPServer | None = None
    _timers: list[threading.Timer] = field(default_factory=list)

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}/hooks/fleetdesk"

    def start(self) -> Desk:
        desk = self
        self.workdir.mkdir(parents=True, exist_ok=True)
        journal = (self.workdir / "webhooks.jsonl").open("a", encoding="utf-8")

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                headers = {k.lower(): v for k, v in self.headers.items()}
                ok = verified(desk.secret, headers, body, time.time())
                with desk._lock:
                    journal.write(json.dumps({"headers": headers, "body": body.decode()}) + "\n")
                    journal.flush()
                self.send_response(200 if ok else 401)
                self.send_header("content-length", "0")
                self.end_headers()
                desk.take(headers, body, ok)

            def do_GET(self) -> None:
                page = json.dumps(desk.snapshot(), indent=2).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(page)))
                self.end_headers()
                self.wfile.write(page)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, name="desk", daemon=True).start()
        return self

    def stop(self) -> None:
        for timer in self._timers:
            timer.cancel()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def take(self, headers: dict[str, str], body: bytes, ok: bool) -> None:
        with self._lock:
            self.received += 1
            if not ok:
                self.refused += 1
                self.printer("  desk  REFUSED a webhook: bad signature")
                return
            self.verified += 1
            if headers["webhook-id"] in self._seen:  # a retry of what we have: idempotent
                self.duplicates += 1
                return
            self._seen.add(headers["webhook-id"])
            event = json.loads(body)
            kind, ticket = event["type"], event["ticket"]
            self.by_type[kind] += 1
            self.tickets[ticket["number"]] = ticket
        where = ticket["device"] or f"site {ticket['site']}"
        level = f"{ticket['policy']}/{ticket['level'] or '-'}"
        self.printer(
            f"  desk  {kind:<22} {ticket['number']}  {where:<18} {ticket['fault_kind']:<22} "
            f"{level}  {ticket['coverage']}  (signature ok)"
        )
        if kind == "ticket_opened" and self.collector_url and ticket["exempt"] is None:
            timer = threading.Timer(self.ack_after_s, self.act, (ticket["number"], "ack"))
            timer.daemon = True
            self._timers.append(timer)
            timer.start()

    def act(self, number: str, action: str) -> None:
        """POST a signed desk action to the collector's ``/desk/v1/actions``."""
        assert self.collector_url is not None
        body = json.dumps({"fault": number, "action": action, "actor": "demo-desk"}).encode()
        msg_id, now = f"desk-{secrets.token_hex(8)}", int(time.time())
        request = urllib.request.Request(
            f"{self.collector_url}/desk/v1/actions",
            data=body,
            method="POST",
            headers={
                "content-type": "application/json",
                "webhook-id": msg_id,
                "webhook-timestamp": str(now),
                "webhook-signature": sign(self.desk_secret, msg_id, now, body),
            },
        )
        with self._lock:
            self.acks_sent += 1
        try:
            with urllib.request.urlopen(request, timeout=5) as resp:
                ok = resp.status == 200
        except (urllib.error.URLError, OSError):
            ok = False
        with self._lock:
            self.acks_ok += int(ok)

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "received": self.received,
                "verified": self.verified,
                "refused": self.refused,
                "duplicates": self.duplicates,
                "by_type": dict(self.by_type),
                "acks_sent": self.acks_sent,
                "acks_ok": self.acks_ok,
                "tickets": len(self.tickets),
            }
