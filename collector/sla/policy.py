"""Service policies: fault levels, their SLA targets on calendars, classification, escalation.

A policy file (``rules/policies/<name>.yaml``) is parsed strictly into the frozen ``Policy``
below; every calendar it names is resolved at load, so a policy that loads can answer
``deadlines`` and ``classify`` without further I/O. See docs/policies.md for the file format.
"""

from __future__ import annotations

import enum
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from types import MappingProxyType

from collector.config.durations import Duration, parse_duration
from collector.config.errors import ConfigError
from collector.config.yamlfile import Node, read_yaml
from collector.preset_paths import RULES_ENV, find_preset, is_file_reference, preset_names
from collector.sla.calendar import Calendar, Pauses, load_calendar
from collector.sla.vocabulary import CRITICALITIES, FAULT_KINDS, IMPACTS, SCOPES

TARGET_NAMES = ("response", "onsite", "diagnosis", "resolution", "plan", "repair", "followup")


class UnknownLevelError(LookupError, ValueError):
    """A level name the policy does not define: a lookup error (file problems are ConfigError)."""


@dataclass(frozen=True)
class Target:
    """One SLA target of a level: ``duration`` of business time on ``calendar``."""

    name: str
    duration: Duration
    calendar: Calendar

    @property
    def seconds(self) -> float:
        """Business seconds (``Nwd`` resolved with the calendar's working-day length)."""
        return self.duration.seconds_on(self.calendar.workday_seconds)

    def deadline(self, start: datetime, pauses: Pauses = ()) -> datetime:
        return self.calendar.add(start, self.seconds, pauses)


@dataclass(frozen=True)
class Level:
    name: str
    definition: str
    targets: Mapping[str, Target] = field(hash=False)
    manual_only: bool = False  # never chosen by the classification table (e.g. "special")


@dataclass(frozen=True)
class ClassRule:
    """One row of the first-match classification table; ``None`` matches anything."""

    level: str
    kinds: frozenset[str] | None = None
    impacts: frozenset[str] | None = None
    scopes: frozenset[str] | None = None
    criticalities: frozenset[str] | None = None
    line: int | None = None  # where it is written, to explain a decision

    def matches(self, kind: str, impact: str, scope: str, criticality: str) -> bool:
        return (
            (self.kinds is None or kind in self.kinds)
            and (self.impacts is None or impact in self.impacts)
            and (self.scopes is None or scope in self.scopes)
            and (self.criticalities is None or criticality in self.criticalities)
        )

    def describe(self) -> str:
        parts = [
            f"{label} in {sorted(values)}"
            for label, values in (
                ("kind", self.kinds),
                ("impact", self.impacts),
                ("scope", self.scopes),
                ("criticality", self.criticalities),
            )
            if values is not None
        ]
        return f"{' and '.join(parts) or 'anything'} -> {self.level}"


class EscalationAction(enum.Enum):
    NOTIFY = "notify"
    SECOND_LINE = "second_line"  # from first-line engineers to second-line experts
    MANAGER = "manager"
    WARNING = "warning"  # breach warning
    BREACH = "breach"


@dataclass(frozen=True)
class EscalationStep:
    """At ``at`` (a fraction of the target's business time) of ``target`` do ``action``.

    ``target`` None means every target of the level; ``levels`` None means every level.
    """

    action: EscalationAction
    at: float
    target: str | None = None
    levels: frozenset[str] | None = None
    note: str = ""

    def applies(self, level: str, target: str) -> bool:
        return (self.target is None or self.target == target) and (
            self.levels is None or level in self.levels
        )


@dataclass(frozen=True)
class Followup:
    """Re-confirm with the customer ``delay`` after the ``after`` target was met."""

    after: str
    delay: Duration
    calendar: Calendar

    def due(self, done_at: datetime) -> datetime:
        return self.calendar.add(done_at, self.delay.seconds_on(self.calendar.workday_seconds))


class WarrantyBasis(enum.Enum):
    ACTIVATION = "activation"  # software authorisation / first activation date
    RECEIPT = "receipt"  # the customer's receipt (courier signing) date
    ACCEPTANCE = "acceptance"  # the acceptance sign-off date


