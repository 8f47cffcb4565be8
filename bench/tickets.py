"""Tickets: fault-to-webhook latency and tickets opened per second into SQLite and PostgreSQL.

Prints one JSON object:
- ``tickets_per_s_sqlite`` / ``tickets_per_s_postgres``: faults opened through the ticket
  service, one transaction each (fault number, ticket row, outbox row), beside
  ``bare_insert_per_s_*``: a bare one-row INSERT per transaction into the same database.
- ``latency_p50_ms`` / ``latency_p99_ms``: from a fault signal handed to the ticket service to
  its signed webhook arriving at a receiver on loopback, for ``FAULTS`` faults, with the
  delivery worker running in the same process. ``pipeline`` says what the measurement covers:
  the MQTT -> rules part of the path (and the 10,000 msg/s background load) is measured only
  when the collector pipeline is available (see ``pipeline_missing``).

PostgreSQL: the local server at 127.0.0.1:5432 (user postgres); a throw-away database is
created and dropped. Run from the repository root: ``.venv/bin/python bench/tickets.py``.
"""

from __future__ import annotations

import asyncio
import base64
import json
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from collector.delivery.adapters.webhook import WebhookAdapter
from collector.delivery.sinks import Sink
from collector.delivery.worker import DeliveryWorker
from collector.tickets.book import TicketBook
from collector.tickets.inputs import FaultSignal
from collector.tickets.service import TicketService
from collector.tickets.sla_adapter import SlaEngine
from collector.tickets.store import TicketStore
from tests.support.services import free_port
from tests.tickets.conftest import Devices

FAULTS = 1000
STORE_N = 1000
RATE_PER_S = 100  # faults opened per second in the latency run
PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
ENGINE = SlaEngine()
ROOT = Path(__file__).resolve().parent.parent
BASE = datetime(2025, 10, 9, 8, 0, tzinfo=UTC)


def signal_for(i: int, at: datetime) -> FaultSignal:
    device = f"dev{i:05d}"
    return FaultSignal(
        "opened", at, f"{device}/device_offline", "device_offline", "outage", device, None, at,
        "xian-integrator", "3",
    )  # fmt: skip


def service_on(store: TicketStore, sinks: tuple[str, ...]) -> TicketService:
    return TicketService(
        book_factory=lambda: TicketBook(policies=ENGINE, devices=Devices(), sla=ENGINE),
        store=store,
        sla=ENGINE,
        sinks=sinks,
    )


def tickets_per_s(url: str) -> tuple[float, float]:
    store = TicketStore(url)
    store.migrate()
    service = service_on(store, ("desk",))
    t0 = time.perf_counter()
    for i in range(STORE_N):
        service.on_fault(signal_for(i, BASE + timedelta(milliseconds=i)))
    tickets = STORE_N / (time.perf_counter() - t0)
    scratch = sa.Table(
        "bench_bare", sa.MetaData(), sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("body", sa.Text),
    )  # fmt: skip
    with store.engine.begin() as conn:
        scratch.create(conn)
    body = json.dumps({"x": "y" * 400})  # about the size of a ticket row
    insert = sa.insert(scratch)
    t0 = time.perf_counter()
    for i in range(STORE_N):
        with store.engine.begin() as conn:
            conn.execute(insert, {"id": i, "body": body})
    bare = STORE_N / (time.perf_counter() - t0)
    store.close()
    return tickets, bare


class ReceiverProcess:
    """The webhook receiver in its own process, reporting arrival times per event id."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/hook"
        self.arrivals: dict[str, float] = {}
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "tests.tickets.receiver", str(self.port)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self._proc.stdout is not None
        assert self._proc.stdout.readline().strip() == "ready"
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self._proc.stdout is not None
        for line in self._proc.stdout:
            msg_id, at = line.split()
            self.arrivals[msg_id] = float(at)

    def stop(self) -> None:
        self._proc.send_signal(signal.SIGINT)
        self._proc.wait()


async def latency(url: str, receiver: ReceiverProcess) -> list[float]:
    store = TicketStore(url)
    store.migrate()
    service = service_on(store, ("desk",))
    secret = "whsec_" + base64.b64encode(b"bench-secret-0123456789abcdef").decode()
    sink = Sink("desk", WebhookAdapter(receiver.url), secret=secret)
    worker = DeliveryWorker(store, {"desk": sink}, poll_s=0.5)
    loop = asyncio.get_running_loop()
    sent: dict[str, float] = {}

    def produce() -> None:
        interval = 1 / RATE_PER_S
        start = time.monotonic()
        for i in range(FAULTS):
            delay = start + i * interval - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            t0 = time.time()
            [opened] = service.on_fault(signal_for(i, datetime.now(UTC)))
            sent[opened.event_id] = t0
            loop.call_soon_threadsafe(worker.notify)

    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    await asyncio.to_thread(produce)
    deadline = time.monotonic() + 120
    arrivals = receiver.arrivals
    while len(arrivals) < FAULTS and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.05)  # the receiver is another process: poll what it reported
    stop.set()
    await task
    store.close()
    return [(arrivals[k] - t0) * 1000 for k, t0 in sent.items() if k in arrivals]


def percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] if values else -1.0


def main() -> None:
    result: dict[str, object] = {"faults": FAULTS, "fault_rate_per_s": RATE_PER_S}
    with tempfile.TemporaryDirectory() as tmp:
        receiver = ReceiverProcess()
        try:
            lat = asyncio.run(latency(f"sqlite:///{Path(tmp) / 'lat.db'}", receiver))
        finally:
            receiver.stop()
        result["latency_p50_ms"] = round(percentile(lat, 50), 2)
        result["latency_p99_ms"] = round(percentile(lat, 99), 2)
        result["latency_delivered"] = len(lat)
        tickets, bare = tickets_per_s(f"sqlite:///{Path(tmp) / 'rate.db'}")
        result["tickets_per_s_sqlite"] = round(tickets, 1)
        result["bare_insert_per_s_sqlite"] = round(bare, 1)
    name = f"fleetdesk_bench_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        tickets, bare = tickets_per_s(f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}")
        result["tickets_per_s_postgres"] = round(tickets, 1)
        result["bare_insert_per_s_postgres"] = round(bare, 1)
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
    result["pipeline"] = "fault signal -> ticket transaction -> outbox -> signed webhook"
    result["pipeline_missing"] = (
        "MQTT broker -> collector decode -> rules engine, and the 10,000 msg/s background "
        "telemetry: the collector pipeline is not available to this bench yet"
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
