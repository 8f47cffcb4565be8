"""``fleetdesk sla``: ask the SLA engine when something is due.

    fleetdesk sla due --calendar NAME|FILE --start ISO8601 --duration DUR [--pause START/END]...
    fleetdesk sla deadlines --policy NAME|FILE --level LEVEL --start ISO8601 [--pause ...] --json
    fleetdesk sla classify --policy NAME|FILE --kind KIND --impact IMPACT [--scope ...]

Bad input (unknown calendar, policy or level, a bad timestamp or duration, a pause that ends
before it starts) exits with status 2 and one line on stderr naming what was wrong.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collector.sla.calendar import Calendar

HELP = "Compute SLA deadlines on business calendars and classify faults by policy."


class InputError(ValueError):
    """Bad command-line input; the message is the one line printed."""


def configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="sla_command", metavar="ACTION", required=True)

    due = sub.add_parser("due", help="the deadline of one duration on one calendar")
    due.add_argument("--calendar", required=True, help="preset name or calendar file")
    due.add_argument("--start", required=True, help="ISO 8601 with UTC offset")
    due.add_argument("--duration", required=True, help="45m, 4h, 1h30m, 5wd, 0 ...")
    _common(due)
    due.set_defaults(_sla_run=_run_due)

    deadlines = sub.add_parser("deadlines", help="every target's deadline for a policy level")
    deadlines.add_argument("--policy", required=True, help="preset name or policy file")
    deadlines.add_argument("--level", required=True)
    deadlines.add_argument("--start", required=True, help="ISO 8601 with UTC offset")
    deadlines.add_argument("--json", action="store_true", help="print one JSON object")
    _common(deadlines)
    deadlines.set_defaults(_sla_run=_run_deadlines)

    classify = sub.add_parser("classify", help="the level a policy gives a fault")
    classify.add_argument("--policy", required=True, help="preset name or policy file")
    classify.add_argument("--kind", required=True, help="fault kind, e.g. device_offline")
    classify.add_argument("--impact", required=True, help="outage, at_risk, degraded, ...")
    classify.add_argument("--scope", default="device", help="device (default) or site")
    classify.add_argument("--criticality", default="common", help="common (default) or uncommon")
    classify.add_argument("--rules", type=Path, help="rules folder (default: the shipped one)")
    classify.set_defaults(_sla_run=_run_classify)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--pause",
        action="append",
        default=[],
        metavar="START/END",
        help="a wall-clock interval the clock does not run (repeatable)",
    )
    parser.add_argument("--rules", type=Path, help="rules folder (default: the shipped one)")


def parse_instant(text: str, what: str) -> datetime:
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise InputError(f"bad {what} {text!r}: not an ISO 8601 timestamp") from None
    if value.tzinfo is None:
        raise InputError(f"bad {what} {text!r}: needs a UTC offset, e.g. +08:00 or Z")
    return value


def parse_pauses(texts: list[str]) -> list[tuple[datetime, datetime]]:
    pauses = []
    for text in texts:
        start_text, sep, end_text = text.partition("/")
        if not sep:
            raise InputError(f"bad --pause {text!r}: expected START/END")
        start = parse_instant(start_text, "--pause start")
        end = parse_instant(end_text, "--pause end")
        if end < start:
            raise InputError(f"bad --pause {text!r}: it ends before it starts")
        pauses.append((start, end))
    return pauses


def _run_due(args: argparse.Namespace) -> None:
    from collector.config.durations import parse_duration
    from collector.sla.calendar import load_calendar

    start = parse_instant(args.start, "--start")
    pauses = parse_pauses(args.pause)
    try:
        duration = parse_duration(args.duration)
    except ValueError as exc:
        raise InputError(f"bad --duration: {exc}") from None
    calendar = load_calendar(args.calendar, args.rules)
    due = calendar.add(start, duration.seconds_on(calendar.workday_seconds), pauses)
    print(due.isoformat())
    _warn_estimated(args, calendar, start, due)


def _warn_estimated(
    args: argparse.Namespace, calendar: Calendar, start: datetime, due: datetime
) -> None:
    years = calendar.estimated_years(start, due)
    if years:
        listed = ", ".join(str(y) for y in years)
        print(
            f"fleetdesk sla {args.sla_command}: warning: calendar {calendar.name!r}: holidays "
            f"of {listed} are estimated (no official schedule known); list them in the "
            "calendar file under holidays.add / working_days.add",
            file=sys.stderr,
        )


def _run_deadlines(args: argparse.Namespace) -> None:
    from collector.sla.policy import TargetStart, load_policy

    start = parse_instant(args.start, "--start")
    pauses = parse_pauses(args.pause)
    policy = load_policy(args.policy, args.rules)
    level = policy.level(args.level)
    deadlines = {
        name: due
        for name, due in policy.deadlines(args.level, start, pauses).items()
        if level.targets[name].starts in (TargetStart.ONSET, TargetStart.DETECTION)
    }
    for name, due in deadlines.items():
        _warn_estimated(args, level.targets[name].calendar, start, due)
    # Targets a desk action starts (received, request): their duration, no instant yet.
    later = {
        name: {"starts": t.starts.value, "duration": str(t.duration)}
        for name, t in level.targets.items()
        if t.starts not in (TargetStart.ONSET, TargetStart.DETECTION)
    }
    defaults = sorted(name for name, t in level.targets.items() if t.operator_default)
    if args.json:
        out: dict[str, object] = {
            "policy": policy.name,
            "level": args.level,
            "start": start.isoformat(),
            "deadlines": {name: due.isoformat() for name, due in deadlines.items()},
        }
        if later:
            out["on_desk_action"] = later
        if level.resolution_by_release:
            out["resolution"] = "deferred_to_release"
        if defaults:
            out["operator_defaults"] = defaults
        print(json.dumps(out, ensure_ascii=False))
        return
    for name, due in deadlines.items():
        mark = "  (operator default)" if name in defaults else ""
        print(f"{name}: {due.isoformat()}{mark}")
    for name, spec in later.items():
        print(f"{name}: {spec['duration']} from the desk's {spec['starts']!r} action")
    if level.resolution_by_release:
        print("resolution: deferred_to_release (fixed in a later release; no deadline)")


def _run_classify(args: argparse.Namespace) -> None:
    from collector.sla.policy import load_policy

    policy = load_policy(args.policy, args.rules)
    rule = policy.classification_rule(args.kind, args.impact, args.scope, args.criticality)
    if rule is None:
        print("no match")
    else:
        print(f"{rule.level}  (rule at line {rule.line}: {rule.describe()})")


def run(args: argparse.Namespace) -> int:
    try:
        args._sla_run(args)
    except ValueError as exc:  # InputError, ConfigError, CalendarError, unknown names
        print(f"fleetdesk sla {args.sla_command}: {exc}", file=sys.stderr)
        return 2
    return 0