@dataclass(frozen=True)
class Warranty:
    basis: WarrantyBasis
    months: int
    repaired_parts_months: int | None = None  # own warranty of repaired/replaced parts
    extend_after_repair: bool = False  # the unit's warranty is extended by repair time
    note: str = ""


@dataclass(frozen=True)
class Policy:
    name: str
    description: str
    levels: Mapping[str, Level] = field(hash=False)
    classification: tuple[ClassRule, ...]
    escalations: tuple[EscalationStep, ...] = ()
    followup: Followup | None = None
    warranty: Warranty | None = None
    source: str = ""

    def level(self, name: str) -> Level:
        try:
            return self.levels[name]
        except KeyError:
            raise UnknownLevelError(
                f"policy {self.name!r} has no level {name!r} (levels: {', '.join(self.levels)})"
            ) from None

    def deadlines(self, level: str, start: datetime, pauses: Pauses = ()) -> dict[str, datetime]:
        """Every target of ``level`` -> its deadline for a clock started at ``start``."""
        return {
            name: target.deadline(start, pauses)
            for name, target in self.level(level).targets.items()
        }

    def classification_rule(
        self, kind: str, impact: str, scope: str, criticality: str
    ) -> ClassRule | None:
        """The first rule of the table matching the fault, or None."""
        _check_word("impact", impact, IMPACTS)
        _check_word("scope", scope, SCOPES)
        _check_word("criticality", criticality, CRITICALITIES)
        for rule in self.classification:
            if rule.matches(kind, impact, scope, criticality):
                return rule
        return None

    def classify(self, kind: str, impact: str, scope: str, criticality: str) -> str | None:
        """The level for a fault (first match of the table), or None when no row matches."""
        rule = self.classification_rule(kind, impact, scope, criticality)
        return None if rule is None else rule.level

    def escalation_steps(self, level: str, target: str) -> tuple[EscalationStep, ...]:
        """The steps for one target of one level, earliest first."""
        self.level(level)
        return tuple(
            sorted((s for s in self.escalations if s.applies(level, target)), key=lambda s: s.at)
        )


def _check_word(label: str, value: str, allowed: Sequence[str]) -> None:
    if value not in allowed:
        raise ValueError(f"unknown {label} {value!r} (expected one of: {', '.join(allowed)})")


# -- loading -----------------------------------------------------------------------------------

_POLICY_KEYS = frozenset(
    {
        "name",
        "description",
        "source",
        "calendar",
        "levels",
        "classification",
        "escalations",
        "followup",
        "warranty",
    }
)
_LEVEL_KEYS = frozenset({"definition", "calendar", "targets", "manual_only"})
_TARGET_KEYS = frozenset({"duration", "calendar"})
_RULE_KEYS = frozenset({"when", "level"})
_WHEN_KEYS = frozenset({"kind", "impact", "scope", "criticality"})
_STEP_KEYS = frozenset({"action", "at", "target", "levels", "note"})
_FOLLOWUP_KEYS = frozenset({"after", "delay", "calendar"})
_WARRANTY_KEYS = frozenset(
    {"basis", "months", "repaired_parts_months", "extend_after_repair", "note"}
)


class _Calendars:
    """Resolves the calendar names of one policy file, each once."""

    def __init__(self, rules_dir: Path | None) -> None:
        self.rules_dir = rules_dir
        self.loaded: dict[str, Calendar] = {}

    def get(self, node: Node) -> Calendar:
        name = node.text()
        if name not in self.loaded:
            try:
                self.loaded[name] = load_calendar(name, self.rules_dir)
            except ConfigError as exc:
                raise node.error(f"calendar {name!r} is invalid: {exc}") from None
            except ValueError as exc:
                raise node.error(str(exc)) from None
        return self.loaded[name]


def _duration(node: Node) -> Duration:
    try:
        return parse_duration(node.text())
    except ValueError as exc:
        raise node.error(str(exc)) from None


def _words(node: Node, allowed: Sequence[str] | frozenset[str], label: str) -> frozenset[str]:
    out: set[str] = set()
    for item, word in node.walk_texts():
        if word not in allowed:
            raise item.error(
                f"unknown {label} {word!r} (expected one of: {', '.join(sorted(allowed))})"
            )
        out.add(word)
    return frozenset(out)


