"""Webhook signature timestamps at the edges of the tolerance, in the future, in the past and
malformed: the pure ``verify`` with a fixed clock, and the inbound desk over real HTTP with the
same fixed clock (the request is signed by the independent ``standardwebhooks`` package)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest
from standardwebhooks.webhooks import Webhook

from collector.delivery.signing import (
    DEFAULT_TOLERANCE_S,
    Refusal,
    SigningError,
    Verified,
    secret_key,
    sign_headers,
    verify,
)
from collector.http.desk_inbound import PATH, InboundDesk
from collector.http.desk_server import InboundServer
from collector.pipeline.ticket_service import TicketService
from collector.store.tickets import TicketStore
from tests.support.tickets import ENGINE, Devices, fault, make_book, new_secret

SECRET = new_secret()
NOW = 1_800_000_000  # a fixed clock: nothing here depends on how fast the machine is
BODY = b'{"fault":"x","action":"ack"}'


def headers(stamp: str, *, body: bytes = BODY, sign_at: int | None = None) -> dict[str, str]:
    signed = sign_headers(SECRET, "msg_1", sign_at if sign_at is not None else NOW, body)
    return {**signed, "webhook-timestamp": stamp}


@pytest.mark.parametrize("offset", [-DEFAULT_TOLERANCE_S, 0, DEFAULT_TOLERANCE_S])
def test_timestamps_inside_the_tolerance_are_accepted(offset: int) -> None:
    at = NOW + offset
    checked = verify(SECRET, headers(str(at), sign_at=at), BODY, float(NOW))
    assert checked == Verified("msg_1", at)


@pytest.mark.parametrize(
    ("offset", "refusal"),
    [
        (-DEFAULT_TOLERANCE_S - 1, Refusal.TIMESTAMP_TOO_OLD),
        (-86_400, Refusal.TIMESTAMP_TOO_OLD),
        (DEFAULT_TOLERANCE_S + 1, Refusal.TIMESTAMP_IN_FUTURE),
        (86_400 * 365, Refusal.TIMESTAMP_IN_FUTURE),
    ],
)
def test_correctly_signed_but_outside_the_tolerance_is_refused(
    offset: int, refusal: Refusal
) -> None:
    at = NOW + offset
    # The signature is right for that timestamp: only the time check can refuse it.
    assert verify(SECRET, headers(str(at), sign_at=at), BODY, float(NOW)) is refusal


def test_fractional_now_is_compared_exactly() -> None:
    at = NOW + DEFAULT_TOLERANCE_S
    assert verify(SECRET, headers(str(at), sign_at=at), BODY, NOW + 0.5) == Verified("msg_1", at)
    assert verify(SECRET, headers(str(at), sign_at=at), BODY, NOW - 0.5) is (
        Refusal.TIMESTAMP_IN_FUTURE
    )


@pytest.mark.parametrize("stamp", ["soon", "1.8e9", "1800000000.5", "0x6b49d200", "", " "])
def test_malformed_timestamps_are_refused_with_their_reason(stamp: str) -> None:
    checked = verify(SECRET, headers(stamp), BODY, float(NOW))
    expected = Refusal.MISSING_HEADERS if not stamp else Refusal.BAD_TIMESTAMP
    assert checked is expected


def test_tolerance_is_the_argument_given() -> None:
    at = NOW + 11
    assert verify(SECRET, headers(str(at), sign_at=at), BODY, float(NOW), 10) is (
        Refusal.TIMESTAMP_IN_FUTURE
    )
    assert verify(SECRET, headers(str(at), sign_at=at), BODY, float(NOW), 11) == Verified(
        "msg_1", at
    )


# -- the inbound desk over HTTP, its clock fixed -------------------------------------------


@pytest.fixture
def desk(store: TicketStore) -> Iterator[tuple[TicketService, str]]:
    service = TicketService(
        book_factory=lambda: make_book(Devices()), store=store, sla=ENGINE, sinks=("desk",)
    )
    server = InboundServer(InboundDesk(service, SECRET, clock=lambda: float(NOW)))
    server.start()
    try:
        yield service, f"http://127.0.0.1:{server.port}{PATH}"
    finally:
        server.stop()


def post(url: str, number: str, stamp: str, sign_at: int) -> httpx.Response:
    body = json.dumps({"fault": number, "action": "ack"})
    signature = Webhook(SECRET).sign("msg_http", datetime.fromtimestamp(sign_at, UTC), body)
    sent = {"webhook-id": "msg_http", "webhook-timestamp": stamp, "webhook-signature": signature}
    return httpx.post(url, content=body, headers=sent)


@pytest.mark.parametrize(
    ("offset", "stamp", "error"),
    [
        (DEFAULT_TOLERANCE_S + 1, None, "timestamp_in_future"),
        (-DEFAULT_TOLERANCE_S - 1, None, "timestamp_too_old"),
        (0, "not-a-number", "bad_timestamp"),
        (0, "1800000000.0", "bad_timestamp"),
    ],
)
def test_inbound_refuses_bad_timestamps_and_changes_nothing(
    desk: tuple[TicketService, str], offset: int, stamp: str | None, error: str
) -> None:
    service, url = desk
    [opened] = service.on_fault(fault("opened", "2027-01-15T07:00:00"))
    number = opened.ticket.number
    at = NOW + offset
    reply = post(url, number, stamp or str(at), at)
    assert reply.status_code == 401, reply.text
    assert reply.json()["error"] == error
    ticket = service.book.get(number)
    assert ticket is not None and ticket.acknowledged_at is None


def test_inbound_accepts_the_edges_of_the_tolerance(desk: tuple[TicketService, str]) -> None:
    service, url = desk
    [opened] = service.on_fault(fault("opened", "2027-01-15T07:00:00"))
    number = opened.ticket.number
    at = NOW + DEFAULT_TOLERANCE_S
    reply = post(url, number, str(at), at)
    assert reply.status_code == 200, reply.text
    assert reply.json()["state"] == "acknowledged"


def test_signed_headers_verify_as_they_are() -> None:
    signed = sign_headers(SECRET, "msg_9", NOW, BODY)
    assert set(signed) == {"webhook-id", "webhook-timestamp", "webhook-signature"}
    assert signed["webhook-timestamp"] == str(NOW) and signed["webhook-id"] == "msg_9"
    assert verify(SECRET, signed, BODY, float(NOW)) == Verified("msg_9", NOW)
    assert verify(SECRET, signed, BODY + b" ", float(NOW)) is Refusal.BAD_SIGNATURE


@pytest.mark.parametrize(
    ("secret", "message"),
    [
        ("whsec_", "webhook secret is empty"),
        ("whsec_not base64!", "webhook secret must be 'whsec_' followed by base64"),
        ("whsec_QUJD*", "webhook secret must be 'whsec_' followed by base64"),  # no lenient decode
    ],
)
def test_a_bad_secret_is_refused_with_its_reason(secret: str, message: str) -> None:
    with pytest.raises(SigningError) as raised:
        secret_key(secret)
    assert str(raised.value) == message
