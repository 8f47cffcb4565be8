"""Talking to the inbound desk endpoint as a desk would: a shared secret, signed headers (by the
standardwebhooks package, not our code), raw HTTP requests and a ticket opened just now."""

from __future__ import annotations

import json
import socket
from datetime import UTC, datetime

from standardwebhooks.webhooks import Webhook

from collector.pipeline.ticket_service import TicketService
from tests.support.tickets import fault, new_secret

SECRET = new_secret()


def open_now(service: TicketService) -> str:
    now = datetime.now(UTC).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%S")
    [opened] = service.on_fault(fault("opened", now))
    return opened.ticket.number


def raw_request(port: int, head: bytes, body: bytes = b"") -> tuple[int, dict[str, str]]:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(head + body)
        answer = b""
        while b"\r\n\r\n" not in answer or not answer.rstrip().endswith(b"}"):
            data = sock.recv(65536)
            if not data:
                break
            answer += data
    status = int(answer.split(b" ", 2)[1])
    return status, json.loads(answer.partition(b"\r\n\r\n")[2])


def signed(body: bytes, msg_id: str = "m1", secret: str = SECRET) -> dict[str, str]:
    now = datetime.now(UTC)
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": Webhook(secret).sign(msg_id, now, body.decode()),
    }