def _target(name: str, node: Node, default_calendar: Node | None, cals: _Calendars) -> Target:
    if name not in TARGET_NAMES:
        raise node.error(f"unknown target {name!r} (expected one of: {', '.join(TARGET_NAMES)})")
    cal_node = default_calendar
    if node.raw.tag.endswith(":map"):
        keys = node.mapping(_TARGET_KEYS)
        if "duration" not in keys:
            raise node.error("missing key 'duration'")
        duration = _duration(keys["duration"])
        cal_node = keys.get("calendar", default_calendar)
    else:
        duration = _duration(node)
    if cal_node is None:
        raise node.error("no calendar: give 'calendar' here, on the level or on the policy")
    return Target(name, duration, cals.get(cal_node))


def _level(name: str, node: Node, policy_calendar: Node | None, cals: _Calendars) -> Level:
    keys = node.mapping(_LEVEL_KEYS)
    if "definition" not in keys:
        raise node.error("missing key 'definition'")
    if "targets" not in keys:
        raise node.error("missing key 'targets'")
    default_calendar = keys.get("calendar", policy_calendar)
    targets = {
        target_name: _target(target_name, target_node, default_calendar, cals)
        for target_name, target_node in keys["targets"].mapping().items()
    }
    if not targets:
        raise keys["targets"].error("a level needs at least one target")
    return Level(
        name=name,
        definition=keys["definition"].text(),
        targets=MappingProxyType(targets),
        manual_only=keys["manual_only"].boolean() if "manual_only" in keys else False,
    )


def _rule(node: Node, levels: Mapping[str, Level]) -> ClassRule:
    keys = node.mapping(_RULE_KEYS)
    if "level" not in keys:
        raise node.error("missing key 'level'")
    level = keys["level"].text()
    if level not in levels:
        raise keys["level"].error(f"unknown level {level!r} (levels: {', '.join(levels)})")
    if levels[level].manual_only:
        raise keys["level"].error(f"level {level!r} is manual_only: never chosen by the table")
    when = keys["when"].mapping(_WHEN_KEYS) if "when" in keys else {}
    return ClassRule(
        level=level,
        kinds=_words(when["kind"], FAULT_KINDS, "fault kind") if "kind" in when else None,
        impacts=_words(when["impact"], IMPACTS, "impact") if "impact" in when else None,
        scopes=_words(when["scope"], SCOPES, "scope") if "scope" in when else None,
        criticalities=(
            _words(when["criticality"], CRITICALITIES, "criticality")
            if "criticality" in when
            else None
        ),
        line=node.line,
    )


def _step(node: Node, levels: Mapping[str, Level]) -> EscalationStep:
    keys = node.mapping(_STEP_KEYS)
    node.require(keys, "action", "at")
    action = keys["action"].choice(EscalationAction, "action")
    at = keys["at"].number()
    if at < 0:
        raise keys["at"].error(f"must be a fraction >= 0 of the target, got {at}")
    target = keys["target"].text() if "target" in keys else None
    step_levels = _words(keys["levels"], tuple(levels), "level") if "levels" in keys else None
    if target is not None:
        applicable = [lv for lv in levels.values() if step_levels is None or lv.name in step_levels]
        if not any(target in lv.targets for lv in applicable):
            raise keys["target"].error(f"no level it applies to has a target {target!r}")
    return EscalationStep(
        action=action,
        at=at,
        target=target,
        levels=step_levels,
        note=keys["note"].text() if "note" in keys else "",
    )


def _warranty(node: Node) -> Warranty:
    keys = node.mapping(_WARRANTY_KEYS)
    node.require(keys, "basis", "months")
    basis = keys["basis"].choice(WarrantyBasis, "basis")
    months = keys["months"].integer()
    if months <= 0:
        raise keys["months"].error(f"must be a positive number of months, got {months}")
    parts = keys["repaired_parts_months"].integer() if "repaired_parts_months" in keys else None
    if parts is not None and parts <= 0:
        raise keys["repaired_parts_months"].error(f"must be positive, got {parts}")
    return Warranty(
        basis=basis,
        months=months,
        repaired_parts_months=parts,
        extend_after_repair=(
            keys["extend_after_repair"].boolean() if "extend_after_repair" in keys else False
        ),
        note=keys["note"].text() if "note" in keys else "",
    )


