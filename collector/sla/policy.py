"""Service policies: fault levels, their SLA targets on calendars, classification, escalation.

A policy file (``rules/policies/<name>.yaml``) is parsed strictly into the frozen ``Policy``
below; every calendar it names is resolved at load, so a policy that loads can answer
``deadlines`` and ``classify`` without further I/O. See docs/policies.md for the file format.
"""

from __future__ import annotations

import enum
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from types import MappingProxyType

import yaml

from collector.config.durations import Duration, parse_duration
from collector.config.errors import ConfigError
from collector.config.yamlfile import Node, read_yaml
from collector.preset_paths import RULES_ENV, find_preset, is_file_reference, preset_names
from collector.sla.calendar import Calendar, Pauses, load_calendar
from collector.sla.classification import ClassRule, check_word, parse_rule, words
from collector.sla.contract import (
    Charge,
    TargetStart,
    Warranty,
    WarrantyBasis,
    parse_exemptions,
    parse_warranty,
)
from collector.sla.vocabulary import CRITICALITIES, IMPACTS, SCOPES

__all__ = [
    "Charge",
    "ClassRule",
    "Level",
    "Policy",
    "Target",
    "TargetStart",
    "Warranty",
    "WarrantyBasis",
    "load_policy",
]

TARGET_NAMES = (
    "response",
    "processing",
    "onsite",
    "diagnosis",
    "resolution",
    "plan",
    "repair",
    "followup",
)


class UnknownLevelError(LookupError, ValueError):
    """A level name the policy does not define: a lookup error (file problems are ConfigError)."""


@dataclass(frozen=True)
class Target:
    """One SLA target of a level: ``duration`` of business time on ``calendar``."""

    name: str
    duration: Duration
    calendar: Calendar
    starts: TargetStart = TargetStart.ONSET  # a desk action starts the others
    operator_default: bool = False  # the seed says "agreed in the contract": set per customer

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
    # No fixed resolution deadline: fixed in a later software or hardware release (001 C/D).
    resolution_by_release: bool = False


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
    exemptions: frozenset[str] = frozenset()  # the ones the seed names; none: no exemption
    extends: str | None = None  # a customer policy: the preset it overrides

    def exempts(self, exemption: str) -> bool:
        return exemption in self.exemptions

    def deadlines(self, level: str, start: datetime, pauses: Pauses = ()) -> dict[str, datetime]:
        """Every target of ``level`` -> its deadline for a clock started at ``start``.

        A target a desk action starts (``starts: received`` / ``request``) is computed as if
        that action happened at ``start``; ``Target.starts`` tells which ones they are."""
        return {
            name: target.deadline(start, pauses)
            for name, target in self.level(level).targets.items()
        }

    def opening_deadlines(self, level: str, onset: datetime) -> dict[str, datetime]:
        """The deadlines known when a fault opens: the targets that run from the onset or the
        detection (taken as the onset here); those a desk action starts come later."""
        targets = self.level(level).targets
        return {
            name: due
            for name, due in self.deadlines(level, onset).items()
            if targets[name].starts in (TargetStart.ONSET, TargetStart.DETECTION)
        }

    def level(self, name: str) -> Level:
        try:
            return self.levels[name]
        except KeyError:
            raise UnknownLevelError(
                f"policy {self.name!r} has no level {name!r} (levels: {', '.join(self.levels)})"
            ) from None

    def classification_rule(
        self, kind: str, impact: str, scope: str, criticality: str
    ) -> ClassRule | None:
        """The first rule of the table matching the fault, or None."""
        check_word("impact", impact, IMPACTS)
        check_word("scope", scope, SCOPES)
        check_word("criticality", criticality, CRITICALITIES)
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
        "exemptions",
        "operator_defaults",
    }
)
_LEVEL_KEYS = frozenset(
    {"definition", "calendar", "targets", "manual_only", "resolution_by_release"}
)
_TARGET_KEYS = frozenset({"duration", "calendar", "starts", "operator_default"})
_STEP_KEYS = frozenset({"action", "at", "target", "levels", "note"})
_FOLLOWUP_KEYS = frozenset({"after", "delay", "calendar"})


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


def _target(
    name: str,
    node: Node,
    default_calendar: Node | None,
    cals: _Calendars,
    default_operator: bool = False,
    *,
    calendar_default: Calendar | None = None,
) -> Target:
    if name not in TARGET_NAMES:
        raise node.error(f"unknown target {name!r} (expected one of: {', '.join(TARGET_NAMES)})")
    cal_node = default_calendar
    starts, operator_default = TargetStart.ONSET, default_operator
    if node.raw.tag.endswith(":map"):
        keys = node.mapping(_TARGET_KEYS)
        if "duration" not in keys:
            raise node.error("missing key 'duration'")
        duration = _duration(keys["duration"])
        cal_node = keys.get("calendar", default_calendar)
        if "starts" in keys:
            starts = keys["starts"].choice(TargetStart, "starts")
        if "operator_default" in keys:
            operator_default = keys["operator_default"].boolean()
    else:
        duration = _duration(node)
    if cal_node is None and calendar_default is not None:
        return Target(name, duration, calendar_default, starts, operator_default)
    if cal_node is None:
        raise node.error("no calendar: give 'calendar' here, on the level or on the policy")
    return Target(name, duration, cals.get(cal_node), starts, operator_default)


