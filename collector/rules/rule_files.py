"""Rule files: YAML parsed and checked into a ``RuleSet`` (see ``docs/rules.md``).

Every error is a ``ConfigError`` naming the file, the line, the rule and the reason, in one
line: ``file:line: rule 'NAME': key: reason``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final

import yaml

from agent import wire
from collector.config.durations import parse_seconds as parse_duration
from collector.config.errors import ConfigError
from collector.config.yamlfile import Node, parse_yaml
from collector.preset_paths import default_rules_dir
from collector.rules.faults import Impact
from collector.rules.inputs import STANDARD_TRAPS
from collector.rules.rule_model import (
    Change,
    Condition,
    Flapping,
    Match,
    Offline,
    PowerLoss,
    Rule,
    RuleSet,
    Selector,
    SiteOutage,
    Threshold,
)

RULES_SUBDIR: Final = "rules.d"
_GLOB_PARTS: Final = re.compile(r"\*|\?|\[!?[a-z0-9_]+\]")

RuleError = ConfigError  # the old name of a rule file's error


def rule_error(file: str, line: int | None, rule: str | None, key: str, reason: str) -> ConfigError:
    """The error of a rule file; the rule's name, when known, leads the key."""
    return ConfigError(file, f"rule {rule!r}: {key}" if rule else key, reason, line or None)


def load_rules(dir_or_file: str | Path | None = None) -> RuleSet:
    """Rules from a file, or from ``DIR/rules.d/*.yaml`` (else ``DIR/*.yaml``), sorted by name.

    Without an argument: the shipped rules folder (``collector.preset_paths.default_rules_dir``).
    """
    path = Path(dir_or_file) if dir_or_file is not None else default_rules_dir()
    return parse_rule_files(rule_files(path))


def rule_files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise rule_error(str(path), None, None, "path", "no such rule file or folder")
    folder = path / RULES_SUBDIR if (path / RULES_SUBDIR).is_dir() else path
    files = sorted([*folder.glob("*.yaml"), *folder.glob("*.yml")])
    if not files:
        raise rule_error(str(folder), None, None, "path", "no *.yaml rule files")
    return files


def check_rule_file(path: Path, rules_dir: Path) -> None:
    """Validate one rule file: alone, then as part of its folder's set (for cross-references),
    reporting only this file's problems. Raises ConfigError."""
    parse_rule_files([path])
    try:
        parse_rule_files(rule_files(rules_dir))
    except ConfigError as exc:
        if Path(exc.source) == path:
            raise


def parse_rule_files(files: Iterable[Path]) -> RuleSet:
    texts = []
    for f in files:
        try:
            texts.append((f.read_text(encoding="utf-8"), str(f)))
        except (OSError, UnicodeDecodeError) as exc:
            raise rule_error(str(f), None, None, "file", f"cannot read: {exc}") from None
    return parse_rules(texts)


def parse_rules(texts: Iterable[tuple[str, str]]) -> RuleSet:
    """Parse ``(text, source name)`` pairs into one checked rule set."""
    rules: list[Rule] = []
    traps = dict(STANDARD_TRAPS)
    power: PowerLoss | None = None
    sources = []
    for text, source in texts:
        sources.append(source)
        doc = _load_yaml(text, source)
        if doc is None:
            continue
        if not isinstance(doc, dict):
            raise rule_error(source, 1, None, "document", "expected a mapping with 'rules'")
        for key in doc:
            if key not in ("rules", "traps", "power"):
                raise rule_error(source, _line(doc), None, str(key), "unknown top-level key")
        raw_rules = doc.get("rules") or []
        if not isinstance(raw_rules, list):
            raise rule_error(source, _line(doc), None, "rules", "expected a list of rules")
        rules.extend(_rule(raw, source) for raw in raw_rules)
        traps |= _traps(doc.get("traps"), source, _line(doc))
        if "power" in doc:
            if power is not None:
                raise rule_error(source, _line(doc), None, "power", "given in two files")
            power = _power(doc["power"], source)
    ruleset = RuleSet(
        rules=tuple(rules),
        traps=MappingProxyType(traps),
        power=power or PowerLoss(),
        sources=tuple(sources),
    )
    _check_set(ruleset)
    return ruleset


