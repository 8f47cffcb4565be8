"""Tickets: fault-to-webhook latency and tickets opened per second into SQLite and PostgreSQL.

Prints one JSON object:
- ``latency_p50_ms`` / ``latency_p99_ms``: from the telemetry sample that crosses a threshold
  (``disk_used_pct`` > 95, a rule without a ``for`` delay) being published to a local Mosquitto,
  to its ticket's signed webhook arriving at a receiver on loopback, for ``FAULTS`` faults spread
  over the run while ``BACKGROUND_MSGS_PER_S`` ordinary telemetry messages a second flow through
  the same broker. The path: broker -> paho subscriber -> wire.decode -> rules engine -> ticket
  service (one transaction: ticket + outbox) -> delivery worker -> signed webhook. The collector
  service is not on main yet, so this bench assembles that path from the same parts; publisher
  and receiver run in their own processes. ``background_msgs_per_s_achieved`` is what the
  publisher really sent.
- ``tickets_per_s_sqlite`` / ``tickets_per_s_postgres``: faults opened through the ticket
  service, one transaction each (fault number, ticket row, outbox row), beside
  ``bare_insert_per_s_*``: a bare one-row INSERT per transaction into the same database.

PostgreSQL: the local server at 127.0.0.1:5432 (user postgres); a throw-away database is
created and dropped. Run from the repository root: ``.venv/bin/python bench/tickets.py``.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
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

from collector.tickets.book import TicketBook
from collector.tickets.inputs import FaultSignal
from collector.tickets.service import TicketService
from collector.tickets.sla_adapter import SlaEngine
from collector.tickets.store import TicketStore
from tests.support.services import free_port
from tests.tickets.conftest import Devices

FAULTS = 1000
STORE_N = 1000
BACKGROUND_MSGS_PER_S = 10_000
BACKGROUND_DEVICES = 1000
SECONDS = 10.0  # the faults are spread over this long (100 a second)
PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
ENGINE = SlaEngine()
ROOT = Path(__file__).resolve().parent.parent
THIS = str(Path(__file__).resolve())
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


def publish_main(port: int, seconds: float) -> None:
    """Publisher process: background telemetry at the target rate, faults spread evenly.

    Prints ``ready``, then ``<device> <publish time>`` per fault sample, then ``sent <n> <s>``.
    """
    import paho.mqtt.client as mqtt

    from agent import wire

    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="bench-publisher")
    client.connect("127.0.0.1", port)
    client.loop_start()
    print("ready", flush=True)
    seq: dict[str, int] = {}

    def payload(device: str, metrics: dict[str, float]) -> bytes:
        seq[device] = seq.get(device, 0) + 1
        msg = wire.Telemetry(device, "b1", seq[device], datetime.now(UTC), metrics)  # type: ignore[arg-type]
        return wire.encode(msg)

    tick = 0.01
    per_tick = BACKGROUND_MSGS_PER_S * tick
    fault_every = seconds / FAULTS
    start = time.monotonic()
    sent = faults = 0
    owed = 0.0
    while (elapsed := time.monotonic() - start) < seconds or faults < FAULTS:
        owed += per_tick
        while owed >= 1:
            device = f"bg{sent % BACKGROUND_DEVICES:05d}"
            topic = f"fleet/v1/acme/{device}/telemetry"
            client.publish(topic, payload(device, {"cpu_pct": 12.0, "disk_used_pct": 40.0}))
            sent += 1
            owed -= 1
        while faults < FAULTS and faults * fault_every <= elapsed:
            device = f"f{faults:05d}"
            data = payload(device, {"disk_used_pct": 99.0})
            at = time.time()
            client.publish(f"fleet/v1/acme/{device}/telemetry", data)
            print(device, repr(at), flush=True)
            faults += 1
        pause = start + (int(elapsed / tick) + 1) * tick - time.monotonic()
        if pause > 0:
            time.sleep(pause)
    print("sent", sent, repr(time.monotonic() - start), flush=True)
    client.loop_stop()
    client.disconnect()


def write_inventory(path: Path) -> None:
    header = "device,tenant,model,class,site,parent,criticality,customer,policy,"
    header += "warranty_start,warranty_months,interval_s\n"
    rows = [f"bg{i:05d}" for i in range(BACKGROUND_DEVICES)] + [f"f{i:05d}" for i in range(FAULTS)]
    path.write_text(
        header
        + "".join(
            f"{d},acme,WR920,router,site-{d},,common,acme,xian-integrator,2025-01-01,36,3600\n"
            for d in rows
        )
    )


async def latency(url: str, receiver: ReceiverProcess, workdir: Path) -> dict[str, object]:
    import paho.mqtt.client as mqtt

    from agent import wire
    from collector.paths import default_rules_dir
    from collector.rules.engine import Engine
    from collector.rules.inventory import load_inventory
    from collector.rules.ruleset import load_rules
    from collector.tickets.from_rules import InventoryWarranty, signal_of
    from tests.support.mosquitto import Broker

    inventory_path = workdir / "inventory.csv"
    write_inventory(inventory_path)
    inventory = load_inventory(inventory_path)
    engine = Engine(inventory, load_rules(default_rules_dir()), default_policy="xian-integrator")
    store = TicketStore(url)
    store.migrate()
    service = TicketService(
        book_factory=lambda: TicketBook(
            policies=ENGINE, devices=InventoryWarranty(inventory), sla=ENGINE
        ),
        store=store,
        sla=ENGINE,
        sinks=("desk",),
    )
    # The delivery worker runs as its own process (fleetdesk deliver), as it may be deployed:
    # it keeps the webhook HTTP work off the intake process's interpreter lock.
    secret = "whsec_" + base64.b64encode(b"bench-secret-0123456789abcdef").decode()
    sinks = workdir / "sinks.yaml"
    sinks.write_text(
        "sinks:\n  - {name: desk, type: webhook, secret_env: BENCH_SECRET, "
        f"url: {receiver.url}}}\n"
    )
    deliver = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "collector", "deliver", "--db", url, "--sinks", str(sinks),
        "--poll", "0.01", cwd=ROOT, env={**os.environ, "BENCH_SECRET": secret},
        stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    received = [0]
    arrived: dict[str, float] = {}  # fault samples: when the subscriber got them

    def on_message(_c: object, _u: object, message: mqtt.MQTTMessage) -> None:
        received[0] += 1
        msg = wire.decode(message.topic, message.payload)
        if isinstance(msg, wire.DecodeError):
            return
        if msg.device.startswith("f"):
            arrived[msg.device] = time.time()
        for event in engine.process(msg, datetime.now(UTC)):
            service.on_fault(signal_of(event))

    broker = Broker(workdir / "broker", persistence=False).start()
    subscriber = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="bench-collector")
    subscriber.on_message = on_message
    subscriber.connect("127.0.0.1", broker.port)
    subscriber.subscribe("fleet/v1/+/+/telemetry", qos=0)
    subscriber.loop_start()
    published: dict[str, float] = {}
    sent_line = ""
    try:
        await asyncio.sleep(0.5)  # subscription in place
        publisher = await asyncio.create_subprocess_exec(
            sys.executable, THIS, "publish", str(broker.port),
            str(SECONDS), cwd=ROOT, stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip
        assert publisher.stdout is not None
        async for raw in publisher.stdout:
            line = raw.decode().split()
            if line[0] == "sent":
                sent_line = raw.decode()
            elif line[0] != "ready":
                published[line[0]] = float(line[1])
        await publisher.wait()
        deadline = time.monotonic() + 120
        while len(receiver.arrivals) < FAULTS and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.05)  # the receiver is another process: poll what it reported
    finally:
        deliver.send_signal(signal.SIGTERM)
        await deliver.wait()
        subscriber.loop_stop()
        subscriber.disconnect()
        broker.stop()
    numbers = {t.number: t.device for t in service.book.live()}
    latencies, intake, after = [], [], []
    for event_id, at in receiver.arrivals.items():
        device = numbers.get(event_id.split(":")[0])
        if device in published and device in arrived:
            latencies.append((at - published[device]) * 1000)
            intake.append((arrived[device] - published[device]) * 1000)
            after.append((at - arrived[device]) * 1000)
    store.close()
    _, n, secs = sent_line.split()
    return {
        "latencies": latencies,
        "intake_p50_ms": round(percentile(intake, 50), 2),
        "intake_p99_ms": round(percentile(intake, 99), 2),
        "ticket_to_webhook_p50_ms": round(percentile(after, 50), 2),
        "ticket_to_webhook_p99_ms": round(percentile(after, 99), 2),
        "background_msgs_per_s_achieved": round(int(n) / float(secs), 1),
        "collector_msgs_received": received[0],
    }


def percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] if values else -1.0


def main() -> None:
    result: dict[str, object] = {
        "faults": FAULTS,
        "fault_rate_per_s": FAULTS / SECONDS,
        "background_msgs_per_s_target": BACKGROUND_MSGS_PER_S,
    }
    with tempfile.TemporaryDirectory() as tmp:
        receiver = ReceiverProcess()
        try:
            run = asyncio.run(latency(f"sqlite:///{Path(tmp) / 'lat.db'}", receiver, Path(tmp)))
        finally:
            receiver.stop()
        lat = run.pop("latencies")
        assert isinstance(lat, list)
        result["latency_p50_ms"] = round(percentile(lat, 50), 2)
        result["latency_p99_ms"] = round(percentile(lat, 99), 2)
        result["latency_delivered"] = len(lat)
        result.update(run)
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
    result["pipeline"] = (
        "mosquitto -> paho subscriber -> wire.decode -> rules engine -> ticket transaction "
        "-> outbox -> delivery worker -> signed webhook (assembled here: the collector "
        "service is not on main yet)"
    )
    print(json.dumps(result))


if __name__ == "__main__":
    if sys.argv[1:2] == ["publish"]:
        publish_main(int(sys.argv[2]), float(sys.argv[3]))
    else:
        main()
