"""The rule model: frozen, typed rules (see ``docs/rules.md``); ``rule_files`` reads them.

A rule says which devices it applies to, its condition, the fault kind it raises and that
fault's impact.
"""

from __future__ import annotations

import fnmatch
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

from collector.rules.faults import Impact
from collector.rules.inputs import STANDARD_TRAPS
from collector.rules.inventory import Device

# --------------------------------------------------------------------------- selectors


@dataclass(frozen=True, slots=True)
class Selector:
    """Which devices a rule applies to; an empty selector matches every device."""

    classes: frozenset[str] = frozenset()
    models: tuple[str, ...] = ()  # glob patterns
    labels: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))

    def matches(self, device: Device) -> bool:
        if self.classes and device.cls not in self.classes:
            return False
        if self.models and not any(fnmatch.fnmatchcase(device.model, m) for m in self.models):
            return False
        return all(device.labels.get(k) == v for k, v in self.labels.items())


# --------------------------------------------------------------------------- conditions


@dataclass(frozen=True, slots=True)
class Offline:
    """No report for ``missed`` intervals, or the retained state says offline."""

    missed: int = 3


@dataclass(frozen=True, slots=True)
class SiteOutage:
    """At least ``fraction`` (and ``min_devices``) of a site's devices offline within ``within``."""

    fraction: float = 0.5
    min_devices: int = 2
    within_s: float = 300.0

    def needed(self, site_size: int) -> int:
        return max(self.min_devices, math.ceil(self.fraction * site_size))


Op = Literal["above", "below", "equals", "not_equals"]


@dataclass(frozen=True, slots=True)
class Threshold:
    """A metric (or its per-second rate) breaching a threshold for ``for_s`` seconds.

    Hysteresis: once open, an ``above`` fault clears only below ``clear`` (and a ``below`` fault
    only above it). ``metric`` may be a glob (``if_wan*_up``): each matching metric is watched on
    its own and the fault is active while any of them breaches.
    """

    metric: str
    op: Op
    value: float | bool | str
    for_s: float = 0.0
    clear: float | None = None
    rate: bool = False  # evaluate the counter's per-second increase (resets handled)

    @property
    def is_glob(self) -> bool:
        return any(c in self.metric for c in "*?[")

    def breaches(self, value: object) -> bool:
        if self.op == "equals":
            return value == self.value and type(value) is type(self.value)
        if self.op == "not_equals":
            return value != self.value
        if isinstance(value, bool) or not isinstance(value, int | float):
            return False
        assert isinstance(self.value, int | float)
        return value > self.value if self.op == "above" else value < self.value

    def clears(self, value: object) -> bool:
        """Whether an active fault clears at this value (hysteresis for above/below)."""
        if self.op in ("equals", "not_equals"):
            return not self.breaches(value)
        if isinstance(value, bool) or not isinstance(value, int | float):
            return False
        limit = self.clear if self.clear is not None else self.value
        assert isinstance(limit, int | float)
        return value < limit if self.op == "above" else value > limit


@dataclass(frozen=True, slots=True)
class Change:
    """A value changed (firmware, SIM) or, with ``direction``, went down or up (uptime)."""

    metric: str
    direction: Literal["any", "decrease", "increase"] = "any"
    clear_after_s: float = 600.0


@dataclass(frozen=True, slots=True)
class Match:
    """An event (wire ``event``) or SNMP trap by name; cleared by ``clear_on`` or a timeout.

    ``key`` names a field of the event's data or the trap's varbinds (``iface``, ``ifIndex``):
    each key value is its own instance, and the fault is active while any instance is.
    """

    source: Literal["event", "trap"]
    names: frozenset[str]
    clear_on: frozenset[str] = frozenset()
    key: str | None = None
    clear_after_s: float | None = None


@dataclass(frozen=True, slots=True)
class Flapping:
    """The same fault opening ``opens`` times within ``within_s`` becomes one flapping fault."""

    opens: int = 4
    within_s: float = 3600.0
    of: frozenset[str] = frozenset()  # fault kinds watched; empty: every device fault kind


Condition = Offline | SiteOutage | Threshold | Change | Match | Flapping


@dataclass(frozen=True, slots=True)
class Rule:
    name: str
    fault: str
    impact: Impact
    condition: Condition
    selector: Selector = Selector()
    description: str = ""
    file: str = ""
    line: int = 0


@dataclass(frozen=True, slots=True)
class PowerLoss:
    """The signals that power is going away; an offline fault within ``within_s`` is exempt."""

    events: frozenset[str] = frozenset({"dying_gasp"})
    traps: frozenset[str] = frozenset({"dyingGasp"})
    within_s: float = 600.0


@dataclass(frozen=True, slots=True)
class RuleSet:
    rules: tuple[Rule, ...]
    traps: Mapping[str, str] = field(default_factory=lambda: MappingProxyType(dict(STANDARD_TRAPS)))
    power: PowerLoss = PowerLoss()
    sources: tuple[str, ...] = ()

    def of_type(self, kind: type[Any]) -> tuple[Rule, ...]:
        return tuple(r for r in self.rules if isinstance(r.condition, kind))

    def first_of_type(self, kind: type[Any]) -> Rule | None:
        """The rule of a kind that is defined once (offline, flapping, site outage), if any."""
        found = self.of_type(kind)
        return found[0] if found else None

    @property
    def kinds(self) -> frozenset[str]:
        return frozenset(r.fault for r in self.rules)
