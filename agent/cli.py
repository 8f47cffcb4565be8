"""``fleetdesk agent`` (and ``fleetdesk-agent``): run the edge agent, check its config, send
a dying gasp, or sign a downlink command (the operator's side: ``sign-command``).

Exit status: 0 after a clean stop, 2 for a bad configuration or command line (one line on
stderr naming file, key and reason), 1 when a dying gasp could not be delivered.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sqlite3
import sys
from collections.abc import Sequence
from pathlib import Path

HELP = "Run the edge agent: measure this gateway and report over MQTT with a disk spool."


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "action",
        nargs="?",
        choices=("run", "dying-gasp", "sign-command"),
        default="run",
        help="run (default); dying-gasp: make the running agent (or, if none, this "
        "command) publish the dying_gasp event and state now; sign-command: print a signed "
        "command payload for --cmd/--args (tenant, device and key from --config or the "
        "options below)",
    )
    parser.add_argument("--config", "-c", metavar="FILE", help="agent TOML file")
    parser.add_argument("--check", action="store_true", help="validate the config and exit")
    sign = parser.add_argument_group("sign-command")
    sign.add_argument("--cmd", help="command name: ping, set_interval, run_probe")
    sign.add_argument("--args", default="{}", metavar="JSON", help="arguments, a JSON object")
    sign.add_argument("--ttl", type=float, default=300.0, metavar="S", help="life (300 s)")
    sign.add_argument("--id", dest="command_id", metavar="ID", help="command id (random)")
    sign.add_argument("--tenant", help="tenant id (default: the config's)")
    sign.add_argument("--device", help="device id (default: the config's)")
    sign.add_argument("--key-file", type=Path, metavar="FILE", help="the command key's file")
    sign.add_argument("--key-env", metavar="NAME", help="environment variable with the key")


def _fail(message: str) -> int:
    print(f"fleetdesk agent: {message}", file=sys.stderr)
    return 2


def _running_pid(spool: Path) -> int | None:
    from agent.spool import read_only_meta

    try:
        pid = int(read_only_meta(spool).get("x:pid", "0"))
    except (ValueError, sqlite3.Error):
        return None
    if pid <= 0:
        return None
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    # A stale pid may have been reused by another program since (ssh-agent, ...).
    return pid if b"fleetdesk" in cmdline or b"agent.cli" in cmdline else None


def run(args: argparse.Namespace) -> int:
    from agent.config import ConfigError, load

    if args.action == "sign-command":
        from agent.sign_command import sign_command

        return sign_command(args)
    if args.config is None:
        return _fail("--config FILE is required")
    try:
        config = load(args.config)
    except ConfigError as exc:
        return _fail(str(exc))
    if args.check:
        urls = ", ".join(str(u) for u in config.broker.urls)
        print(f"{args.config}: ok (device {config.device.id}, brokers {urls})")
        return 0
    logging.basicConfig(
        level=config.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("paho").setLevel(logging.WARNING)
    from agent.runner import Agent, dying_gasp_now

    pid = _running_pid(config.spool.path)
    if args.action == "dying-gasp" and pid is not None:
        os.kill(pid, signal.SIGUSR1)
        print(f"dying gasp requested from the running agent (pid {pid})")
        return 0
    if pid is not None and pid != os.getpid():
        return _fail(f"another agent (pid {pid}) is using the spool {str(config.spool.path)!r}")
    agent = Agent(config)  # a spool that cannot open is reported by the agent, not fatal
    if args.action == "dying-gasp":
        if dying_gasp_now(agent):
            print("dying gasp published")
            return 0
        print("dying gasp kept in the spool: no broker answered", file=sys.stderr)
        return 1
    return agent.run()


def main(argv: Sequence[str] | None = None) -> int:
    """The ``fleetdesk-agent`` command, for gateways that carry the agent alone."""
    parser = argparse.ArgumentParser(prog="fleetdesk-agent", description=HELP)
    configure(parser)
    try:
        return run(parser.parse_args(argv))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