def _check_set(ruleset: RuleSet) -> None:
    seen: dict[str, Rule] = {}
    for rule in ruleset.rules:
        if rule.name in seen:
            first = seen[rule.name]
            raise rule_error(
                rule.file,
                rule.line,
                rule.name,
                "name",
                f"also defined at {first.file}:{first.line}",
            )
        seen[rule.name] = rule
    for single in (Offline, SiteOutage, Flapping):
        found = ruleset.of_type(single)
        if len(found) > 1:
            r = found[1]
            raise rule_error(r.file, r.line, r.name, "when", f"only one {single.__name__} rule")
    offline_kinds = {r.fault for r in ruleset.of_type(Offline)}
    for r in ruleset.of_type(SiteOutage):
        if not offline_kinds:
            raise rule_error(r.file, r.line, r.name, "when", "site_outage needs an offline rule")
    kinds = ruleset.kinds
    for r in ruleset.of_type(Flapping):
        assert isinstance(r.condition, Flapping)
        for kind in sorted(r.condition.of):
            if kind not in kinds:
                raise rule_error(
                    r.file, r.line, r.name, "when.flapping.of", f"no rule raises {kind!r}"
                )
    for r in ruleset.rules:
        if not isinstance(r.condition, Offline | SiteOutage) and r.fault in offline_kinds:
            raise rule_error(r.file, r.line, r.name, "fault", f"{r.fault!r} is the offline rule's")


class _LineDict(dict[Any, Any]):
    line = 0


def _load_yaml(text: str, source: str) -> Any:
    """The document as plain values, every mapping a ``_LineDict`` knowing its line; read
    with the one strict YAML reader (duplicate keys and syntax errors are ConfigErrors)."""
    if all(not line.strip() or line.lstrip().startswith("#") for line in text.splitlines()):
        return None  # an empty rule file is allowed
    return _plain(parse_yaml(text, source))


def _plain(node: Node) -> Any:
    if isinstance(node.raw, yaml.MappingNode):
        mapping = _LineDict({key: _plain(value) for key, value in node.mapping().items()})
        mapping.line = node.line
        return mapping
    if isinstance(node.raw, yaml.SequenceNode):
        return [_plain(item) for item in node.items()]
    return node.value


def _line(obj: object) -> int:
    return obj.line if isinstance(obj, _LineDict) else 0


_RULE_KEYS: Final = frozenset({"name", "fault", "impact", "match", "when", "description"})
_CONDITIONS: Final = ("offline", "site_outage", "threshold", "rate", "change", "event", "trap")


def _rule(raw: object, source: str) -> Rule:
    line = _line(raw)
    if not isinstance(raw, dict):
        raise rule_error(source, line, None, "rules", "each rule must be a mapping")
    name = raw.get("name")
    if not isinstance(name, str) or not wire.valid_name(name):
        raise rule_error(source, line, None, "name", f"must be [a-z][a-z0-9_]*: {name!r}")

    def fail(key: str, reason: str) -> ConfigError:
        return rule_error(source, line, name, key, reason)

    for key in raw:
        if key not in _RULE_KEYS:
            raise fail(str(key), f"unknown key (known: {', '.join(sorted(_RULE_KEYS))})")
    fault = raw.get("fault", name)
    if not isinstance(fault, str) or not wire.valid_name(fault):
        raise fail("fault", f"must be [a-z][a-z0-9_]*: {fault!r}")
    try:
        impact = Impact(str(raw.get("impact")))
    except ValueError:
        known = ", ".join(i.value for i in Impact)
        raise fail("impact", f"must be one of {known}: {raw.get('impact')!r}") from None
    when = raw.get("when")
    if not isinstance(when, dict) or len(when) != 1:
        raise fail("when", f"exactly one condition of: {', '.join((*_CONDITIONS, 'flapping'))}")
    ((ctype, body),) = when.items()
    condition = _condition(str(ctype), body, fail)
    if isinstance(condition, SiteOutage | Flapping) and raw.get("match"):
        raise fail("match", f"a {ctype} rule applies to every device")
    description = raw.get("description", "")
    if not isinstance(description, str):
        raise fail("description", "must be a string")
    return Rule(
        name=name,
        fault=fault,
        impact=impact,
        condition=condition,
        selector=_selector(raw.get("match"), fail),
        description=description,
        file=source,
        line=line,
    )


