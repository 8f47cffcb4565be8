"""The ``fleetdesk`` command: one sub-command per module, registered explicitly below.

Each command module exposes ``HELP`` (one line), ``configure(parser)`` and ``run(args) -> int``,
and imports its heavy dependencies inside ``run`` so that ``fleetdesk --help`` and the agent
start fast. Exit status 2 means bad input or configuration, reported in one line.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from typing import Protocol, cast

from collector import __version__

# (sub-command, module), one per line. The agent's module lives in agent/ so it ships alone.
COMMANDS: tuple[tuple[str, str], ...] = (
    ("agent", "agent.cli"),
    ("sla", "collector.commands.sla"),
    ("rules", "collector.commands.rules"),
    ("replay", "collector.commands.replay"),
    ("collector", "collector.commands.collector"),
    ("deliver", "collector.commands.deliver"),
    ("tickets", "collector.commands.tickets"),
    ("demo", "collector.commands.demo"),
    ("device", "collector.commands.device"),
    ("token", "collector.commands.token"),
)


class CommandModule(Protocol):
    HELP: str

    def configure(self, parser: argparse.ArgumentParser) -> None: ...

    def run(self, args: argparse.Namespace) -> int: ...


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fleetdesk",
        description="Watch field devices and open service tickets with the right SLA clock.",
    )
    parser.add_argument("--version", action="version", version=f"fleetdesk {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module_name in COMMANDS:
        module = cast(CommandModule, importlib.import_module(module_name))
        command = sub.add_parser(name, help=module.HELP, description=module.HELP)
        module.configure(command)
        command.set_defaults(_run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    run = getattr(args, "_run", None)
    if run is None:
        parser.print_help()
        return 2
    try:
        return int(run(args))
    except ModuleNotFoundError as exc:
        # The base install is the agent alone; the collector's commands need the extra.
        print(
            f"fleetdesk {args.command}: missing module {exc.name!r}; "
            "install the collector extra: pip install 'fleetdesk[collector]'",
            file=sys.stderr,
        )
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
