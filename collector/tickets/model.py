"""The ticket's data: states, coverage, targets and the events the book emits."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any


class State(enum.StrEnum):
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    ONSITE = "onsite"
    RESOLVED = "resolved"
    REOPENED = "reopened"
    CLOSED = "closed"
    CANCELLED = "cancelled"


#: States in which a ticket is still the one ticket for its (device or site, fault kind).
LIVE_STATES = frozenset(
    {State.OPEN, State.ACKNOWLEDGED, State.ONSITE, State.RESOLVED, State.REOPENED}
)
#: States in which work is still owed (the SLA clocks may run).
WORKING_STATES = frozenset({State.OPEN, State.ACKNOWLEDGED, State.ONSITE, State.REOPENED})


class Coverage(enum.StrEnum):
    WARRANTY = "warranty"
    BILLABLE = "billable"
    EXEMPT = "exempt"


class CoverageReason(enum.StrEnum):
    IN_WARRANTY = "in_warranty"
    EXTENDED_AFTER_REPAIR = "extended_after_repair"
    WARRANTY_EXPIRED = "warranty_expired"
    WARRANTY_NOT_STARTED = "warranty_not_started"
    WARRANTY_UNKNOWN = "warranty_unknown"
    EXEMPT_POWER_OUTAGE = "exempt_power_outage"
    EXEMPT_MAINTENANCE = "exempt_maintenance"


class EventKind(enum.StrEnum):
    OPENED = "ticket_opened"
    ACKNOWLEDGED = "acknowledged"
    ONSITE = "onsite"
    ESCALATED = "escalated"
    LEVEL_CHANGED = "level_changed"  # the fault's impact rose: the policy's other level applies
    BREACHED = "breached"
    PAUSED = "paused"
    RESUMED = "resumed"
    COMMENTED = "commented"
    RESOLVED = "resolved"
    REOPENED = "reopened"
    CLOSED = "closed"
    CANCELLED = "cancelled"


class Outcome(enum.StrEnum):
    """How a target ended."""

    MET = "met"
    MISSED = "missed"
    NOT_NEEDED = "not_needed"


@dataclass(frozen=True, slots=True)
class TargetClock:
    """One SLA target of a ticket as stored data; the SLA engine turns it into instants.

    ``duration`` is the policy's text (``4h``, ``5wd``) and ``calendar`` its calendar name, both
    as they were when the ticket opened. ``pauses`` are wall-clock intervals; the last one may
    still be open (``end`` None).
    """

    name: str
    duration: str
    calendar: str
    start: datetime
    pauses: tuple[tuple[datetime, datetime | None], ...] = ()
    stopped_at: datetime | None = None
    outcome: Outcome | None = None

    @property
    def running(self) -> bool:
        return self.stopped_at is None

    @property
    def paused(self) -> bool:
        return bool(self.pauses) and self.pauses[-1][1] is None


@dataclass(frozen=True, slots=True)
class RepairRecord:
    """A device's repairs or replacements, for the warranty extension after repair."""

    last_repair: date
    repair_time: timedelta = timedelta(0)  # total time the device spent in repair tickets


@dataclass(frozen=True, slots=True)
class Ticket:
    number: str
    key: str  # "device:<id>/<kind>" or "site:<id>/<kind>": one live ticket per key
    device: str | None
    site: str | None
    kind: str
    impact: str
    fault_id: str
    policy: str
    level: str
    coverage: Coverage
    coverage_reason: CoverageReason
    exempt: str | None
    state: State
    onset: datetime
    opened_at: datetime
    targets: tuple[TargetClock, ...] = ()
    fired: frozenset[str] = frozenset()  # escalation steps already emitted, "target@fraction"
    fault_active: bool = True
    acknowledged_at: datetime | None = None
    onsite_at: datetime | None = None
    resolved_at: datetime | None = None
    resolved_by: str | None = None
    closes_at: datetime | None = None
    closed_at: datetime | None = None
    paused: bool = False
    reopen_count: int = 0
    seq: int = 0  # number of events emitted for this ticket: orders its deliveries

    def target(self, name: str) -> TargetClock | None:
        for target in self.targets:
            if target.name == name:
                return target
        return None


@dataclass(frozen=True, slots=True)
class TicketEvent:
    """Something that happened to a ticket; ``ticket`` is the ticket right after it.

    ``seq`` is the ticket's event counter, so ``f"{number}:{seq}"`` identifies the event for
    idempotency and orders the ticket's deliveries.
    """

    kind: EventKind
    at: datetime
    ticket: Ticket
    detail: Mapping[str, Any] = field(default_factory=dict)

    @property
    def seq(self) -> int:
        return self.ticket.seq

    @property
    def event_id(self) -> str:
        return f"{self.ticket.number}:{self.ticket.seq}"
