"""``fleetdesk deliver``: the delivery worker on its own, draining the outbox to the desks."""

from __future__ import annotations

import argparse
import sys

HELP = "deliver queued ticket events to service desks (runs until SIGTERM)"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--db", required=True, help="database URL: sqlite:///FILE or postgresql+psycopg://..."
    )
    parser.add_argument("--sinks", required=True, help="YAML file naming the desks")
    parser.add_argument(
        "--poll",
        type=float,
        default=0.5,
        help="seconds between outbox polls (PostgreSQL: woken by each commit too)",
    )
    parser.add_argument(
        "--metrics",
        metavar="HOST:PORT",
        help="serve the delivery metrics (Prometheus text, fleetdesk_outbox_dead...) here",
    )


def run(args: argparse.Namespace) -> int:
    import asyncio
    import logging
    import signal
    from pathlib import Path

    from collector.delivery.sinks import SinkConfigError, load_sinks
    from collector.delivery.worker import DeliveryWorker
    from collector.store.outbox_wakeups import OutboxWakeups
    from collector.store.tickets import TicketStore, TicketStoreError

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    try:
        listen = _listen_address(args.metrics) if args.metrics else None
        sinks = load_sinks(Path(args.sinks))
        store = TicketStore(args.db)
        store.migrate()
        if listen is not None:
            from prometheus_client import start_http_server

            start_http_server(listen[1], addr=listen[0])
    except (SinkConfigError, TicketStoreError, ValueError, OSError) as exc:
        print(f"fleetdesk deliver: {exc}", file=sys.stderr)
        return 2

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        # inline_db: the process does nothing else, so its queries run on the loop itself
        # instead of hopping to a thread and back (two hand-offs per query, per webhook)
        worker = DeliveryWorker(store, sinks, poll_s=args.poll, inline_db=True)
        # PostgreSQL: woken by the commit that queued the rows (LISTEN), not a poll later
        wakeups = None
        if store.engine.dialect.name == "postgresql":
            wakeups = OutboxWakeups(args.db, worker.notify).start()
        try:
            await worker.run(stop)
        finally:
            if wakeups is not None:
                wakeups.stop()

    try:
        asyncio.run(main())
    finally:
        store.close()
    return 0


def _listen_address(text: str) -> tuple[str, int]:
    from collector.config.typed import parse_host_port

    try:
        listen = parse_host_port(text)
    except ValueError:
        listen = None
    if listen is None or listen.port == 0:  # a metrics port must be one a scraper can find
        raise ValueError(f"--metrics {text!r}: expected HOST:PORT, e.g. 127.0.0.1:9201")
    return listen
