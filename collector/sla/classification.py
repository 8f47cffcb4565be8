"""A policy's classification table: first-match rows from fault facts to a level."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from collector.config.yamlfile import Node
from collector.sla.vocabulary import CRITICALITIES, FAULT_KINDS, IMPACTS, SCOPES

_RULE_KEYS = frozenset({"when", "level"})
_WHEN_KEYS = frozenset({"kind", "impact", "scope", "criticality"})


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


def check_word(label: str, value: str, allowed: Sequence[str]) -> None:
    if value not in allowed:
        raise ValueError(f"unknown {label} {value!r} (expected one of: {', '.join(allowed)})")


def words(node: Node, allowed: Sequence[str] | frozenset[str], label: str) -> frozenset[str]:
    out: set[str] = set()
    for item, word in node.walk_texts():
        if word not in allowed:
            raise item.error(
                f"unknown {label} {word!r} (expected one of: {', '.join(sorted(allowed))})"
            )
        out.add(word)
    return frozenset(out)


def parse_rule(node: Node, levels: Mapping[str, bool]) -> ClassRule:
    """One row; ``levels`` maps each level name to whether it is manual_only."""
    keys = node.mapping(_RULE_KEYS)
    if "level" not in keys:
        raise node.error("missing key 'level'")
    level = keys["level"].text()
    if level not in levels:
        raise keys["level"].error(f"unknown level {level!r} (levels: {', '.join(levels)})")
    if levels[level]:
        raise keys["level"].error(f"level {level!r} is manual_only: never chosen by the table")
    when = keys["when"].mapping(_WHEN_KEYS) if "when" in keys else {}
    return ClassRule(
        level=level,
        kinds=words(when["kind"], FAULT_KINDS, "fault kind") if "kind" in when else None,
        impacts=words(when["impact"], IMPACTS, "impact") if "impact" in when else None,
        scopes=words(when["scope"], SCOPES, "scope") if "scope" in when else None,
        criticalities=(
            words(when["criticality"], CRITICALITIES, "criticality")
            if "criticality" in when
            else None
        ),
        line=node.line,
    )