def _level(
    name: str, node: Node, policy_calendar: Node | None, cals: _Calendars, operator: bool
) -> Level:
    keys = node.mapping(_LEVEL_KEYS)
    if "definition" not in keys:
        raise node.error("missing key 'definition'")
    if "targets" not in keys:
        raise node.error("missing key 'targets'")
    default_calendar = keys.get("calendar", policy_calendar)
    targets = {
        target_name: _target(target_name, target_node, default_calendar, cals, operator)
        for target_name, target_node in keys["targets"].mapping().items()
    }
    by_release = (
        keys["resolution_by_release"].boolean() if "resolution_by_release" in keys else False
    )
    if by_release and "resolution" in targets:
        raise keys["resolution_by_release"].error(
            "a level resolved by a later release has no 'resolution' target"
        )
    if not targets:
        raise keys["targets"].error("a level needs at least one target")
    return Level(
        name=name,
        definition=keys["definition"].text(),
        targets=MappingProxyType(targets),
        manual_only=keys["manual_only"].boolean() if "manual_only" in keys else False,
        resolution_by_release=by_release,
    )


def _step(node: Node, levels: Mapping[str, Level]) -> EscalationStep:
    keys = node.mapping(_STEP_KEYS)
    node.require(keys, "action", "at")
    action = keys["action"].choice(EscalationAction, "action")
    at = keys["at"].number()
    if at < 0:
        raise keys["at"].error(f"must be a fraction >= 0 of the target, got {at}")
    target = keys["target"].text() if "target" in keys else None
    step_levels = words(keys["levels"], tuple(levels), "level") if "levels" in keys else None
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


_CUSTOMER_KEYS = frozenset(
    {"name", "extends", "description", "source", "overrides", "exemptions", "warranty"}
)


def _customer_policy(root: Node, name: str, rules_dir: Path | None) -> Policy:
    """A customer's policy: a preset (``extends``) with some targets changed (``overrides``:
    level -> target -> duration), its exemptions or warranty replaced; nothing else copied."""
    keys = root.mapping(_CUSTOMER_KEYS)
    if "name" in keys and keys["name"].text() != name:
        raise keys["name"].error(f"name {keys['name'].text()!r} differs from the file name")
    ref = keys["extends"].text()
    if ref == name:
        raise keys["extends"].error("a policy cannot extend itself")
    try:
        base = load_policy(ref, rules_dir)
    except ValueError as exc:  # ConfigError included: one line, the base file's own
        raise keys["extends"].error(f"cannot load policy {ref!r}: {exc}") from None
    if base.extends is not None:
        raise keys["extends"].error(f"{ref!r} extends another policy: extend the preset itself")
    cals = _Calendars(rules_dir)
    levels = dict(base.levels)
    for level_name, node in (keys["overrides"].mapping() if "overrides" in keys else {}).items():
        if level_name not in levels:
            raise node.error(f"policy {ref!r} has no level {level_name!r}")
        level = levels[level_name]
        targets = dict(level.targets)
        for target_name, target_node in node.mapping().items():
            old = targets.get(target_name)
            cal = old.calendar if old is not None else level_calendar(level)
            new = _target(target_name, target_node, None, cals, calendar_default=cal)
            targets[target_name] = replace(new, operator_default=False)
        if level.resolution_by_release and "resolution" in targets:
            raise node.error(f"level {level_name!r} is resolved by a later release")
        levels[level_name] = replace(level, targets=MappingProxyType(targets))
    return replace(
        base,
        name=name,
        description=keys["description"].text() if "description" in keys else base.description,
        source=keys["source"].text() if "source" in keys else base.source,
        levels=MappingProxyType(levels),
        warranty=parse_warranty(keys["warranty"]) if "warranty" in keys else base.warranty,
        exemptions=(
            parse_exemptions(keys["exemptions"]) if "exemptions" in keys else base.exemptions
        ),
        extends=ref,
    )


def level_calendar(level: Level) -> Calendar | None:
    """The calendar most of a level's targets run on (for a target an override adds)."""
    names = [t.calendar for t in level.targets.values()]
    return max(names, key=names.count) if names else None


def policy_from_node(root: Node, default_name: str, rules_dir: Path | None) -> Policy:
    """Build a Policy from a parsed file; ConfigError names the key and line."""
    if isinstance(root.raw, yaml.MappingNode) and "extends" in root.mapping():
        return _customer_policy(root, default_name, rules_dir)
    keys = root.mapping(_POLICY_KEYS)
    if "name" in keys and keys["name"].text() != default_name:
        raise keys["name"].error(f"name {keys['name'].text()!r} differs from the file name")
    cals = _Calendars(rules_dir)
    if "levels" not in keys:
        raise root.error("missing key 'levels'")
    level_nodes = keys["levels"].mapping()
    if not level_nodes:
        raise keys["levels"].error("a policy needs at least one level")
    operator = keys["operator_defaults"].boolean() if "operator_defaults" in keys else False
    levels = {
        name: _level(name, node, keys.get("calendar"), cals, operator)
        for name, node in level_nodes.items()
    }
    if "classification" not in keys:
        raise root.error("missing key 'classification' (the first-match table of levels)")
    manual = {name: level.manual_only for name, level in levels.items()}
    rules = tuple(parse_rule(node, manual) for node in keys["classification"].items())
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
        warranty=parse_warranty(keys["warranty"]) if "warranty" in keys else None,
        source=keys["source"].text() if "source" in keys else "",
        exemptions=parse_exemptions(keys["exemptions"]) if "exemptions" in keys else frozenset(),
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
