"""``fleetdesk replay``: run a recording through the rules engine and the ticket book, print
the fault and ticket events."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

HELP = "replay a recording (JSON lines) through rules and tickets; one JSON line per event"
DEFAULT_POLICY = "shanghai-energy"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--inventory", required=True, type=Path, metavar="FILE", help="inventory (CSV or YAML)"
    )
    parser.add_argument(
        "--rules",
        type=Path,
        default=None,
        metavar="DIR",
        help="rules folder (rules.d/*.yaml, policies/) or a rule file; default: shipped rules",
    )
    parser.add_argument(
        "--default-policy",
        default=DEFAULT_POLICY,
        metavar="NAME",
        help=f"policy of devices not in the inventory (default: {DEFAULT_POLICY})",
    )
    parser.add_argument(
        "--adopt",
        action="append",
        default=[],
        metavar="TENANT",
        help="judge this tenant's devices not in the inventory (repeatable; '*': every tenant),"
        " as rules.adopt_tenants does in the collector; others are not judged",
    )
    parser.add_argument(
        "--tickets",
        action=argparse.BooleanOptionalAction,
        default=True,
        help='run the ticket stage: ticket events and {"desk": ...} lines (docs/tickets.md); '
        "--no-tickets prints the fault events alone",
    )
    parser.add_argument(
        "recording",
        metavar="RECORDING.jsonl",
        help="the recording, one JSON object a line ('-': stdin)",
    )


def run(args: argparse.Namespace) -> int:
    from collector.pipeline.replay import Replay
    from collector.preset_paths import default_rules_dir
    from collector.rules.classify import PolicyError
    from collector.rules.engine import Engine
    from collector.rules.inventory import InventoryError, load_inventory
    from collector.rules.ruleset import RuleError, load_rules

    def fail(message: str) -> int:
        print(f"fleetdesk replay: {message}", file=sys.stderr)
        return 2

    rules_path: Path = args.rules if args.rules is not None else default_rules_dir()
    # policies and calendars: the rules folder's own first, then the shipped presets
    policies_dir = rules_path if rules_path.is_dir() else None
    try:
        inventory = load_inventory(args.inventory)
        rules = load_rules(rules_path)
        engine = Engine(
            inventory, rules, default_policy=args.default_policy, rules_dir=policies_dir
        )
    except (InventoryError, RuleError, PolicyError) as exc:
        return fail(str(exc))
    if args.recording == "-":
        stream = sys.stdin
    else:
        try:
            stream = open(args.recording, encoding="utf-8")  # noqa: SIM115 - closed below
        except OSError as exc:
            return fail(f"cannot read {args.recording}: {exc.strerror}")

    def emit(line: Mapping[str, Any]) -> None:
        sys.stdout.write(json.dumps(line, ensure_ascii=False) + "\n")

    def warn(message: str) -> None:
        print(f"fleetdesk replay: {args.recording}: {message}", file=sys.stderr)

    stages = []
    if args.tickets:
        from collector.pipeline.replay_tickets import TicketStage
        from collector.tickets.book import TicketBook
        from collector.tickets.from_rules import InventoryWarranty
        from collector.tickets.sla_adapter import SlaEngine

        sla = SlaEngine(policies_dir)
        book = TicketBook(policies=sla, devices=InventoryWarranty(inventory), sla=sla)
        stages.append(TicketStage(book, emit))
    try:
        result = Replay(engine, stages, emit=emit, adopt=args.adopt).run(stream, warn)
    except UnicodeDecodeError as exc:
        return fail(f"{args.recording} is not UTF-8: {exc.reason}")
    finally:
        if stream is not sys.stdin:
            stream.close()
    sys.stdout.flush()
    return 1 if result.bad_lines else 0
