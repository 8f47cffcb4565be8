"""Faults and the events that open, escalate, clear or absorb them."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any, Final

from agent.wire import format_ts

EPS: Final = 1e-6  # engine instants closer than this are the same instant


class Impact(enum.StrEnum):
    """What a fault does to the customer's service, from worst to mildest."""

    OUTAGE = "outage"
    AT_RISK = "at_risk"
    DEGRADED = "degraded"
    INTERMITTENT = "intermittent"
    INFO = "info"


_SEVERITY: Final = {impact: rank for rank, impact in enumerate(Impact)}


def worse(a: Impact, b: Impact) -> bool:
    """Whether impact ``a`` is worse than ``b`` (the order of ``Impact``: outage first)."""
    return _SEVERITY[a] < _SEVERITY[b]


class Scope(enum.StrEnum):
    DEVICE = "device"
    SITE = "site"


class Criticality(enum.StrEnum):
    """Seed 003's distinction between commonly and infrequently used devices."""

    COMMON = "common"
    UNCOMMON = "uncommon"


class Exemption(enum.StrEnum):
    """Why no SLA is owed for a fault (it is still raised and recorded)."""

    POWER_OUTAGE = "power_outage"
    MAINTENANCE = "maintenance"


class Hold(enum.StrEnum):
    """Why a fault is held back (not raised yet); ``Engine.holds()`` shows it, for the board.

    A fault still active when its hold ends is raised then, its clock starting at that instant.
    """

    MAINTENANCE = "maintenance"  # inside an announced maintenance window
    PARENT_OFFLINE = "parent_offline"  # the device it sits behind is offline (root cause only)
    SITE_OUTAGE = "site_outage"  # part of its site's outage fault
    FLAPPING = "flapping"  # part of a flapping fault for the same kind


class EventType(enum.StrEnum):
    OPENED = "opened"
    ESCALATED = "escalated"  # the open fault's impact (and so its level) rose
    CLEARED = "cleared"
    ABSORBED = "absorbed"  # the fault is now part of another one (site outage, parent offline)
    EXEMPTED = "exempted"  # still open, but owes no SLA (maintenance announced after the fact)


def _empty() -> Mapping[str, Any]:
    return MappingProxyType({})


@dataclass(frozen=True, slots=True)
class Fault:
    """One fault of one device (or one site), classified by the subject's policy."""

    kind: str
    impact: Impact
    scope: Scope
    subject: str  # the device id, or the site name for site faults
    onset: datetime
    policy: str
    level: str | None
    deadlines: Mapping[str, datetime] = field(default_factory=_empty)
    exempt: Exemption | None = None
    devices: tuple[str, ...] = ()  # site faults: the devices it covers
    rule: str = ""
    key: str = ""  # tells apart faults of one kind on one subject (flapping: the flapping kind)
    detail: Mapping[str, Any] = field(default_factory=_empty)

    @property
    def fingerprint(self) -> str:
        """Stable identity of what is wrong: one open fault per (scope, subject, kind)."""
        base = f"{self.scope.value}/{self.subject}/{self.kind}"
        return f"{base}/{self.key}" if self.key else base

    @property
    def id(self) -> str:
        """This occurrence: the fingerprint and its onset."""
        return f"{self.fingerprint}@{format_ts(self.onset)}"

    @property
    def device(self) -> str | None:
        return self.subject if self.scope is Scope.DEVICE else None

    @property
    def site(self) -> str | None:
        return self.subject if self.scope is Scope.SITE else None


@dataclass(frozen=True, slots=True)
class FaultEvent:
    event: EventType
    at: datetime
    fault: Fault
    into: str | None = None  # absorbed: the id of the fault that absorbed this one
    extra: Mapping[str, Any] = field(default_factory=_empty)

    def to_json(self) -> dict[str, Any]:
        """The replay line: one JSON object per fault event."""
        f = self.fault
        body: dict[str, Any] = {"event": self.event.value, "at": format_ts(self.at)}
        body[f.scope.value] = f.subject
        body |= {
            "fault": f.kind,
            "id": f.id,
            "impact": f.impact.value,
            "scope": f.scope.value,
            "policy": f.policy,
            "level": f.level,
            "onset": format_ts(f.onset),
            "deadlines": {name: format_ts(due) for name, due in f.deadlines.items()},
            "exempt": f.exempt.value if f.exempt else None,
            "rule": f.rule,
        }
        if f.scope is Scope.SITE:
            body["devices"] = list(f.devices)
        if f.detail:
            body["detail"] = dict(f.detail)
        if self.event is EventType.ABSORBED:
            body["into"] = self.into  # null when the absorbing fault is itself held back
        body |= self.extra
        return body


def utc(t: float) -> datetime:
    """An engine instant (seconds since the epoch) as an aware datetime."""
    return datetime.fromtimestamp(t, UTC)


class Outbox:
    """The fault events decided while handling one input, handed out once by ``drain``."""

    __slots__ = ("_out",)

    def __init__(self) -> None:
        self._out: list[FaultEvent] = []

    def emit(
        self,
        event: EventType,
        at: float,
        fault: Fault,
        into: str | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        self._out.append(FaultEvent(event, utc(at), fault, into=into, extra=extra or {}))

    def drain(self) -> list[FaultEvent]:
        out, self._out = self._out, []
        return out
