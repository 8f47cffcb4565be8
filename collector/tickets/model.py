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
    EXEMPT_BY_DESK = "exempt_by_desk"  # an operator or desk named the exemption, with a reason
    SET_BY_DESK = "set_by_desk"  # an operator or desk changed the coverage, with a reason
    MEMBER_IN_WARRANTY = "member_in_warranty"  # a site outage: a member device is in warranty
    REPAIRED_PART_IN_WARRANTY = "repaired_part_in_warranty"  # the unit's is over; a part's not


class EventKind(enum.StrEnum):
    OPENED = "ticket_opened"
    ACKNOWLEDGED = "acknowledged"
    ONSITE = "onsite"
    ESCALATED = "escalated"
    LEVEL_CHANGED = "level_changed"  # the impact rose, or a person set the level (who, why)
    TARGET_STARTED = "target_started"  # a desk action started a target (received, request)
    COVERAGE_CHANGED = "coverage_changed"  # marked exempt or its coverage changed, with a reason
    DEFERRED = "deferred"  # to be fixed in a later release (the target release noted)
    UNROUTED = "unrouted"  # no sink is configured for this ticket's customer/policy/level
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
class Subject:
    """Who and what a ticket is about, where known (inventory, registry, the rule)."""

    customer: str = ""
    tenant: str = ""
    model: str = ""
    serial: str = ""
    rule: str = ""
    metric: str = ""
    value: float | str | None = None  # the metric value that crossed the threshold
    devices: tuple[str, ...] = ()  # a site outage: its member devices


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
    subject: Subject = Subject()
    charge: str = "parts_and_labour"  # the policy's charge tier (collector.sla.contract.Charge)
    claimed_exemption: str | None = None  # detected, but the policy does not name it: SLA owed
    deferred_to_release: bool = False  # the level is resolved by a later release (001 C/D)
    target_release: str | None = None  # the release the desk noted
    part_warranty_until: date | None = None  # a repaired part's own warranty (002)
    routed: bool | None = None  # False: no sink matched (None: not decided, e.g. replay)
    manual: bool = False  # opened by a person (a fault reported by phone), not by telemetry

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
