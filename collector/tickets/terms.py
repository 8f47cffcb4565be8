"""What the ticket book needs from a customer's policy, as small frozen types and protocols.

The SLA engine owns the policy files and the calendar maths; ``collector.tickets.sla_adapter``
turns its ``Policy`` and clocks into these, so the lifecycle can be tested on its own.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Protocol

from collector.sla.policy import Warranty
from collector.tickets.model import TargetClock


@dataclass(frozen=True, slots=True)
class TargetSpec:
    duration: str  # the policy's text: 4h, 1h30m, 5wd
    calendar: str


@dataclass(frozen=True, slots=True)
class EscalationStep:
    """At ``fraction`` of ``target`` (None: every target) emit ``action``; 1.0 is the breach.

    ``levels`` None: every level.
    """

    fraction: float
    action: str
    target: str | None = None
    levels: frozenset[str] | None = None

    def applies(self, level: str, target: str) -> bool:
        return (self.target is None or self.target == target) and (
            self.levels is None or level in self.levels
        )


BREACH = EscalationStep(1.0, "breach")


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
    steps: tuple[EscalationStep, ...] = (EscalationStep(0.75, "warning"), BREACH)
    followup: FollowupRule | None = None
    warranty: Warranty | None = None


@dataclass(frozen=True, slots=True)
class DeviceWarranty:
    """The inventory's warranty facts for one device (start date on the contract's basis)."""

    start: date | None
    months: int | None = None


class PolicySource(Protocol):
    def ticket_policy(self, name: str) -> TicketPolicy: ...


class DeviceSource(Protocol):
    def warranty(self, device: str) -> DeviceWarranty: ...


class SlaMaths(Protocol):
    """The SLA engine's answer for one stored target: the instant a fraction of it is used.

    None when the instant is not known yet (the target is paused).
    """

    def instant_at(self, target: TargetClock, fraction: float) -> datetime | None: ...


class NumberAllocator(Protocol):
    """Gives the next fault number of a day, unique across restarts and collectors."""

    def next_number(self, day: date) -> int: ...
