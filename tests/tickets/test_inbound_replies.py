"""The inbound desk's answers, called directly with an explicit clock (no HTTP): every refusal
with its status, error and detail, each limit at and one past its edge, a request id seen
before, the answers for applied, ended and unknown tickets, and a sink's own door."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from standardwebhooks.webhooks import Webhook

from collector.http.desk_inbound import MAX_BODY, DeskSink, InboundDesk, Reply, check_length
from collector.pipeline.ticket_service import TicketService
from collector.store.tickets import TicketStore
from collector.tickets.model import TicketEvent
from tests.support.inbound import SECRET
from tests.support.tickets import ENGINE, Devices, fault, make_book, new_secret

NOW = datetime(2026, 11, 25, 2, 0, tzinfo=UTC)
SINK_SECRET = new_secret()
JIRA_SECRET = "jira-webhook-secret-5e0c"
ACTIONS = (
    "ack, cancel, comment, coverage, defer, exempt, onsite, pause, received, resolve, resume,"
    " set_level, start"
)


class Desk:
    """A ticket service on SQLite and its inbound desk, at the fixed instant NOW."""

    def __init__(
        self, tmp_path: Path, *, secret: str | None = SECRET, tolerance_s: int = 300
    ) -> None:
        self.store = TicketStore(f"sqlite:///{tmp_path / 'tickets.db'}")
        self.store.migrate()
        self.service = TicketService(
            book_factory=lambda: make_book(Devices()),
            store=self.store,
            sla=ENGINE,
            sinks=("desk", "other", "jira"),
        )
        self.committed: list[Sequence[TicketEvent]] = []
        sinks = {
            "desk": DeskSink("desk", "webhook", (SINK_SECRET,)),
            "unrouted": DeskSink("unrouted", "webhook", (SINK_SECRET,)),
            "jira": DeskSink("jira", "jira", (JIRA_SECRET,)),
            "jira-b": DeskSink("jira-b", "jira", (JIRA_SECRET,)),  # no ticket is routed to it
        }
        self.desk = InboundDesk(
            self.service,
            secret,
            sinks=sinks,
            clock=NOW.timestamp,
            tolerance_s=tolerance_s,
            on_commit=self.committed.append,
        )

    def open(self, device: str = "r1") -> str:
        [opened] = self.service.on_fault(fault("opened", "2026-11-25T01:59:00", device=device))
        return opened.ticket.number

    def post(
        self,
        payload: Any,
        *,
        msg_id: str = "m1",
        sent: datetime = NOW,
        secret: str = SECRET,
        sink: str | None = None,
    ) -> tuple[int, dict[str, Any]]:
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        headers = signed(body, msg_id, sent, secret)
        reply = self.desk.handle(headers, body) if sink is None else (
            self.desk.handle_sink(sink, headers, body)
        )  # fmt: skip
        return answer(reply)


def signed(body: bytes, msg_id: str, sent: datetime = NOW, secret: str = SECRET) -> dict[str, str]:
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(sent.timestamp())),
        "webhook-signature": Webhook(secret).sign(msg_id, sent, body.decode()),
    }


def answer(reply: Reply) -> tuple[int, dict[str, Any]]:
    assert json.loads(reply.encoded()) == reply.body  # what the transports send
    return reply.status, dict(reply.body)


def refusal(status: int, error: str, detail: str) -> tuple[int, dict[str, Any]]:
    return status, {"error": error, "detail": detail}


@pytest.fixture
def desk(tmp_path: Path) -> Desk:
    return Desk(tmp_path)


def test_an_ack_is_applied_and_its_events_handed_on(desk: Desk) -> None:
    number = desk.open()
    assert desk.post({"fault": number, "action": "ack", "actor": "alice"}) == (
        200,
        {"result": "applied", "fault": number, "state": "acknowledged"},
    )
    ticket = desk.service.book.get(number)
    assert ticket is not None and ticket.acknowledged_at == NOW  # the time we received it
    [events] = desk.committed
    assert [e.kind.value for e in events] == ["acknowledged"]
    assert events[0].detail["actor"] == "alice"


def test_an_action_without_an_actor_is_the_desks(desk: Desk) -> None:
    number = desk.open()
    desk.post({"fault": number, "action": "ack"})
    [[event]] = desk.committed
    assert event.detail["actor"] == "desk"


def test_an_ack_with_a_note_applies_both(desk: Desk) -> None:
    number = desk.open()
    status, body = desk.post({"fault": number, "action": "ack", "comment": "on my way"})
    assert (status, body) == (
        200,
        {
            "result": "applied",
            "fault": number,
            "state": "acknowledged",
            "results": ["applied", "applied"],
        },
    )
    [events] = desk.committed
    assert [e.kind.value for e in events] == ["acknowledged", "commented"]


def test_a_request_id_seen_before_gets_the_same_answer_and_changes_nothing(desk: Desk) -> None:
    number = desk.open()
    first = desk.post({"fault": number, "action": "comment", "comment": "one"}, msg_id="r1")
    again = desk.post({"fault": number, "action": "comment", "comment": "one"}, msg_id="r1")
    assert first == again and first[0] == 200
    assert len(desk.committed) == 1


def test_a_repeated_action_is_already_done(desk: Desk) -> None:
    number = desk.open()
    desk.post({"fault": number, "action": "ack"}, msg_id="a1")
    assert desk.post({"fault": number, "action": "ack"}, msg_id="a2") == (
        200,
        {"result": "already_done", "fault": number, "state": "acknowledged"},
    )


def test_an_action_the_ticket_does_not_allow_is_refused_with_the_books_reason(
    desk: Desk,
) -> None:
    number = desk.open()
    assert desk.post({"fault": number, "action": "resolve"}, msg_id="r1")[0] == 200
    assert desk.post({"fault": number, "action": "ack"}, msg_id="r2") == refusal(
        409, "not_allowed", "ticket is resolved; cannot ack"
    )
    assert len(desk.committed) == 1  # the resolve only


def test_unknown_and_ended_tickets(desk: Desk) -> None:
    assert desk.post({"fault": "FD-404", "action": "ack"}, msg_id="u1") == refusal(
        404, "unknown_fault_number", "no ticket numbered FD-404"
    )
    number = desk.open()
    assert desk.post({"fault": number, "action": "cancel"}, msg_id="c1") == (
        200,
        {"result": "applied", "fault": number, "state": "ended"},  # no longer in the book
    )
    assert desk.post({"fault": number, "action": "ack"}, msg_id="c2") == refusal(
        409, "ticket_ended", f"ticket {number} is cancelled"
    )


def bad(detail: str) -> tuple[int, dict[str, Any]]:
    return refusal(400, "bad_request", detail)


FAULT_REQUIRED = "key 'fault': a fault number is required"


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (b"{nope", refusal(400, "bad_json", "the body is not JSON (or is nested too deep)")),
        ([1], bad("the body must be a JSON object")),
        ({"action": "ack"}, bad(FAULT_REQUIRED)),
        ({"fault": "", "action": "ack"}, bad(FAULT_REQUIRED)),
        ({"fault": "F" * 33, "action": "ack"}, bad("key 'fault': at most 32 characters")),
        ({"fault": "F1", "action": "wave"}, bad(f"key 'action': one of {ACTIONS}")),
        ({"fault": "F1", "action": 1}, bad(f"key 'action': one of {ACTIONS}")),
        ({"fault": "F1", "action": "ack", "actor": 5}, bad("key 'actor': text expected")),
        ({"fault": "F1", "action": "comment", "comment": 5}, bad("key 'comment': text expected")),
        (
            {"fault": "F1", "action": "exempt", "exemption": []},
            bad("key 'exemption': text expected"),
        ),
        (
            {"fault": "F1", "action": "resolve", "repaired": "yes"},
            bad("key 'repaired': true or false expected"),
        ),
        (
            {"fault": "F" * 32, "action": "ack", "actor": None},  # 32 characters: looked up
            refusal(404, "unknown_fault_number", f"no ticket numbered {'F' * 32}"),
        ),
    ],
)
def test_a_bad_body_is_refused_with_what_is_wrong(
    desk: Desk, payload: Any, expected: tuple[int, dict[str, Any]]
) -> None:
    assert desk.post(payload) == expected


def test_signatures_and_their_timestamps_are_checked(desk: Desk) -> None:
    body = json.dumps({"fault": "F1", "action": "ack"}).encode()
    handle = desk.desk.handle
    assert answer(handle({}, body)) == refusal(
        401,
        "missing_headers",
        "webhook-id, webhook-timestamp and webhook-signature are required",
    )
    latin = {**signed(body, "m1"), "webhook-id": "m\u00e91"}
    assert answer(handle(latin, body)) == refusal(
        401, "bad_headers", "webhook-id, webhook-timestamp and webhook-signature must be ASCII"
    )
    stamp = {**signed(body, "m1"), "webhook-timestamp": "soon"}
    assert answer(handle(stamp, body)) == refusal(
        401, "bad_timestamp", "webhook-timestamp is not an integer of seconds"
    )
    assert desk.post(body, sent=NOW - timedelta(seconds=301)) == refusal(
        401, "timestamp_too_old", "webhook-timestamp is too old: replayed or delayed request"
    )
    assert desk.post(body, sent=NOW + timedelta(seconds=301)) == refusal(
        401, "timestamp_in_future", "webhook-timestamp is in the future"
    )
    assert desk.post(body, secret=new_secret()) == refusal(
        401, "bad_signature", "webhook-signature does not match the body"
    )
    assert desk.post(body, sent=NOW - timedelta(seconds=300))[0] == 404  # within: checked on


def test_bodies_up_to_the_limit_are_read(desk: Desk) -> None:
    number = desk.open()
    payload = {"fault": number, "action": "comment", "comment": ""}
    room = MAX_BODY - len(json.dumps(payload).encode())
    at_limit = json.dumps({**payload, "comment": "x" * room}).encode()
    assert len(at_limit) == MAX_BODY
    assert desk.post(at_limit, msg_id="b1")[0] == 200
    too_large = refusal(413, "body_too_large", f"at most {MAX_BODY} bytes")
    assert desk.post(at_limit + b" ", msg_id="b2") == too_large
    assert desk.post(at_limit + b" ", msg_id="b3", secret=SINK_SECRET, sink="desk") == too_large
    assert desk.post(at_limit, msg_id="b4", secret=SINK_SECRET, sink="desk")[0] == 200


def test_request_ids_are_at_most_255_characters(desk: Desk) -> None:
    number = desk.open()
    assert desk.post({"fault": number, "action": "ack"}, msg_id="i" * 256) == refusal(
        400, "id_too_long", "request ids are at most 255 chars"
    )
    assert desk.post({"fault": number, "action": "ack"}, msg_id="i" * 255)[0] == 200


def test_without_a_shared_secret_the_shared_door_is_not_there(tmp_path: Path) -> None:
    desk = Desk(tmp_path, secret=None)
    assert not desk.desk.shared
    assert desk.post({"fault": "F1", "action": "ack"}) == refusal(
        404, "not_found", "no shared desk secret is configured"
    )


def test_a_sinks_door_takes_its_own_secret_and_its_own_tickets(desk: Desk) -> None:
    number = desk.open()
    payload = {"fault": number, "action": "ack"}
    assert desk.post(payload, sink="nowhere") == refusal(
        404, "not_found", "no desk callback is configured at this path"
    )
    assert desk.post(payload, sink="desk")[1]["error"] == "bad_signature"  # the shared secret
    assert desk.post(payload, secret=SINK_SECRET, sink="unrouted") == refusal(
        404, "unknown_fault_number", f"no ticket numbered {number}"
    )
    assert desk.post(payload, secret=SINK_SECRET, sink="desk") == (
        200,
        {"result": "applied", "fault": number, "state": "acknowledged"},
    )
    # the sink's request ids are its own: the shared door's "m1" is another request
    assert desk.post({"fault": number, "action": "comment", "comment": "x"})[0] == 200
    assert [e.kind.value for events in desk.committed for e in events] == [
        "acknowledged",
        "commented",
    ]


def test_the_timestamp_tolerance_is_the_desks_own(tmp_path: Path) -> None:
    desk = Desk(tmp_path, tolerance_s=60)
    assert desk.post({"fault": "F1", "action": "ack"}, sent=NOW - timedelta(seconds=61)) == (
        refusal(
            401, "timestamp_too_old", "webhook-timestamp is too old: replayed or delayed request"
        )
    )
    assert desk.post({"fault": "F1", "action": "ack"}, sent=NOW - timedelta(seconds=60))[0] == 404


def test_a_contract_action_carries_its_fields(desk: Desk) -> None:
    number = desk.open()
    payload = {"fault": number, "action": "set_level", "level": "2", "comment": "escalated"}
    assert desk.post(payload)[0] == 200
    ticket = desk.service.book.get(number)
    assert ticket is not None and ticket.level == "2"


def test_a_resolve_reported_as_a_repair_is_recorded(desk: Desk) -> None:
    plain, repaired = desk.open("r2"), desk.open("r1")
    assert desk.post({"fault": plain, "action": "resolve"}, msg_id="p1")[0] == 200
    assert desk.service.book.repairs == {}  # not said: not a repair
    assert desk.post({"fault": repaired, "action": "resolve", "repaired": True})[0] == 200
    assert set(desk.service.book.repairs) == {"r1"}


def jira_post(
    desk: Desk, data: Any, *, secret: str = JIRA_SECRET, sink: str = "jira"
) -> tuple[int, dict[str, Any]]:
    """A Jira Cloud webhook, signed as Jira signs it, without a delivery id header (the
    request id is then the body's digest)."""
    body = data if isinstance(data, bytes) else json.dumps(data).encode()
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return answer(desk.desk.handle_sink(sink, {"x-hub-signature": f"sha256={digest}"}, body))


def jira_comment(
    number: str | None, text: str = "checking the router", key: str = "OPS-7"
) -> dict[str, Any]:
    """A comment on the Jira issue ``key``, labelled with our fault number (if given)."""
    labels = [number] if number is not None else []
    return {
        "webhookEvent": "comment_created",
        "issue": {"key": key, "fields": {"labels": labels}},
        "comment": {"body": text, "author": {"displayName": "Bob"}},
    }


def test_a_native_desk_finds_a_ticket_by_its_own_issue_key(desk: Desk) -> None:
    number = desk.open()
    desk.store.set_remote_ref("jira", number, "OPS-9")  # what delivery learnt from Jira
    assert jira_post(desk, jira_comment(None, key="OPS-9"))[1]["fault"] == number
    assert jira_post(desk, jira_comment(None, key="OPS-9"), sink="jira-b") == refusal(
        404, "unknown_fault_number", "no ticket of this desk matches"
    )
    assert jira_post(desk, jira_comment(number, "again"), sink="jira-b") == refusal(
        404, "unknown_fault_number", f"no ticket numbered {number}"
    )


def test_a_native_desk_comments_on_its_ticket(desk: Desk) -> None:
    number = desk.open()
    assert jira_post(desk, jira_comment(number)) == (
        200,
        {"result": "applied", "fault": number, "state": "open"},
    )
    [[event]] = desk.committed
    assert (event.kind.value, event.detail["actor"]) == ("commented", "Bob")
    assert event.detail["comment"] == "checking the router"


def test_a_native_desks_refusals_and_events_without_an_action(desk: Desk) -> None:
    number = desk.open()
    assert jira_post(desk, jira_comment(number), secret="not-the-secret") == refusal(
        401, "bad_signature", "X-Hub-Signature does not match the body"
    )
    assert jira_post(desk, b"{nope") == refusal(
        400, "bad_json", "the body is not JSON (or is nested too deep)"
    )
    assert jira_post(desk, {"webhookEvent": "jira:issue_created"}) == (
        202,
        {"result": "ignored", "detail": "nothing to act on in this event"},
    )
    assert desk.committed == []


def test_a_native_desk_is_not_asked_to_retry_on_an_ended_ticket(desk: Desk) -> None:
    number = desk.open()
    desk.post({"fault": number, "action": "cancel", "comment": "test"})
    assert jira_post(desk, jira_comment(number, "too late")) == (
        200,
        {"result": "ticket_ended", "fault": number},
    )


@pytest.mark.parametrize(("length", "found"), [(32, True), (33, False)])
def test_a_native_desks_fault_number_is_at_most_32_characters(
    desk: Desk, length: int, found: bool
) -> None:
    number = "FD-" + "9" * (length - 3)
    detail = f"no ticket numbered {number}" if found else "no ticket of this desk matches"
    assert jira_post(desk, jira_comment(number)) == refusal(404, "unknown_fault_number", detail)


def test_a_content_length_is_a_plain_number_of_at_most_max_body_bytes() -> None:
    assert check_length(None) is None  # chunked: the transport stops reading at the limit
    assert check_length(str(MAX_BODY)) is None
    assert answer(too_large_for(MAX_BODY + 1)) == refusal(
        413, "body_too_large", f"at most {MAX_BODY} bytes"
    )
    for bad_length in ("-1", "12abc", "١٢"):  # the last: Arabic-Indic digits, not ASCII
        got = check_length(bad_length)
        assert got is not None
        assert answer(got) == refusal(
            400, "bad_content_length", "Content-Length must be a number of bytes"
        )


def too_large_for(length: int) -> Reply:
    got = check_length(str(length))
    assert got is not None
    return got


def test_replies_are_compact_json() -> None:
    reply = Reply(200, {"result": "applied", "fault": "FD-1"})
    assert reply.encoded() == b'{"result":"applied","fault":"FD-1"}'
