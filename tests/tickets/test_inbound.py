"""The inbound desk endpoint over real HTTP on loopback, signed by an independent library."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from standardwebhooks.webhooks import Webhook

from collector.http.desk_inbound import PATH, InboundDesk
from collector.http.desk_server import InboundServer
from collector.pipeline.ticket_service import TicketService
from collector.store.tickets import TicketStore
from collector.tickets.model import EventKind, Outcome
from tests.support.inbound import SECRET, open_now
from tests.support.tickets import ENGINE, Devices, make_book, new_secret


@pytest.fixture
def desk(store: TicketStore) -> Iterator[tuple[TicketService, str]]:
    service = TicketService(
        book_factory=lambda: make_book(Devices()),
        store=store,
        sla=ENGINE,
        sinks=("desk",),
    )
    server = InboundServer(InboundDesk(service, SECRET))
    server.start()
    try:
        yield service, f"http://127.0.0.1:{server.port}{PATH}"
    finally:
        server.stop()


def post(
    url: str, payload: object, *, msg_id: str, sent: datetime | None = None, secret: str = SECRET
) -> httpx.Response:
    body = json.dumps(payload)
    sent = sent or datetime.now(UTC)
    signature = Webhook(secret).sign(msg_id, sent, body)
    headers = {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(sent.timestamp())),
        "webhook-signature": signature,
        "content-type": "application/json",
    }
    return httpx.post(url, content=body, headers=headers)


def test_valid_ack_stops_the_response_clock(desk: tuple[TicketService, str]) -> None:
    service, url = desk
    number = open_now(service)
    reply = post(url, {"fault": number, "action": "ack", "actor": "alice"}, msg_id="msg_1")
    assert reply.status_code == 200, reply.text
    assert reply.json() == {"result": "applied", "fault": number, "state": "acknowledged"}
    ticket = service.book.get(number)
    assert ticket is not None
    response = ticket.target("response")
    assert response is not None and response.outcome is Outcome.MET
    assert response.stopped_at is not None
    # Nothing about the response target fires any more, even long after its deadline.
    later = service.tick(datetime.now(UTC) + timedelta(days=2))
    assert all(e.detail.get("target") != "response" for e in later)
    assert any(e.kind is EventKind.BREACHED for e in later) is False


def test_same_webhook_id_is_applied_once(
    desk: tuple[TicketService, str], store: TicketStore
) -> None:
    service, url = desk
    number = open_now(service)
    first = post(url, {"fault": number, "action": "comment", "comment": "on it"}, msg_id="msg_2")
    again = post(url, {"fault": number, "action": "comment", "comment": "on it"}, msg_id="msg_2")
    assert first.status_code == again.status_code == 200
    assert first.json() == again.json()
    assert store.outbox_counts()["pending"] == 2  # opened + one comment


def test_bad_signature_refused(desk: tuple[TicketService, str]) -> None:
    service, url = desk
    number = open_now(service)
    reply = post(url, {"fault": number, "action": "ack"}, msg_id="msg_3", secret=new_secret())
    assert reply.status_code == 401
    assert reply.json()["error"] == "bad_signature"
    ticket = service.book.get(number)
    assert ticket is not None and ticket.acknowledged_at is None


def test_replayed_old_timestamp_refused(desk: tuple[TicketService, str]) -> None:
    service, url = desk
    number = open_now(service)
    old = datetime.now(UTC) - timedelta(minutes=10)
    reply = post(url, {"fault": number, "action": "ack"}, msg_id="msg_4", sent=old)
    assert reply.status_code == 401
    assert reply.json() == {
        "error": "timestamp_too_old",
        "detail": "webhook-timestamp is too old: replayed or delayed request",
    }


def test_unknown_fault_number_is_404_with_reason(desk: tuple[TicketService, str]) -> None:
    _, url = desk
    reply = post(url, {"fault": "FD-20991231-9999", "action": "ack"}, msg_id="msg_5")
    assert reply.status_code == 404
    assert reply.json() == {
        "error": "unknown_fault_number",
        "detail": "no ticket numbered FD-20991231-9999",
    }


def test_ended_ticket_and_bad_request(desk: tuple[TicketService, str]) -> None:
    service, url = desk
    number = open_now(service)
    assert post(url, {"fault": number, "action": "cancel"}, msg_id="msg_6").status_code == 200
    ended = post(url, {"fault": number, "action": "ack"}, msg_id="msg_7")
    assert ended.status_code == 409 and ended.json()["error"] == "ticket_ended"
    bad = post(url, {"fault": number, "action": "reboot"}, msg_id="msg_8")
    assert bad.status_code == 400 and "action" in bad.json()["detail"]
    missing = httpx.post(url, content=b"{}")
    assert missing.status_code == 401 and missing.json()["error"] == "missing_headers"