def _selector(raw: object, fail: Any) -> Selector:
    if raw is None:
        return Selector()
    if not isinstance(raw, dict):
        raise fail("match", "expected a mapping with class, model and/or labels")
    for key in raw:
        if key not in ("class", "model", "labels"):
            raise fail(f"match.{key}", "unknown key (known: class, model, labels)")
    labels = raw.get("labels") or {}
    if not isinstance(labels, dict) or not all(isinstance(v, str) for v in labels.values()):
        raise fail("match.labels", "expected a mapping of label -> string")
    return Selector(
        classes=frozenset(_strings(raw.get("class"), "match.class", fail)),
        models=tuple(_strings(raw.get("model"), "match.model", fail)),
        labels=MappingProxyType({str(k): v for k, v in labels.items()}),
    )


def _strings(raw: object, key: str, fail: Any) -> list[str]:
    if raw is None:
        return []
    items = [raw] if isinstance(raw, str) else raw
    if not isinstance(items, list) or not items or not all(isinstance(i, str) for i in items):
        raise fail(key, "expected a string or a non-empty list of strings")
    return list(items)


class _Body:
    """Reads one condition's keys, failing with the full key path; rejects unknown keys."""

    def __init__(self, ctype: str, raw: object, fail: Any, allowed: Iterable[str]) -> None:
        if raw is None:
            raw = {}
        if not isinstance(raw, dict):
            raise fail(f"when.{ctype}", "expected a mapping")
        self.ctype, self.raw, self.fail = ctype, raw, fail
        allowed = set(allowed)
        for key in raw:
            if key not in allowed:
                raise fail(
                    f"when.{ctype}.{key}", f"unknown key (known: {', '.join(sorted(allowed))})"
                )

    def err(self, key: str, reason: str) -> ConfigError:
        return self.fail(f"when.{self.ctype}.{key}", reason)  # type: ignore[no-any-return]

    def has(self, key: str) -> bool:
        return key in self.raw

    def number(self, key: str, default: float | None = None) -> float:
        value = self.raw.get(key, default)
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
        ):
            raise self.err(key, f"expected a number: {value!r}")
        return float(value)

    def integer(self, key: str, default: int, low: int) -> int:
        value = self.raw.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise self.err(key, f"expected an integer >= {low}: {value!r}")
        return value

    def duration(self, key: str, default: str | None) -> float:
        value = self.raw.get(key, default)
        try:
            return parse_duration(value)
        except ValueError as exc:
            raise self.err(key, str(exc)) from None

    def metric(self, key: str = "metric", *, glob: bool = False) -> str:
        value = self.raw.get(key)
        check = value
        if glob and isinstance(value, str):  # a glob: *, ? and [set] stand for name characters
            check = _GLOB_PARTS.sub("a", value)
        if not isinstance(check, str) or not wire.valid_name(check):
            what = "a metric name or glob" if glob else "a metric name"
            raise self.err(key, f"expected {what} [a-z][a-z0-9_]*: {value!r}")
        assert isinstance(value, str)
        return value

    def names(self, key: str, *, required: bool) -> frozenset[str]:
        value = self.raw.get(key)
        if value is None and not required:
            return frozenset()
        items = [value] if isinstance(value, str) else value
        if (
            not isinstance(items, list)
            or not items
            or not all(isinstance(i, str) and i for i in items)
        ):
            raise self.err(key, "expected a name or a non-empty list of names")
        return frozenset(items)