def policy_from_node(root: Node, default_name: str, rules_dir: Path | None) -> Policy:
    """Build a Policy from a parsed file; ConfigError names the key and line."""
    keys = root.mapping(_POLICY_KEYS)
    if "name" in keys and keys["name"].text() != default_name:
        raise keys["name"].error(f"name {keys['name'].text()!r} differs from the file name")
    cals = _Calendars(rules_dir)
    if "levels" not in keys:
        raise root.error("missing key 'levels'")
    level_nodes = keys["levels"].mapping()
    if not level_nodes:
        raise keys["levels"].error("a policy needs at least one level")
    levels = {
        name: _level(name, node, keys.get("calendar"), cals) for name, node in level_nodes.items()
    }
    if "classification" not in keys:
        raise root.error("missing key 'classification' (the first-match table of levels)")
    rules = tuple(_rule(node, levels) for node in keys["classification"].items())
    steps = (
        tuple(_step(node, levels) for node in keys["escalations"].items())
        if "escalations" in keys
        else ()
    )
    followup = None
    if "followup" in keys:
        fkeys = keys["followup"].mapping(_FOLLOWUP_KEYS)
        keys["followup"].require(fkeys, "after", "delay", "calendar")
        after = fkeys["after"].text()
        if after not in TARGET_NAMES:
            raise fkeys["after"].error(f"unknown target {after!r}")
        followup = Followup(after, _duration(fkeys["delay"]), cals.get(fkeys["calendar"]))
    return Policy(
        name=default_name,
        description=keys["description"].text() if "description" in keys else "",
        levels=MappingProxyType(levels),
        classification=rules,
        escalations=steps,
        followup=followup,
        warranty=_warranty(keys["warranty"]) if "warranty" in keys else None,
        source=keys["source"].text() if "source" in keys else "",
    )


def policy_names(rules_dir: Path | None = None) -> list[str]:
    return preset_names("policies", rules_dir)


def _read_policy(name_or_path: str | Path, rules_dir: Path | None) -> Policy:
    """Find and parse one policy file (``read_yaml`` raises ConfigError if it cannot read)."""
    path = find_preset("policies", name_or_path, rules_dir)
    if rules_dir is None and path.resolve().parent.name == "policies":
        rules_dir = path.resolve().parent.parent
    return policy_from_node(read_yaml(path), path.stem, rules_dir)


# The one policy cache: (reference, rules_dir, $FLEETDESK_RULES) -> Policy. The override is in
# the key because a preset name resolves through it. Failed loads are not kept.
_POLICIES: dict[tuple[str, Path | None, str | None], Policy] = {}


def load_policy(name_or_path: str | Path, rules_dir: Path | None = None) -> Policy:
    """A preset by name (``rules_dir/policies/<name>.yaml``, falling back to the shipped
    presets) or a policy file by path. Calendars named in the file are looked up in
    ``rules_dir`` (for a file under ``X/policies/``: in ``X``), then among the shipped presets.
    Unknown names raise ValueError, bad files ``ConfigError``, each with a one-line message.

    This is the one policy cache: each reference is read once per process (the rules engine,
    the ticket book and the CLI all come here), so callers keep no copies of their own and the
    hot paths do no file I/O. ``clear_policy_cache`` forgets every policy read.
    """
    reference = (
        os.path.abspath(name_or_path) if is_file_reference(name_or_path) else str(name_or_path)
    )
    key = (reference, rules_dir, os.environ.get(RULES_ENV))
    policy = _POLICIES.get(key)
    if policy is None:  # two threads may both read a new file: the same answer, kept once
        policy = _POLICIES[key] = _read_policy(name_or_path, rules_dir)
    return policy


def clear_policy_cache() -> None:
    """Forget every policy read, so the next ``load_policy`` reads the files again."""
    _POLICIES.clear()
