"""Tickets and ticket events to JSON-ready dicts and back (the stored and the webhook form).

The event form is the stable webhook schema documented in docs/webhooks.md and checked against
docs/webhook.schema.json by the tests.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime
from typing import Any

from collector.tickets.model import (
    Coverage,
    CoverageReason,
    EventKind,
    Outcome,
    State,
    Subject,
    TargetClock,
    Ticket,
    TicketEvent,
)

SCHEMA_VERSION = 1


def iso(at: datetime) -> str:
    """UTC, ``Z`` suffix: one form for every instant in stored tickets and webhook bodies."""
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z")


def parse_iso(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _opt(at: datetime | None) -> str | None:
    return iso(at) if at is not None else None


def _opt_parse(text: str | None) -> datetime | None:
    return parse_iso(text) if text is not None else None


def target_to_dict(target: TargetClock) -> dict[str, Any]:
    return {
        "name": target.name,
        "duration": target.duration,
        "calendar": target.calendar,
        "start": iso(target.start),
        "pauses": [[iso(a), _opt(b)] for a, b in target.pauses],
        "stopped_at": _opt(target.stopped_at),
        "outcome": target.outcome.value if target.outcome else None,
    }


def target_from_dict(data: Mapping[str, Any]) -> TargetClock:
    return TargetClock(
        name=data["name"],
        duration=data["duration"],
        calendar=data["calendar"],
        start=parse_iso(data["start"]),
        pauses=tuple((parse_iso(a), _opt_parse(b)) for a, b in data["pauses"]),
        stopped_at=_opt_parse(data["stopped_at"]),
        outcome=Outcome(data["outcome"]) if data["outcome"] else None,
    )


def ticket_to_dict(ticket: Ticket) -> dict[str, Any]:
    return {
        "number": ticket.number,
        "key": ticket.key,
        "device": ticket.device,
        "site": ticket.site,
        "kind": ticket.kind,
        "impact": ticket.impact,
        "fault_id": ticket.fault_id,
        "policy": ticket.policy,
        "level": ticket.level,
        "coverage": ticket.coverage.value,
        "coverage_reason": ticket.coverage_reason.value,
        "exempt": ticket.exempt,
        "state": ticket.state.value,
        "onset": iso(ticket.onset),
        "opened_at": iso(ticket.opened_at),
        "targets": [target_to_dict(t) for t in ticket.targets],
        "fired": sorted(ticket.fired),
        "fault_active": ticket.fault_active,
        "acknowledged_at": _opt(ticket.acknowledged_at),
        "onsite_at": _opt(ticket.onsite_at),
        "resolved_at": _opt(ticket.resolved_at),
        "resolved_by": ticket.resolved_by,
        "closes_at": _opt(ticket.closes_at),
        "closed_at": _opt(ticket.closed_at),
        "paused": ticket.paused,
        "reopen_count": ticket.reopen_count,
        "seq": ticket.seq,
        "subject": subject_to_dict(ticket.subject),
        "charge": ticket.charge,
        "claimed_exemption": ticket.claimed_exemption,
        "deferred_to_release": ticket.deferred_to_release,
        "target_release": ticket.target_release,
        "part_warranty_until": _opt_day(ticket.part_warranty_until),
        "routed": ticket.routed,
        "manual": ticket.manual,
    }


def subject_to_dict(subject: Subject) -> dict[str, Any]:
    return {
        "customer": subject.customer,
        "tenant": subject.tenant,
        "model": subject.model,
        "serial": subject.serial,
        "rule": subject.rule,
        "metric": subject.metric,
        "value": subject.value,
        "devices": list(subject.devices),
    }


def subject_from_dict(data: Mapping[str, Any]) -> Subject:
    return Subject(
        customer=data.get("customer", ""),
        tenant=data.get("tenant", ""),
        model=data.get("model", ""),
        serial=data.get("serial", ""),
        rule=data.get("rule", ""),
        metric=data.get("metric", ""),
        value=data.get("value"),
        devices=tuple(data.get("devices", ())),
    )


def _opt_day(day: date | None) -> str | None:
    return day.isoformat() if day is not None else None


def ticket_from_dict(data: Mapping[str, Any]) -> Ticket:
    return Ticket(
        number=data["number"],
        key=data["key"],
        device=data["device"],
        site=data["site"],
        kind=data["kind"],
        impact=data["impact"],
        fault_id=data["fault_id"],
        policy=data["policy"],
        level=data["level"],
        coverage=Coverage(data["coverage"]),
        coverage_reason=CoverageReason(data["coverage_reason"]),
        exempt=data["exempt"],
        state=State(data["state"]),
        onset=parse_iso(data["onset"]),
        opened_at=parse_iso(data["opened_at"]),
        targets=tuple(target_from_dict(t) for t in data["targets"]),
        fired=frozenset(data["fired"]),
        fault_active=data["fault_active"],
        acknowledged_at=_opt_parse(data["acknowledged_at"]),
        onsite_at=_opt_parse(data["onsite_at"]),
        resolved_at=_opt_parse(data["resolved_at"]),
        resolved_by=data["resolved_by"],
        closes_at=_opt_parse(data["closes_at"]),
        closed_at=_opt_parse(data["closed_at"]),
        paused=data["paused"],
        reopen_count=data["reopen_count"],
        seq=data["seq"],
        # Tickets stored before these fields existed read with the defaults.
        subject=subject_from_dict(data.get("subject", {})),
        charge=data.get("charge", "parts_and_labour"),
        claimed_exemption=data.get("claimed_exemption"),
        deferred_to_release=data.get("deferred_to_release", False),
        target_release=data.get("target_release"),
        part_warranty_until=(
            date.fromisoformat(data["part_warranty_until"])
            if data.get("part_warranty_until")
            else None
        ),
        routed=data.get("routed"),
        manual=data.get("manual", False),
    )


def _jsonable(value: Any) -> Any:
    return iso(value) if isinstance(value, datetime) else value


def event_to_dict(event: TicketEvent, deadlines: Mapping[str, datetime | None]) -> dict[str, Any]:
    """The webhook body of one event (schema version 1).

    ``deadlines`` is each target's due instant as the SLA engine computes it (None while paused).
    """
    ticket = event.ticket
    return {
        "schema": SCHEMA_VERSION,
        "id": event.event_id,
        "type": event.kind.value,
        "at": iso(event.at),
        "seq": event.seq,
        "detail": {k: _jsonable(v) for k, v in event.detail.items()},
        "ticket": {
            "number": ticket.number,
            "state": ticket.state.value,
            "device": ticket.device,
            "site": ticket.site,
            "fault_kind": ticket.kind,
            "impact": ticket.impact,
            "policy": ticket.policy,
            "level": ticket.level,
            "coverage": ticket.coverage.value,
            "coverage_reason": ticket.coverage_reason.value,
            "exempt": ticket.exempt,
            "onset": iso(ticket.onset),
            "opened_at": iso(ticket.opened_at),
            "acknowledged_at": _opt(ticket.acknowledged_at),
            "onsite_at": _opt(ticket.onsite_at),
            "resolved_at": _opt(ticket.resolved_at),
            "closed_at": _opt(ticket.closed_at),
            "paused": ticket.paused,
            "reopen_count": ticket.reopen_count,
            "targets": [
                {
                    "name": t.name,
                    "due": _opt(deadlines.get(t.name)),
                    "start": iso(t.start),
                    "stopped_at": _opt(t.stopped_at),
                    "outcome": t.outcome.value if t.outcome else None,
                }
                for t in ticket.targets
            ],
            "customer": ticket.subject.customer or None,
            "tenant": ticket.subject.tenant or None,
            "model": ticket.subject.model or None,
            "serial": ticket.subject.serial or None,
            "rule": ticket.subject.rule or None,
            "metric": ticket.subject.metric or None,
            "value": ticket.subject.value,
            "devices": list(ticket.subject.devices),
            "charge": ticket.charge,
            "claimed_exemption": ticket.claimed_exemption,
            "deferred_to_release": ticket.deferred_to_release,
            "target_release": ticket.target_release,
            "part_warranty_until": _opt_day(ticket.part_warranty_until),
            "manual": ticket.manual,
        },
    }


EVENT_TYPES = tuple(kind.value for kind in EventKind)
