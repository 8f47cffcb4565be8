"""Inbound desk actions: a desk posts ack / onsite / resolve / comment for a fault number.

Two doors. ``/desk/v1/actions`` takes our own action body signed with the operator's shared
secret (Standard Webhooks) and may act on any ticket. ``/desk/v1/sinks/<sink>`` is one sink's
desk: it authenticates with that sink's own inbound secret, in the desk's native webhook format
(``desk_native``) or, for a ``webhook`` sink, our action body, and may act only on tickets
routed to that sink; any other fault number is "unknown" to it, so one tenant's desk cannot
touch (or probe) another tenant's tickets.

Requests are refused with a named reason and a JSON 4xx, never a 500: a bad signature, a
timestamp outside the tolerance (a replayed request), a body over ``MAX_BODY`` (the transports
stop reading there), JSON that is not JSON, too deep, or of the wrong types. A request id seen
before gets the same answer again and changes nothing, so a desk may retry freely; those
answers are kept ``INBOUND_KEEP_S``. The action's time is when we received it.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from collector.delivery.signing import DEFAULT_TOLERANCE_S, Refusal, verify
from collector.http import desk_native
from collector.pipeline.ticket_service import TicketService
from collector.store.tickets import WEBHOOK_ID_MAX, TicketTx
from collector.tickets.inputs import DeskAction, DeskCommand, Verdict
from collector.tickets.model import LIVE_STATES, TicketEvent

PATH = "/desk/v1/actions"
SINK_PREFIX = "/desk/v1/sinks/"
ACTIONS = frozenset(a.value for a in DeskAction)
MAX_BODY = 64 * 1024
NUMBER_MAX = 32  # the tickets.number column

_STATUS = {
    Verdict.APPLIED: 200,
    Verdict.ALREADY_DONE: 200,
    Verdict.UNKNOWN_NUMBER: 404,
    Verdict.TICKET_ENDED: 409,
    Verdict.NOT_ALLOWED: 409,
}


@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    body: Mapping[str, Any]

    def encoded(self) -> bytes:
        return json.dumps(self.body, separators=(",", ":")).encode()


def refused(status: int, error: str, detail: str) -> Reply:
    return Reply(status, {"error": error, "detail": detail})


def too_large() -> Reply:
    return refused(413, "body_too_large", f"at most {MAX_BODY} bytes")


def check_length(value: str | None) -> Reply | None:
    """A ``Content-Length`` that is not a plain non-negative integer, or too large."""
    if value is None:
        return None
    if not (value.isascii() and value.isdigit()):
        return refused(400, "bad_content_length", "Content-Length must be a number of bytes")
    return too_large() if int(value) > MAX_BODY else None


_REFUSAL_DETAIL = {
    Refusal.MISSING_HEADERS: "webhook-id, webhook-timestamp and webhook-signature are required",
    Refusal.BAD_HEADERS: "webhook-id, webhook-timestamp and webhook-signature must be ASCII",
    Refusal.BAD_TIMESTAMP: "webhook-timestamp is not an integer of seconds",
    Refusal.TIMESTAMP_TOO_OLD: "webhook-timestamp is too old: replayed or delayed request",
    Refusal.TIMESTAMP_IN_FUTURE: "webhook-timestamp is in the future",
    Refusal.BAD_SIGNATURE: "webhook-signature does not match the body",
}


@dataclass(frozen=True, slots=True)
class DeskSink:
    """A sink whose desk may call back: its type, inbound secrets and state map."""

    name: str
    kind: str
    secrets: tuple[str, ...]
    table: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class _Request:
    msg_id: str
    number: str | None
    ref: str | None
    actions: tuple[desk_native.Act, ...]
    actor: str
    repaired: bool = False


class InboundDesk:
    def __init__(
        self,
        service: TicketService,
        secret: str | None,
        *,
        sinks: Mapping[str, DeskSink] | None = None,
        clock: Callable[[], float] = time.time,
        tolerance_s: int = DEFAULT_TOLERANCE_S,
        on_commit: Callable[[Sequence[TicketEvent]], None] | None = None,
    ) -> None:
        self._on_commit = on_commit  # e.g. wake the delivery worker
        self._service = service
        self._secret = secret
        self._sinks = dict(sinks or {})
        self._clock = clock
        self._tolerance_s = tolerance_s
        self._lock = threading.Lock()  # the ticket book is single-threaded

    @property
    def shared(self) -> bool:
        return self._secret is not None

    def handle(self, headers: Mapping[str, str], body: bytes) -> Reply:
        """``/desk/v1/actions`` (the shared secret, any ticket); ``headers`` keys lower case."""
        if self._secret is None:
            return refused(404, "not_found", "no shared desk secret is configured")
        return self._standard(self._secret, None, headers, body)

    def handle_sink(self, name: str, headers: Mapping[str, str], body: bytes) -> Reply:
        """``/desk/v1/sinks/<name>``: that sink's desk, its tickets only."""
        sink = self._sinks.get(name)
        if sink is None:
            return refused(404, "not_found", "no desk callback is configured at this path")
        if len(body) > MAX_BODY:
            return too_large()
        if sink.kind == "webhook":
            return self._standard(sink.secrets, sink.name, headers, body)
        auth, parse = desk_native.DESKS[sink.kind]
        try:
            auth(sink.secrets, headers, body)
            data = _load(body)
            if isinstance(data, Reply):
                return data
            table = {**desk_native.DEFAULT_MAPS.get(sink.kind, {}), **sink.table}
            native = parse(table, headers, body, data)
        except desk_native.Refused as exc:
            return refused(exc.status, exc.error, exc.detail)
        if not native.actions:
            return Reply(202, {"result": "ignored", "detail": "nothing to act on in this event"})
        request = _Request(
            f"{sink.name}:{native.msg_id}",
            native.number,
            native.ticket_ref,
            native.actions,
            native.actor,
        )
        return self._run(request, sink.name, native=True)

    def _standard(
        self,
        secret: str | tuple[str, ...],
        scope: str | None,
        headers: Mapping[str, str],
        body: bytes,
    ) -> Reply:
        now = self._clock()
        if len(body) > MAX_BODY:
            return too_large()
        checked = verify(secret, headers, body, now, self._tolerance_s)
        if isinstance(checked, Refusal):
            return refused(401, checked.value, _REFUSAL_DETAIL[checked])
        fields = _parse(body)
        if isinstance(fields, Reply):
            return fields
        action = DeskAction(fields["action"])
        comment = fields.get("comment")
        extra = {key: fields[key] for key in _CONTRACT_FIELDS if fields.get(key) is not None}
        actions: list[desk_native.Act] = [(action, comment, extra)]
        if action not in _WITH_REASON and comment:  # an ack's note is applied too
            actions = [(action, None, extra), (DeskAction.COMMENT, comment, {})]
        msg_id = checked.msg_id if scope is None else f"{scope}:{checked.msg_id}"
        request = _Request(
            msg_id,
            fields["fault"],
            None,
            tuple(actions),
            fields.get("actor") or "desk",
            bool(fields.get("repaired", False)),
        )
        return self._run(request, scope, native=False)

    def _run(self, request: _Request, scope: str | None, *, native: bool) -> Reply:
        if len(request.msg_id) > WEBHOOK_ID_MAX:
            return refused(400, "id_too_long", f"request ids are at most {WEBHOOK_ID_MAX} chars")
        now = self._clock()
        events: list[TicketEvent] = []
        with self._lock, self._service.transaction() as tx:
            seen = tx.inbound_response(request.msg_id)
            if seen is not None:
                return Reply(seen[0], json.loads(seen[1]))
            at = datetime.fromtimestamp(now, UTC)
            reply = self._apply(request, scope, at, tx, events, native=native)
            tx.remember_inbound(request.msg_id, reply.status, reply.encoded().decode(), now)
        if events and self._on_commit is not None:
            self._on_commit(events)
        return reply

    def _apply(
        self,
        request: _Request,
        scope: str | None,
        at: datetime,
        tx: TicketTx,
        events: list[TicketEvent],
        *,
        native: bool,
    ) -> Reply:
        number = request.number
        if request.ref is not None and scope is not None:
            number = tx.ticket_for_ref(scope, request.ref) or number
        if number is None or len(number) > NUMBER_MAX:
            return refused(404, "unknown_fault_number", "no ticket of this desk matches")
        stored = tx.find(number)
        if stored is None or (scope is not None and not tx.routed(number, scope)):
            return refused(404, "unknown_fault_number", f"no ticket numbered {number}")
        if stored.state not in LIVE_STATES:
            if native:  # the desk cannot do anything about it: do not make it retry
                return Reply(200, {"result": "ticket_ended", "fault": number})
            return refused(409, "ticket_ended", f"ticket {number} is {stored.state.value}")
        results: list[str] = []
        first: Reply | None = None
        for action, comment, extra in request.actions:
            command = DeskCommand(
                number=number,
                action=action,
                at=at,
                actor=request.actor,
                comment=comment,
                repaired=request.repaired,
                **extra,
            )
            outcome = self._service.on_desk(command, tx)
            events.extend(outcome.events)
            results.append(outcome.verdict.value)
            status = _STATUS[outcome.verdict]
            if first is None and status != 200 and not native:
                first = refused(status, outcome.verdict.value, outcome.reason)
        if first is not None:
            return first
        ticket = self._service.book.get(number)
        state = ticket.state.value if ticket is not None else "ended"
        body: dict[str, Any] = {"result": results[0], "fault": number, "state": state}
        if len(results) > 1:
            body["results"] = results
        return Reply(200, body)


