"""``fleetdesk rules``: work with a rules folder.

    fleetdesk rules check [DIR]

``check`` validates every file the validators in ``collector.commands.rules_check`` know (calendars,
policies, ...) and prints one line per problem: file, line, key and what is wrong. Exit status
0 when all is well, 2 when anything is wrong. Without DIR it checks the folder the collector
reads by default: ``$FLEETDESK_RULES`` if set, else the presets shipped with fleetdesk.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HELP = "Validate rule, policy and calendar files."


def configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="rules_command", metavar="ACTION", required=True)
    check = sub.add_parser("check", help="validate every file of a rules folder")
    check.add_argument(
        "dir",
        type=Path,
        nargs="?",
        metavar="DIR",
        help="rules folder (calendars/, ...); default: $FLEETDESK_RULES, else the shipped presets",
    )
    check.set_defaults(_rules_run=_run_check)


def _run_check(args: argparse.Namespace) -> int:
    from collector.commands.rules_check import VALIDATORS, check_rules_dir
    from collector.preset_paths import default_rules_dir

    rules_dir: Path = args.dir or default_rules_dir()
    if not rules_dir.is_dir():
        print(f"fleetdesk rules check: {rules_dir}: not a folder", file=sys.stderr)
        return 2
    report = check_rules_dir(rules_dir)
    if not any(report.checked.values()):
        folders = ", ".join(f"{v.folder}/" for v in VALIDATORS)
        print(f"fleetdesk rules check: {rules_dir}: no files in {folders}", file=sys.stderr)
        return 2
    for line in (*report.problems, *report.warnings):
        print(line, file=sys.stderr)
    counts = ", ".join(f"{n} {kind} file(s)" for kind, n in report.checked.items())
    verdict = f"{len(report.problems)} problem(s)" if report.problems else "ok"
    print(f"{rules_dir}: checked {counts}: {verdict}")
    return 2 if report.problems else 0


def run(args: argparse.Namespace) -> int:
    return int(args._rules_run(args))