def _condition(ctype: str, raw: object, fail: Any) -> Condition:
    if ctype == "offline":
        b = _Body(ctype, raw, fail, ["missed"])
        return Offline(missed=b.integer("missed", 3, 1))
    if ctype == "site_outage":
        b = _Body(ctype, raw, fail, ["fraction", "min_devices", "within"])
        fraction = b.number("fraction", 0.5)
        if not 0 < fraction <= 1:
            raise b.err("fraction", f"must be in (0, 1]: {fraction}")
        return SiteOutage(
            fraction=fraction,
            min_devices=b.integer("min_devices", 2, 1),
            within_s=b.duration("within", "5m"),
        )
    if ctype in ("threshold", "rate"):
        return _threshold(_Body(ctype, raw, fail, _THRESHOLD_KEYS), rate=ctype == "rate")
    if ctype == "change":
        b = _Body(ctype, raw, fail, ["metric", "direction", "clear_after"])
        direction = b.raw.get("direction", "any")
        if direction not in ("any", "decrease", "increase"):
            raise b.err("direction", f"must be any, decrease or increase: {direction!r}")
        return Change(
            metric=b.metric(),
            direction=direction,
            clear_after_s=b.duration("clear_after", "10m"),
        )
    if ctype in ("event", "trap"):
        b = _Body(ctype, raw, fail, ["names", "clear_on", "key", "clear_after"])
        names = b.names("names", required=True)
        clear_on = b.names("clear_on", required=False)
        key = b.raw.get("key")
        if key is not None and (not isinstance(key, str) or not key):
            raise b.err("key", f"expected a field name: {key!r}")
        clear_after = b.duration("clear_after", None) if b.has("clear_after") else None
        if not clear_on and clear_after is None:
            raise b.err("clear_on", "give clear_on names, clear_after, or both")
        if names & clear_on:
            raise b.err("clear_on", f"a name both raises and clears: {sorted(names & clear_on)}")
        return Match(
            source="event" if ctype == "event" else "trap",
            names=names,
            clear_on=clear_on,
            key=key,
            clear_after_s=clear_after,
        )
    if ctype == "flapping":
        b = _Body(ctype, raw, fail, ["opens", "within", "of"])
        return Flapping(
            opens=b.integer("opens", 4, 2),
            within_s=b.duration("within", "1h"),
            of=b.names("of", required=False),
        )
    known = ", ".join((*_CONDITIONS, "flapping"))
    raise fail(f"when.{ctype}", f"unknown condition (known: {known})")


_THRESHOLD_KEYS: Final = (
    "metric",
    "above",
    "below",
    "equals",
    "not_equals",
    "for",
    "clear_below",
    "clear_above",
)


def _threshold(b: _Body, *, rate: bool) -> Threshold:
    ops = [op for op in ("above", "below", "equals", "not_equals") if b.has(op)]
    if len(ops) != 1:
        raise b.err("above", "exactly one of above, below, equals, not_equals")
    op = ops[0]
    value: float | bool | str
    clear: float | None = None
    if op in ("above", "below"):
        value = b.number(op)
        wrong = "clear_above" if op == "above" else "clear_below"
        right = "clear_below" if op == "above" else "clear_above"
        if b.has(wrong):
            raise b.err(wrong, f"an {op} rule clears with {right}")
        if b.has(right):
            clear = b.number(right)
            if (op == "above" and clear > value) or (op == "below" and clear < value):
                raise b.err(
                    right, f"the clear threshold must not be past the raise threshold {value}"
                )
    else:
        raw = b.raw[op]
        if not isinstance(raw, bool | int | float | str) or (
            isinstance(raw, float) and not math.isfinite(raw)
        ):
            raise b.err(op, f"expected a number, boolean or string: {raw!r}")
        value = raw
        if rate:
            raise b.err(op, "a rate compares with above or below")
        for extra in ("clear_below", "clear_above"):
            if b.has(extra):
                raise b.err(extra, f"an {op} rule clears when the value no longer matches")
    metric = b.metric(glob=not rate)
    return Threshold(
        metric=metric,
        op=op,  # type: ignore[arg-type]  # one of the four names checked above
        value=value,
        for_s=b.duration("for", "0s"),
        clear=clear,
        rate=rate,
    )


def _traps(raw: object, source: str, line: int) -> dict[str, str]:
    if raw is None:
        return {}
    if not isinstance(raw, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in raw.items()
    ):
        raise rule_error(
            source, _line(raw) or line, None, "traps", "expected a mapping OID -> trap name"
        )
    return dict(raw)


def _power(raw: object, source: str) -> PowerLoss:
    def fail(key: str, reason: str) -> ConfigError:
        return rule_error(source, _line(raw), None, key, reason)

    b = _Body(
        "power",
        raw,
        lambda key, reason: fail(key.removeprefix("when."), reason),
        ["events", "traps", "within"],
    )
    return PowerLoss(
        events=b.names("events", required=False),
        traps=b.names("traps", required=False),
        within_s=b.duration("within", "10m"),
    )
