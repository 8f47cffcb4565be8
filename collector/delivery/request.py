"""What an adapter asks the delivery framework to send, and the adapter contract."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class Request:
    method: str
    url: str
    json: Mapping[str, Any] | None
    headers: Mapping[str, str] = field(default_factory=dict)

    def body(self) -> bytes:
        if self.json is None:
            return b""
        return json.dumps(self.json, separators=(",", ":"), ensure_ascii=False).encode()


class MissingRemoteRef(Exception):
    """The desk's own id for this ticket is unknown (its opening was never delivered)."""


#: One request, several sent in order (all must succeed), or nothing to send.
Requests = Request | tuple[Request, ...] | None


class Adapter(Protocol):
    """Maps one ticket event (the webhook schema dict) to the desk API's request.

    ``ref`` is what the desk called the ticket when it was created (None before that; always
    None for adapters with ``uses_refs`` False). Returns None when the desk has nothing to do
    for this event type.

    Adapters with ``uses_refs`` make creates idempotent: before sending ``ticket_opened`` the
    worker asks the desk (``lookup``) whether it already holds a ticket tagged with our fault
    number (a create that timed out after the desk made it, a worker killed before recording
    the answer) and, when it does, records that id instead of creating a second ticket.
    """

    @property
    def uses_refs(self) -> bool: ...

    def request(self, event: Mapping[str, Any], ref: str | None) -> Requests: ...

    def ref_from(self, event: Mapping[str, Any], response: Any) -> str | None: ...

    def lookup(self, event: Mapping[str, Any]) -> Request | None: ...

    def ref_from_lookup(self, response: Any) -> str | None: ...


def summary(event: Mapping[str, Any]) -> str:
    ticket = event["ticket"]
    where = ticket["device"] or f"site {ticket['site']}"
    return f"{ticket['number']} {ticket['fault_kind']} on {where} ({ticket['impact']})"


def describe(event: Mapping[str, Any]) -> str:
    """One plain-text line per event for desks that keep a comment trail."""
    ticket = event["ticket"]
    detail = event.get("detail", {})
    parts = [f"{event['type']} at {event['at']}", f"state {ticket['state']}"]
    if "target" in detail:
        parts.append(f"{detail['action']} on {detail['target']} (due {detail['due']})")
    if "reason" in detail:
        parts.append(f"reason {detail['reason']}")
    if "comment" in detail:
        parts.append(f"comment: {detail['comment']}")
    parts.append(f"level {ticket['level']} of {ticket['policy']}, coverage {ticket['coverage']}")
    return "; ".join(parts)
