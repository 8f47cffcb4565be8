"""Tickets and devices as the API and the board show them: SLA due times, time left, status.

The SLA status comes from the escalation steps the ticket book has fired (it fires each at its
exact instant): ``warning`` for a breach warning, ``escalated`` for a notify / second-line /
manager step, ``breached`` once a target is missed. Due instants are the SLA engine's, cached
per ticket event (a ticket's targets change only with its ``seq``).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from collector.http.api.context import ApiContext
from collector.rules.inventory import Device as InventoryDevice
from collector.sla.policy import EscalationAction
from collector.store import api_store
from collector.tickets import codec
from collector.tickets.model import WORKING_STATES, Outcome, Ticket
from collector.tickets.targets import step_id

SLA_STATUSES = ("ok", "warning", "escalated", "breached")
DEVICE_STATES = ("ok", "faulty", "offline", "unknown_reporting", "in_maintenance", "never_seen")
_RANK = {s: i for i, s in enumerate(SLA_STATUSES)}
_ACTION_STATUS = {
    EscalationAction.WARNING: "warning",
    EscalationAction.NOTIFY: "escalated",
    EscalationAction.SECOND_LINE: "escalated",
    EscalationAction.MANAGER: "escalated",
    EscalationAction.BREACH: "breached",
}


def dues(ctx: ApiContext, ticket: Ticket) -> dict[str, datetime | None]:
    key = (ticket.number, ticket.seq)
    found = ctx.due_cache.get(key)
    if found is None:
        if len(ctx.due_cache) > 50_000:
            ctx.due_cache.clear()
        found = {}
        for target in ticket.targets:
            try:
                found[target.name] = ctx.sla.instant_at(target, 1.0)
            except ValueError:  # a calendar or policy that is gone: no due time to show
                found[target.name] = None
        ctx.due_cache[key] = found
    return found


def sla_status(ctx: ApiContext, ticket: Ticket) -> str:
    status = "ok"
    if any(t.outcome is Outcome.MISSED for t in ticket.targets):
        return "breached"
    try:
        steps = ctx.sla.ticket_policy(ticket.policy).steps
    except ValueError:
        steps = ()
    for target in ticket.targets:
        for step in steps:
            if step.applies(ticket.level, target.name) and (
                step_id(target.name, step.at) in ticket.fired
            ):
                found = _ACTION_STATUS[step.action]
                if _RANK[found] > _RANK[status]:
                    status = found
    return status


def time_left(ctx: ApiContext, ticket: Ticket, now: datetime) -> float | None:
    """Seconds to the nearest due time of a running, unpaused target (negative: overdue)."""
    if ticket.state not in WORKING_STATES:
        return None
    due = dues(ctx, ticket)
    left = [
        (d - now).total_seconds()
        for t in ticket.targets
        if t.running and not t.paused and (d := due.get(t.name)) is not None
    ]
    return min(left) if left else None


def owner(ctx: ApiContext, ticket: Ticket) -> InventoryDevice | None:
    """The inventory device a ticket belongs to (a site ticket: the site's first device)."""
    inv = ctx.inventory
    if inv is None:
        return None
    if ticket.device is not None:
        return inv.get(ticket.device)
    for device in inv.sites.get(ticket.site or "", ()):
        return inv.get(device)
    return None


def ticket_view(ctx: ApiContext, ticket: Ticket, now: datetime) -> dict[str, Any]:
    due = dues(ctx, ticket)
    dev = owner(ctx, ticket)
    targets = [
        {
            "name": t.name,
            "duration": t.duration,
            "calendar": t.calendar,
            "start": codec.iso(t.start),
            "due": codec.iso(d) if (d := due.get(t.name)) is not None else None,
            "left_s": (d - now).total_seconds() if d is not None and t.running else None,
            "running": t.running,
            "paused": t.paused,
            "stopped_at": codec.iso(t.stopped_at) if t.stopped_at else None,
            "outcome": t.outcome.value if t.outcome else None,
            "pauses": [[codec.iso(a), codec.iso(b) if b else None] for a, b in t.pauses],
        }
        for t in ticket.targets
    ]
    return {
        "number": ticket.number,
        "state": ticket.state.value,
        "device": ticket.device,
        "site": ticket.site,
        "tenant": dev.tenant if dev else None,
        "customer": dev.customer if dev else None,
        "kind": ticket.kind,
        "impact": ticket.impact,
        "policy": ticket.policy,
        "level": ticket.level,
        "coverage": ticket.coverage.value,
        "coverage_reason": ticket.coverage_reason.value,
        "exempt": ticket.exempt,
        "paused": ticket.paused,
        "fault_active": ticket.fault_active,
        "onset": codec.iso(ticket.onset),
        "opened_at": codec.iso(ticket.opened_at),
        "acknowledged_at": codec.iso(ticket.acknowledged_at) if ticket.acknowledged_at else None,
        "resolved_at": codec.iso(ticket.resolved_at) if ticket.resolved_at else None,
        "sla_status": sla_status(ctx, ticket),
        "time_left_s": time_left(ctx, ticket, now),
        "targets": targets,
        "escalations": sorted(ticket.fired),
        "seq": ticket.seq,
    }


def live_tickets(ctx: ApiContext) -> list[Ticket]:
    if ctx.tickets is not None:
        return ctx.tickets.book.live()
    return api_store.tickets(ctx.db, live=True)


def all_tickets(ctx: ApiContext, live: bool | None) -> list[Ticket]:
    if live is True:
        return live_tickets(ctx)
    return api_store.tickets(ctx.db, live=live)


def find_ticket(ctx: ApiContext, number: str) -> Ticket | None:
    if ctx.tickets is not None:
        found = ctx.tickets.book.get(number)
        if found is not None:
            return found
    return api_store.ticket(ctx.db, number)


def visible(tenant: str | None, ctx: ApiContext, ticket: Ticket) -> bool:
    if tenant is None:
        return True
    dev = owner(ctx, ticket)
    return dev is not None and dev.tenant == tenant


def next_due(ctx: ApiContext, ticket: Ticket) -> float:
    """The epoch of the ticket's nearest due time (inf: none running); cached per event."""
    key = (ticket.number, ticket.seq)
    found = ctx.order_cache.get(key)
    if found is None:
        if len(ctx.order_cache) > 50_000:
            ctx.order_cache.clear()
        due = dues(ctx, ticket)
        times = [
            d.timestamp()
            for t in ticket.targets
            if t.running and not t.paused and (d := due.get(t.name)) is not None
        ]
        working = ticket.state in WORKING_STATES
        found = ctx.order_cache[key] = min(times) if times and working else float("inf")
    return found


def sort_by_time_left(ctx: ApiContext, tickets: Iterable[Ticket], now: datetime) -> list[Ticket]:
    """Least time left first (the same order at any ``now``: due instants do not move)."""
    return sorted(tickets, key=lambda t: (next_due(ctx, t), t.number))
