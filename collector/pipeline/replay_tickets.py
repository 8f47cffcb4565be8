"""The ticket stage of ``fleetdesk replay``: ticket events and desk lines.

Fault events from the rules engine drive a ticket book (fault numbers from an in-memory
counter: a replay touches no database); ``{"at": ..., "desk": {...}}`` recording lines drive
desk actions. Every ticket event becomes an output line with a ``ticket`` key (the fault
number), so it is told apart from the engine's fault lines.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from agent.wire import format_ts
from collector.pipeline.replay import BadLine
from collector.rules.faults import FaultEvent
from collector.tickets.book import TicketBook
from collector.tickets.from_rules import signal_of
from collector.tickets.inputs import DeskAction, DeskCommand, ticket_key
from collector.tickets.model import TicketEvent
from collector.tickets.numbers import MemoryNumbers, is_fault_number

Emit = Callable[[Mapping[str, Any]], None]


def event_line(event: TicketEvent) -> dict[str, Any]:
    ticket = event.ticket
    line: dict[str, Any] = {"event": event.kind.value, "at": format_ts(event.at)}
    line["ticket"] = ticket.number
    line["device" if ticket.device is not None else "site"] = ticket.device or ticket.site
    line |= {
        "fault": ticket.kind,
        "state": ticket.state.value,
        "policy": ticket.policy,
        "level": ticket.level,
        "coverage": ticket.coverage.value,
        "coverage_reason": ticket.coverage_reason.value,
        "charge": ticket.charge,
    }
    if ticket.claimed_exemption:
        line["claimed_exemption"] = ticket.claimed_exemption
    if ticket.deferred_to_release:
        line["deferred_to_release"] = ticket.target_release or True
    for key, value in event.detail.items():
        line[key] = format_ts(value) if isinstance(value, datetime) else value
    return line


class TicketStage:
    line_kinds: tuple[str, ...] = ("desk",)

    def __init__(self, book: TicketBook, emit: Emit) -> None:
        self.book = book
        self.emit = emit
        self._numbers = MemoryNumbers()

    def on_fault(self, event: FaultEvent) -> None:
        emit = self.emit
        for ticket_event in self.book.on_fault(signal_of(event), self._numbers):
            emit(event_line(ticket_event))

    def advance(self, at: datetime) -> None:
        emit = self.emit
        for ticket_event in self.book.tick(at):
            emit(event_line(ticket_event))

    def line(self, body: Mapping[str, Any], at: datetime) -> None:
        emit = self.emit
        desk = body.get("desk")
        if not isinstance(desk, dict):
            raise BadLine("'desk' must be an object")
        try:
            action = DeskAction(str(desk.get("action")))
        except ValueError:
            choices = ", ".join(a.value for a in DeskAction)
            raise BadLine(f"desk: 'action' must be one of {choices}") from None
        number = self._number(desk)

        def text(key: str) -> str | None:
            value = desk.get(key)
            return str(value) if value is not None else None

        command = DeskCommand(
            number=number,
            action=action,
            at=at,
            actor=str(desk.get("actor", "desk")),
            comment=text("comment"),
            repaired=bool(desk.get("repaired", False)),
            target=text("target"),
            level=text("level"),
            exemption=text("exemption"),
            coverage=text("coverage"),
            charge=text("charge"),
            release=text("release"),
        )
        outcome = self.book.on_desk(command)
        for ticket_event in outcome.events:
            emit(event_line(ticket_event))
        if not outcome.accepted:
            raise BadLine(f"desk {action.value} refused: {outcome.reason}")

    def _number(self, desk: Mapping[str, Any]) -> str:
        """The fault number given, or the live ticket of (device or site, fault kind)."""
        fault = desk.get("fault")
        if not isinstance(fault, str) or not fault:
            raise BadLine("desk: 'fault' (a fault number or a fault kind) is required")
        if is_fault_number(fault):
            return fault
        device, site = desk.get("device"), desk.get("site")
        if not isinstance(device, str | None) or not isinstance(site, str | None):
            raise BadLine("desk: 'device' and 'site' must be text")
        if device is None and site is None:
            raise BadLine("desk: a fault kind needs 'device' or 'site'")
        key = ticket_key(device, site, fault)
        for ticket in self.book.live():
            if ticket.key == key:
                return ticket.number
        raise BadLine(f"desk: no open ticket for {key}")
