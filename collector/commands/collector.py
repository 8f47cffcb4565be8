"""``fleetdesk collector --config FILE``: the long-running collector service.

``--check`` validates the config and exits; ``--schema`` prints the config file's JSON Schema and
``--reference`` its keys as the Markdown table of docs/collector.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
import time
from pathlib import Path

HELP = "run the collector service (MQTT and SNMP intake, storage, rules, /metrics)"


def configure(parser: argparse.ArgumentParser) -> None:
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--config", type=Path, help="collector YAML config file")
    what.add_argument(
        "--schema", action="store_true", help="print the JSON Schema of the config file and exit"
    )
    what.add_argument(
        "--reference", action="store_true", help="print the config keys as a Markdown table"
    )
    parser.add_argument(
        "--check", action="store_true", help="validate the config file and exit (0 when valid)"
    )


class _JsonFormatter(logging.Formatter):
    """One JSON object a line: structured logs for journald / log shippers."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def run(args: argparse.Namespace) -> int:
    if args.schema or args.reference:
        from collector.config.collector import json_schema, reference

        print(json.dumps(json_schema(), indent=2) if args.schema else reference().rstrip("\n"))
        return 0

    from collector.config.collector import load_config
    from collector.config.errors import ConfigError
    from collector.pipeline.rules_stage import load_setup
    from collector.service import app
    from collector.service.tickets import load_tickets
    from collector.store import StoreError

    try:
        cfg = load_config(args.config)
        app.snmp_profiles(cfg)
        setup = load_setup(cfg)
        tickets = load_tickets(cfg) if setup is not None else None
    except ConfigError as exc:  # config, SNMP profiles, rules and the tickets section alike
        print(f"fleetdesk collector: {exc}", file=sys.stderr)
        return 2
    if args.check:
        print(f"{args.config}: ok")
        return 0
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_JsonFormatter())
    logging.basicConfig(level=cfg.log_level.upper(), handlers=[handler], force=True)
    # httpx logs every request at info: one line per webhook is the delivery worker's to write
    logging.getLogger("httpx").setLevel(max(logging.WARNING, logging.root.level))

    async def main() -> None:
        stop = asyncio.Event()
        app.install_signal_handlers(stop)
        if cfg.scale.partitions:  # one of several collectors (docs/scale-out.md)
            from collector.service.partitioned import run_partitioned

            await run_partitioned(cfg, stop, setup=setup, tickets=tickets)
        else:
            await app.run(cfg, stop, setup=setup, tickets=tickets)

    try:
        asyncio.run(main())
    except StoreError as exc:
        print(f"fleetdesk collector: {exc}", file=sys.stderr)
        return 2
    except ExceptionGroup as group:  # a task of the service failed; it drained and stopped
        leaves = group.exceptions
        if all(isinstance(e, OSError) for e in leaves):
            print(f"fleetdesk collector: {leaves[0]}", file=sys.stderr)
            return 2
        raise
    return 0
