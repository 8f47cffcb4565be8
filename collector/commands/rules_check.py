"""Validation of a rules folder, one validator per file type.

``VALIDATORS`` lists, for each kind of file, the folder and pattern it lives under and the
function that loads it strictly (raising ``ConfigError``). ``check_rules_dir`` runs them all
and returns every problem, one per file, each naming file, line, key and what is wrong.
New file types (rules, inventories, ...) are added by appending a validator.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from collector.config.errors import ConfigError
from collector.config.yamlfile import read_yaml


@dataclass(frozen=True)
class FileValidator:
    kind: str  # what the files are, for messages
    folder: str  # relative to the rules folder
    patterns: tuple[str, ...]
    check: Callable[[Path, Path], None]  # (file, rules folder) -> None or ConfigError


@dataclass(frozen=True)
class CheckReport:
    checked: dict[str, int]  # kind -> number of files checked
    problems: list[str]  # one line each
    warnings: list[str] = field(default_factory=list)  # not wrong, but worth knowing


def _check_calendar(path: Path, rules_dir: Path) -> None:
    from collector.sla.calendar import calendar_from_node

    calendar_from_node(read_yaml(path), path.stem)


def _check_policy(path: Path, rules_dir: Path) -> None:
    from collector.sla.policy import policy_from_node

    policy_from_node(read_yaml(path), path.stem, rules_dir)


def _check_rules(path: Path, rules_dir: Path) -> None:
    from collector.rules.ruleset import check_rule_file

    check_rule_file(path, rules_dir)


def _check_inventory(path: Path, rules_dir: Path) -> None:
    from collector.rules.inventory import load_inventory
    from collector.sla.policy import load_policy

    inventory = load_inventory(path)
    for device in inventory:  # every policy it names must load
        ref = device.policy
        if ref.endswith((".yaml", ".yml")) and not Path(ref).is_absolute():
            ref = str(path.parent / ref)
        try:
            load_policy(ref, rules_dir)
        except ValueError as exc:
            raise ConfigError(str(path), f"{device.device}.policy", str(exc)) from None


VALIDATORS: tuple[FileValidator, ...] = (
    FileValidator("calendar", "calendars", ("*.yaml", "*.yml"), _check_calendar),
    FileValidator("policy", "policies", ("*.yaml", "*.yml"), _check_policy),
    FileValidator("rule", "rules.d", ("*.yaml", "*.yml"), _check_rules),
    FileValidator("inventory", "inventories", ("*.csv", "*.yaml", "*.yml"), _check_inventory),
)


def estimate_warnings(rules_dir: Path, now: datetime) -> list[str]:
    """One line per calendar of the folder whose holidays in the coming 12 months are an
    estimate (no official schedule known), naming calendar and years."""
    from collector.sla.calendar import load_calendar

    lines: list[str] = []
    folder = rules_dir / "calendars"
    for path in sorted({*folder.glob("*.yaml"), *folder.glob("*.yml")}):
        try:
            years = load_calendar(path).estimated_ahead(now)
        except ValueError:
            continue  # reported as a problem by its validator
        if years:
            listed = ", ".join(str(y) for y in years)
            lines.append(
                f"{path}: warning: calendar {path.stem!r}: the holidays of {listed} are "
                "estimated (no make-up working days); add the official schedule under "
                f'official: {years[0]}: (docs/sla.md, "Calendar years")'
            )
    return lines


def check_rules_dir(
    rules_dir: Path,
    validators: tuple[FileValidator, ...] = VALIDATORS,
    now: datetime | None = None,
) -> CheckReport:
    """Run every validator over its files; a bad file never stops the others. ``now`` is
    when the estimate warnings look 12 months ahead from (default: the current time)."""
    checked: dict[str, int] = {}
    problems: list[str] = []
    for validator in validators:
        folder = rules_dir / validator.folder
        files = sorted({p for pattern in validator.patterns for p in folder.glob(pattern)})
        checked[validator.kind] = len(files)
        for path in files:
            try:
                validator.check(path, rules_dir)
            except ConfigError as exc:
                problems.append(str(exc))
            except ValueError as exc:  # a loader's own one-line message
                problems.append(f"{path}: {exc}")
    warnings = estimate_warnings(rules_dir, now or datetime.now(UTC))
    return CheckReport(checked, problems, warnings)
