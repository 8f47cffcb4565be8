"""What the ticket book needs from a customer's policy, as small frozen types and protocols.

The SLA engine owns the policy files and the calendar maths; ``collector.tickets.sla_adapter``
turns its ``Policy`` and clocks into these, so the lifecycle can be tested on its own. Escalation
steps are the SLA engine's ``EscalationStep`` itself (``at`` a fraction of the target, ``action``
an ``EscalationAction``), not a copy.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Protocol

from collector.sla.policy import EscalationAction, EscalationStep, Warranty
from collector.tickets.model import TargetClock


@dataclass(frozen=True, slots=True)
class TargetSpec:
    duration: str  # the policy's text: 4h, 1h30m, 5wd
    calendar: str
    starts: str = "onset"  # or "received" / "request": a desk action starts it


#: A breach is always reported, even when the policy's file names no breach step.
BREACH = EscalationStep(EscalationAction.BREACH, 1.0)
#: The steps of a policy that names none: a warning at three quarters, then the breach.
DEFAULT_STEPS = (EscalationStep(EscalationAction.WARNING, 0.75), BREACH)


class FollowupRule(Protocol):
    """When the follow-up after a resolution ends (the SLA engine's ``Followup``)."""

    def due(self, done_at: datetime) -> datetime: ...


@dataclass(frozen=True, slots=True)
class FixedFollowup:
    """A follow-up of fixed wall-clock length, for policies that do not name one."""

    delay: timedelta

    def due(self, done_at: datetime) -> datetime:
        return done_at + self.delay


@dataclass(frozen=True, slots=True)
class TicketPolicy:
    name: str
    levels: Mapping[str, Mapping[str, TargetSpec]]
    steps: tuple[EscalationStep, ...] = DEFAULT_STEPS  # the SLA engine's steps, as they are
    followup: FollowupRule | None = None
    warranty: Warranty | None = None
    exemptions: frozenset[str] = frozenset()  # the ones the contract names
    by_release: frozenset[str] = frozenset()  # levels resolved by a later release


@dataclass(frozen=True, slots=True)
class DeviceWarranty:
    """The inventory's warranty facts for one device (start date on the contract's basis)."""

    start: date | None
    months: int | None = None
    # What the ticket carries about the device, where the inventory or registry knows it.
    customer: str = ""
    tenant: str = ""
    model: str = ""
    serial: str = ""
    site: str | None = None


class PolicySource(Protocol):
    def ticket_policy(self, name: str) -> TicketPolicy: ...


class DeviceSource(Protocol):
    def warranty(self, device: str) -> DeviceWarranty: ...

    def site_devices(self, site: str) -> tuple[str, ...]:
        """The devices of a site (for a manual site ticket; a site outage lists its own)."""
        ...


class SlaMaths(Protocol):
    """The SLA engine's answer for one stored target: the instant a fraction of it is used.

    None when the instant is not known yet (the target is paused).
    """

    def instant_at(self, target: TargetClock, fraction: float) -> datetime | None: ...


class NumberAllocator(Protocol):
    """Gives the next fault number of a day, unique across restarts and collectors."""

    def next_number(self, day: date) -> int: ...
