"""``fleetdesk demo``: a simulated fleet, the collector, a fault script and a service desk.

    fleetdesk demo [--devices 200] [--speed 60] [--duration 300] [--summary FILE]

Runs until the duration is over or Ctrl-C, prints what happens, then a summary table (and
writes it as JSON with ``--summary``). Exit status 0, or 2 when it cannot start.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
from pathlib import Path

MIN_DEVICES = 40
HELP = "run a simulated fleet, the collector and a service desk, with a fault script"


def _positive(kind: type[float] | type[int]):  # type: ignore[no-untyped-def]
    def check(text: str) -> float | int:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be above 0: {text!r}")
        return value

    return check


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--devices", type=_positive(int), default=200, help="fleet size (200)")
    parser.add_argument(
        "--speed", type=_positive(float), default=60.0,
        help="time acceleration of the agents and the fault script (60: a demo hour a minute)",
    )  # fmt: skip
    parser.add_argument(
        "--duration", type=_positive(float), default=300.0, help="wall-clock seconds (300)"
    )
    parser.add_argument("--summary", type=Path, help="also write the summary here, as JSON")
    parser.add_argument(
        "--workdir", type=Path, default=Path(".fleetdesk-demo"),
        help="where configs, spools, the state database and logs go (.fleetdesk-demo)",
    )  # fmt: skip
    parser.add_argument(
        "--embedded-broker",
        action="store_true",
        help="use the embedded broker even if Mosquitto is installed",
    )


def run(args: argparse.Namespace) -> int:
    if args.devices < 20:
        print(
            "fleetdesk demo: --devices must be at least 20 (five customers' sites)", file=sys.stderr
        )
        return 2
    from collector.demo.run import Options, main
    from collector.demo.summary import table

    opts = Options(
        devices=args.devices,
        speed=args.speed,
        duration=args.duration,
        workdir=args.workdir,
        summary=args.summary,
        embedded_broker=args.embedded_broker,
    )
    lock = threading.Lock()

    def say(line: str) -> None:  # the desk prints from its own threads
        with lock:
            sys.stdout.write(line + "\n")
            sys.stdout.flush()

    summary = main(opts, say)
    print(table(summary), flush=True)
    if args.summary is not None:
        args.summary.write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n")
        print(f"summary: {args.summary}")
    return 0
