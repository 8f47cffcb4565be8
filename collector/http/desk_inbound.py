"""Inbound desk actions: a desk posts ack / onsite / resolve / comment for a fault number.

Requests are signed like our webhooks (Standard Webhooks, the desk's own secret) and refused
with a named reason when the signature is bad or the timestamp is outside the tolerance (a
replayed old request). A ``webhook-id`` seen before gets the same answer again and changes
nothing, so a desk may retry freely. The action's time is when we received it.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from collector.delivery.signing import DEFAULT_TOLERANCE_S, Refusal, verify
from collector.pipeline.ticket_service import TicketService
from collector.store.tickets import TicketTx
from collector.tickets.inputs import DeskAction, DeskCommand, Verdict
from collector.tickets.model import LIVE_STATES, TicketEvent

PATH = "/desk/v1/actions"
ACTIONS = frozenset(a.value for a in DeskAction)
MAX_BODY = 64 * 1024

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


def _refused(status: int, error: str, detail: str) -> Reply:
    return Reply(status, {"error": error, "detail": detail})


_REFUSAL_DETAIL = {
    Refusal.MISSING_HEADERS: "webhook-id, webhook-timestamp and webhook-signature are required",
    Refusal.BAD_TIMESTAMP: "webhook-timestamp is not an integer of seconds",
    Refusal.TIMESTAMP_TOO_OLD: "webhook-timestamp is too old: replayed or delayed request",
    Refusal.TIMESTAMP_IN_FUTURE: "webhook-timestamp is in the future",
    Refusal.BAD_SIGNATURE: "webhook-signature does not match the body",
}


class InboundDesk:
    def __init__(
        self,
        service: TicketService,
        secret: str,
        *,
        clock: Callable[[], float] = time.time,
        tolerance_s: int = DEFAULT_TOLERANCE_S,
        on_commit: Callable[[Sequence[TicketEvent]], None] | None = None,
    ) -> None:
        self._on_commit = on_commit  # e.g. wake the delivery worker
        self._service = service
        self._secret = secret
        self._clock = clock
        self._tolerance_s = tolerance_s
        self._lock = threading.Lock()  # the ticket book is single-threaded

    def handle(self, headers: Mapping[str, str], body: bytes) -> Reply:
        """Answer one request; ``headers`` keys lower case."""
        now = self._clock()
        if len(body) > MAX_BODY:
            return _refused(413, "body_too_large", f"at most {MAX_BODY} bytes")
        checked = verify(self._secret, headers, body, now, self._tolerance_s)
        if isinstance(checked, Refusal):
            return _refused(401, checked.value, _REFUSAL_DETAIL[checked])
        parsed = _parse(body)
        if isinstance(parsed, Reply):
            return parsed
        events: list[TicketEvent] = []
        with self._lock, self._service.transaction() as tx:
            seen = tx.inbound_response(checked.msg_id)
            if seen is not None:
                return Reply(seen[0], json.loads(seen[1]))
            at = datetime.fromtimestamp(now, UTC)
            reply = self._apply(parsed, at, tx, events)
            tx.remember_inbound(checked.msg_id, reply.status, reply.encoded().decode(), now)
        if events and self._on_commit is not None:
            self._on_commit(events)
        return reply

    def _apply(
        self, fields: Mapping[str, Any], at: datetime, tx: TicketTx, events: list[TicketEvent]
    ) -> Reply:
        number = fields["fault"]
        stored = tx.find(number)
        if stored is None:
            return _refused(404, "unknown_fault_number", f"no ticket numbered {number}")
        if stored.state not in LIVE_STATES:
            return _refused(409, "ticket_ended", f"ticket {number} is {stored.state.value}")
        command = DeskCommand(
            number=number,
            action=DeskAction(fields["action"]),
            at=at,
            actor=fields.get("actor") or "desk",
            comment=fields.get("comment"),
            repaired=bool(fields.get("repaired", False)),
            **{key: fields.get(key) for key in _CONTRACT_FIELDS},
        )
        outcome = self._service.on_desk(command, tx)
        events.extend(outcome.events)
        status = _STATUS[outcome.verdict]
        if status != 200:
            return _refused(status, outcome.verdict.value, outcome.reason)
        ticket = self._service.book.get(number)
        state = ticket.state.value if ticket is not None else "ended"
        return Reply(200, {"result": outcome.verdict.value, "fault": number, "state": state})


# The fields of the contract's actions (set_level, exempt, coverage, start, defer).
_CONTRACT_FIELDS = ("target", "level", "exemption", "coverage", "charge", "release")


def _parse(body: bytes) -> Mapping[str, Any] | Reply:
    try:
        data = json.loads(body)
    except ValueError:
        return _refused(400, "bad_json", "the body is not JSON")
    if not isinstance(data, dict):
        return _refused(400, "bad_request", "the body must be a JSON object")
    number, action = data.get("fault"), data.get("action")
    if not isinstance(number, str) or not number:
        return _refused(400, "bad_request", "key 'fault': a fault number is required")
    if action not in ACTIONS:
        return _refused(400, "bad_request", f"key 'action': one of {', '.join(sorted(ACTIONS))}")
    for key in ("actor", "comment", *_CONTRACT_FIELDS):
        if key in data and not isinstance(data[key], str):
            return _refused(400, "bad_request", f"key {key!r}: text expected")
    return data
