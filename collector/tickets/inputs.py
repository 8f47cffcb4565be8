"""What drives the ticket book: fault signals from the rules engine and desk commands."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime

from collector.tickets.model import TicketEvent


@dataclass(frozen=True, slots=True)
class FaultSignal:
    """A fault event as the ticket book needs it (built from the rules engine's FaultEvent)."""

    event: str  # "opened" | "cleared" | "absorbed" | "escalated" | "exempted"
    at: datetime
    fault_id: str
    kind: str
    impact: str
    device: str | None
    site: str | None
    onset: datetime
    policy: str
    level: str | None  # None: the policy's table chose no level (no SLA target runs)
    exempt: str | None = None
    rule: str = ""
    metric: str = ""
    value: float | str | None = None  # the metric value that crossed the threshold
    devices: tuple[str, ...] = ()  # a site outage: its member devices
    manual: bool = False  # reported by a person (phone), not detected

    @property
    def key(self) -> str:
        return ticket_key(self.device, self.site, self.kind)


def ticket_key(device: str | None, site: str | None, kind: str) -> str:
    """One live ticket per (device or site, fault kind)."""
    if device is not None:
        return f"device:{device}/{kind}"
    if site is not None:
        return f"site:{site}/{kind}"
    raise ValueError("a fault needs a device or a site")


@dataclass(frozen=True, slots=True)
class ManualReport:
    """A fault a person reported (a phone call): no telemetry, the same clocks."""

    at: datetime  # when it is recorded
    onset: datetime  # when the customer says it began (often ``at``)
    kind: str
    level: str
    policy: str
    device: str | None = None
    site: str | None = None
    impact: str = "outage"
    actor: str = "desk"
    comment: str = ""

    def __post_init__(self) -> None:
        if (self.device is None) == (self.site is None):
            raise ValueError("a manual ticket needs a device or a site (one of them)")
        if self.onset > self.at:
            raise ValueError("onset is after the report")


class DeskAction(enum.StrEnum):
    ACK = "ack"
    ONSITE = "onsite"
    RESOLVE = "resolve"
    PAUSE = "pause"
    RESUME = "resume"
    COMMENT = "comment"
    CANCEL = "cancel"
    RECEIVED = "received"  # the unit arrived for repair: the repair clock starts
    START = "start"  # a target on request starts (``target``: onsite, diagnosis)
    SET_LEVEL = "set_level"  # a person sets the level (``level``, ``comment`` says why)
    EXEMPT = "exempt"  # mark exempt (``exemption``, ``comment`` says why)
    COVERAGE = "coverage"  # change coverage (``coverage``, ``charge``, ``comment``: why)
    DEFER = "defer"  # fixed in a later release (``release``)


@dataclass(frozen=True, slots=True)
class DeskCommand:
    number: str
    action: DeskAction
    at: datetime
    actor: str = "desk"
    comment: str | None = None
    repaired: bool = False  # resolve: the device was repaired or replaced (warranty extension)
    target: str | None = None  # start: which target
    level: str | None = None  # set_level
    exemption: str | None = None  # exempt
    coverage: str | None = None  # coverage: warranty | billable
    charge: str | None = None  # coverage: free | parts | parts_and_labour
    release: str | None = None  # defer: the target release


class Verdict(enum.StrEnum):
    APPLIED = "applied"
    ALREADY_DONE = "already_done"  # repeating an action is harmless: the desk may retry
    UNKNOWN_NUMBER = "unknown_number"
    TICKET_ENDED = "ticket_ended"
    NOT_ALLOWED = "not_allowed"


@dataclass(frozen=True, slots=True)
class DeskOutcome:
    verdict: Verdict
    reason: str
    events: tuple[TicketEvent, ...] = field(default=())

    @property
    def accepted(self) -> bool:
        return self.verdict in (Verdict.APPLIED, Verdict.ALREADY_DONE)