def _load(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (ValueError, RecursionError):  # not JSON, not UTF-8, or nested beyond the parser
        return refused(400, "bad_json", "the body is not JSON (or is nested too deep)")


# The fields of the contract's actions (set_level, exempt, coverage, start, defer).
_CONTRACT_FIELDS = ("target", "level", "exemption", "coverage", "charge", "release")
# Actions whose comment is their reason, not a note of its own.
_WITH_REASON = frozenset({DeskAction.COMMENT, DeskAction.SET_LEVEL, DeskAction.EXEMPT,
                          DeskAction.COVERAGE})  # fmt: skip


def _parse(body: bytes) -> Mapping[str, Any] | Reply:
    data = _load(body)
    if isinstance(data, Reply):
        return data
    if not isinstance(data, dict):
        return refused(400, "bad_request", "the body must be a JSON object")
    number, action = data.get("fault"), data.get("action")
    if not isinstance(number, str) or not number:
        return refused(400, "bad_request", "key 'fault': a fault number is required")
    if len(number) > NUMBER_MAX:
        return refused(400, "bad_request", f"key 'fault': at most {NUMBER_MAX} characters")
    if not isinstance(action, str) or action not in ACTIONS:
        return refused(400, "bad_request", f"key 'action': one of {', '.join(sorted(ACTIONS))}")
    for key in ("actor", "comment", *_CONTRACT_FIELDS):
        if key in data and data[key] is not None and not isinstance(data[key], str):
            return refused(400, "bad_request", f"key {key!r}: text expected")
    if "repaired" in data and not isinstance(data["repaired"], bool):
        return refused(400, "bad_request", "key 'repaired': true or false expected")
    return data
