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


class DeskAction(enum.StrEnum):
    ACK = "ack"
    ONSITE = "onsite"
    RESOLVE = "resolve"
    PAUSE = "pause"
    RESUME = "resume"
    COMMENT = "comment"
    CANCEL = "cancel"


@dataclass(frozen=True, slots=True)
class DeskCommand:
    number: str
    action: DeskAction
    at: datetime
    actor: str = "desk"
    comment: str | None = None
    repaired: bool = False  # resolve: the device was repaired or replaced (warranty extension)


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
