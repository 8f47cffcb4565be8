"""Tickets: fault-to-webhook latency and tickets opened per second into SQLite and PostgreSQL.

Prints one JSON object:
- ``latency_p50_ms`` / ``latency_p99_ms``: from the telemetry sample that crosses a threshold
  (``disk_used_pct`` > 95, a rule without a ``for`` delay) being published to a local Mosquitto,
  to its ticket's signed webhook arriving at a receiver on loopback, for ``FAULTS`` faults spread
  over the run while ``BACKGROUND_MSGS_PER_S`` ordinary telemetry messages a second flow through
  the same broker. The path is the real service: ``fleetdesk collector`` (intake, rules engine,
  ticket transaction with outbox, delivery worker) in its own process, as are the publisher
  and the receiver. ``background_msgs_per_s_achieved`` is what the publisher really sent.
  The collector's store is SQLite for these keys (the worker inside the collector). The keys
  ending in ``_postgres`` are PostgreSQL as docs/deployment.md deploys it: the delivery worker
  is ``fleetdesk deliver``, its own process, woken by the commit's NOTIFY; those ending in
  ``_postgres_worker_inside`` the same with the worker inside the collector (``tickets.worker``).
  ``BENCH_STORES=sqlite`` or ``postgres`` runs only that store's latency runs.
- ``paho_baseline_latency_p50_ms`` / ``_p99_ms``: the same publisher and load into a bare paho
  callback loop instead of the collector, in the same run: publish to arrival of the fault
  samples, the floor any Python consumer of this broker has on this machine.
- ``tickets_per_s_sqlite`` / ``tickets_per_s_postgres``: faults opened through the ticket
  service, one transaction each (fault number, ticket row, outbox row), beside
  ``bare_insert_per_s_*``: a bare one-row INSERT per transaction into the same database.

PostgreSQL: the local server at 127.0.0.1:5432 (user postgres); a throw-away database is
created and dropped. Run from the repository root: ``.venv/bin/python bench/tickets.py``.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from collector.pipeline.ticket_service import TicketService
from collector.store.tickets import TicketStore
from collector.tickets.book import TicketBook
from collector.tickets.inputs import FaultSignal
from collector.tickets.sla_adapter import SlaEngine
from tests.support.services import free_port
from tests.support.tickets import Devices

FAULTS = 1000
STORE_N = 1000
BACKGROUND_MSGS_PER_S = int(os.environ.get("BENCH_BACKGROUND_MSGS_PER_S", "10000"))
BACKGROUND_DEVICES = 1000
# BENCH_STORES=sqlite or postgres: only that store's latency runs (when looking at one)
STORES = os.environ.get("BENCH_STORES", "sqlite,postgres").split(",")
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
        self.bodies: dict[str, str] = {}  # event id -> the ticket's device
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "tests.support.receiver", str(self.port)],
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
            msg_id, at, device = line.split()
            self.bodies[msg_id] = device
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


def subscribe_main(port: int) -> None:
    """Baseline subscriber process: a bare paho callback loop on the collector's topics.

    Prints ``ready`` once subscribed, then ``<device> <arrival time>`` per fault sample.
    """
    import paho.mqtt.client as mqtt

    def on_connect(client: mqtt.Client, *_: object) -> None:
        client.subscribe("fleet/v1/+/+/telemetry", qos=1)

    def on_subscribe(*_: object) -> None:
        print("ready", flush=True)

    def on_message(_client: mqtt.Client, _userdata: object, msg: mqtt.MQTTMessage) -> None:
        device = msg.topic.split("/")[3]
        if device.startswith("f"):
            print(device, repr(time.time()), flush=True)

    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="bench-baseline")
    client.on_connect = on_connect
    client.on_subscribe = on_subscribe
    client.on_message = on_message
    client.connect("127.0.0.1", port)
    client.loop_forever()


def run_publisher(port: int) -> tuple[dict[str, float], str]:
    """Runs the publisher process to its end: fault publish times by device, and its summary."""
    publisher = subprocess.Popen(
        [sys.executable, THIS, "publish", str(port), str(SECONDS)],
        cwd=ROOT, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert publisher.stdout is not None
    published: dict[str, float] = {}
    sent_line = ""
    for raw in publisher.stdout:
        line = raw.split()
        if line[0] == "sent":
            sent_line = raw
        elif line[0] != "ready":
            published[line[0]] = float(line[1])
    publisher.wait()
    return published, sent_line


def baseline_latency(workdir: Path) -> dict[str, object]:
    """The same load into a bare paho subscriber: how fast any Python consumer sees a sample
    here, the floor under the collector's fault-to-webhook latency."""
    from tests.support.mosquitto import Broker

    broker = Broker(workdir / "baseline-broker", persistence=False).start()
    subscriber = subprocess.Popen(
        [sys.executable, THIS, "subscribe", str(broker.port)],
        cwd=ROOT, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    arrivals: dict[str, float] = {}
    try:
        assert subscriber.stdout is not None
        assert subscriber.stdout.readline().strip() == "ready"
        stream = subscriber.stdout

        def read() -> None:
            for raw in stream:
                device, at = raw.split()
                arrivals[device] = float(at)

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        published, sent_line = run_publisher(broker.port)
        deadline = time.monotonic() + 120
        while len(arrivals) < len(published) and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        subscriber.terminate()
        subscriber.wait(timeout=10)
        broker.stop()
    lat = [(arrivals[d] - at) * 1000 for d, at in published.items() if d in arrivals]
    _, n, secs = sent_line.split()
    return {
        "paho_baseline_latency_p50_ms": round(percentile(lat, 50), 2),
        "paho_baseline_latency_p99_ms": round(percentile(lat, 99), 2),
        "paho_baseline_background_msgs_per_s_achieved": round(int(n) / float(secs), 1),
    }


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


def start_collector(
    workdir: Path, broker_port: int, receiver: ReceiverProcess, store_url: str, separate: bool
) -> tuple[subprocess.Popen[bytes], int]:
    """``fleetdesk collector`` with the rules engine and tickets delivering to the receiver."""
    from tests.support.services import free_port

    inventory = workdir / "inventory.csv"
    write_inventory(inventory)
    sinks = workdir / "sinks.yaml"
    sinks.write_text(
        "sinks:\n  - {name: desk, type: webhook, secret_env: BENCH_SECRET, "
        f"url: {receiver.url}}}\n"
    )
    http_port = free_port()
    config = workdir / "collector.yaml"
    config.write_text(
        f"mqtt:\n  url: mqtt://127.0.0.1:{broker_port}\n  client_id: bench-collector\n"
        f"store:\n  url: {store_url}\n"
        f"http:\n  listen: 127.0.0.1:{http_port}\n"
        f"rules:\n  inventory: {inventory}\n  default_policy: xian-integrator\n"
        f"tickets:\n  sinks: {sinks}\n  delivery_poll_s: 0.5\n"
        f"  worker: {'false' if separate else 'true'}\n"
    )
    secret = "whsec_" + base64.b64encode(b"bench-secret-0123456789abcdef").decode()
    log = (workdir / "collector.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "collector", "collector", "--config", str(config)],
        cwd=ROOT, stdout=log, stderr=log, env={**os.environ, "BENCH_SECRET": secret},
    )  # fmt: skip
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError((workdir / "collector.log").read_text())
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/healthz", timeout=1) as r:
                if json.load(r)["mqtt_subscribed"]:  # after SUBACK: samples reach it
                    return proc, http_port
        except OSError:
            pass
        time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"collector did not come up: {(workdir / 'collector.log').read_text()}")


def latency(
    receiver: ReceiverProcess, workdir: Path, store_url: str, separate: bool
) -> dict[str, object]:
    """Publisher -> Mosquitto -> fleetdesk collector (rules, tickets; delivery inside it, or
    ``separate``: a fleetdesk deliver process) -> receiver."""
    from tests.support.mosquitto import Broker

    workdir.mkdir(parents=True, exist_ok=True)
    broker = Broker(workdir / "broker", persistence=False).start()
    collector, http_port = start_collector(workdir, broker.port, receiver, store_url, separate)
    deliver = None
    if separate:
        secret = "whsec_" + base64.b64encode(b"bench-secret-0123456789abcdef").decode()
        deliver = subprocess.Popen(
            [sys.executable, "-m", "collector", "deliver", "--db",
             store_url, "--sinks", str(workdir / "sinks.yaml"),
             "--poll", "0.5"],
            cwd=ROOT, env={**os.environ, "BENCH_SECRET": secret},
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
    published: dict[str, float] = {}
    try:
        published, sent_line = run_publisher(broker.port)
        deadline = time.monotonic() + 120
        while len(receiver.arrivals) < FAULTS and time.monotonic() < deadline:
            time.sleep(0.05)  # the receiver is another process: poll what it reported
        with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/metrics", timeout=5) as r:
            metrics = r.read().decode()
    finally:
        if deliver is not None:
            deliver.send_signal(signal.SIGTERM)
            deliver.wait(timeout=30)
        collector.send_signal(signal.SIGTERM)
        collector.wait(timeout=60)
        broker.stop()
    bodies = receiver.bodies
    latencies = [
        (at - published[device]) * 1000
        for event_id, at in receiver.arrivals.items()
        if (device := bodies.get(event_id)) in published
    ]
    # Where the time goes, from the collector's store: arrival (the fault's event time) and
    # the commit of its ticket and outbox row.
    engine = sa.create_engine(store_url)
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT t.body, o.event_id, o.created_at FROM tickets t "
                "JOIN outbox o ON o.ticket = t.number AND o.seq = 1"
            )
        ).all()
    engine.dispose()
    intake, commit, delivery = [], [], []
    for body, event_id, created_at in rows:
        ticket = json.loads(body)
        device = ticket["device"]
        if device in published and event_id in receiver.arrivals:
            opened = datetime.fromisoformat(ticket["opened_at"].replace("Z", "+00:00"))
            intake.append((opened.timestamp() - published[device]) * 1000)
            commit.append((created_at - opened.timestamp()) * 1000)
            delivery.append((receiver.arrivals[event_id] - created_at) * 1000)
    _, n, secs = sent_line.split()
    received = next(
        (float(x.split()[-1]) for x in metrics.splitlines()
         if x.startswith('collector_messages_total{outcome="accepted"}')),
        -1.0,
    )  # fmt: skip
    return {
        "latencies": latencies,
        "intake_to_fault_p50_ms": round(percentile(intake, 50), 2),
        "fault_to_commit_p50_ms": round(percentile(commit, 50), 2),
        "commit_to_webhook_p50_ms": round(percentile(delivery, 50), 2),
        "intake_to_fault_p99_ms": round(percentile(intake, 99), 2),
        "fault_to_commit_p99_ms": round(percentile(commit, 99), 2),
        "commit_to_webhook_p99_ms": round(percentile(delivery, 99), 2),
        "background_msgs_per_s_achieved": round(int(n) / float(secs), 1),
        "collector_msgs_accepted": received,
    }


@contextlib.contextmanager
def pg_database() -> Iterator[str]:
    """A throw-away database on the local PostgreSQL, dropped afterwards."""
    name = f"fleetdesk_bench_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] if values else -1.0


# (key suffix, store, delivery in its own process): SQLite with the worker inside the collector
# (one writer); PostgreSQL as deployed (fleetdesk deliver, woken by LISTEN/NOTIFY), and with
# the worker inside the collector for comparison.
RUNS = (
    ("", "sqlite", False),
    ("_postgres", "postgres", True),
    ("_postgres_worker_inside", "postgres", False),
)


def main() -> None:
    result: dict[str, object] = {
        "faults": FAULTS,
        "fault_rate_per_s": FAULTS / SECONDS,
        "background_msgs_per_s_target": BACKGROUND_MSGS_PER_S,
    }
    with tempfile.TemporaryDirectory() as tmp:
        for suffix, kind, separate in [r for r in RUNS if r[1] in STORES]:
            sqlite_url = f"sqlite:///{Path(tmp) / 'state.db'}"
            with pg_database() if kind == "postgres" else contextlib.nullcontext(sqlite_url) as url:
                receiver = ReceiverProcess()
                try:
                    run = latency(receiver, Path(tmp) / f"run{suffix}", url, separate)
                finally:
                    receiver.stop()
            lat = run.pop("latencies")
            assert isinstance(lat, list)
            result[f"delivery{suffix}"] = "fleetdesk deliver" if separate else "in the collector"
            result[f"latency_p50_ms{suffix}"] = round(percentile(lat, 50), 2)
            result[f"latency_p99_ms{suffix}"] = round(percentile(lat, 99), 2)
            result[f"latency_delivered{suffix}"] = len(lat)
            result.update({f"{k}{suffix}": v for k, v in run.items()})
        result.update(baseline_latency(Path(tmp)))  # the paho floor, last
        tickets, bare = tickets_per_s(f"sqlite:///{Path(tmp) / 'rate.db'}")
        result["tickets_per_s_sqlite"] = round(tickets, 1)
        result["bare_insert_per_s_sqlite"] = round(bare, 1)
    with pg_database() as url:
        tickets, bare = tickets_per_s(url)
        result["tickets_per_s_postgres"] = round(tickets, 1)
        result["bare_insert_per_s_postgres"] = round(bare, 1)
    result["pipeline"] = (
        "publisher -> mosquitto -> fleetdesk collector (decode, dedup, rules engine, ticket "
        "transaction with outbox) -> delivery worker (in the collector, or fleetdesk deliver "
        "woken by the commit's NOTIFY) -> signed webhook -> receiver"
    )
    print(json.dumps(result))


if __name__ == "__main__":
    if sys.argv[1:2] == ["publish"]:
        publish_main(int(sys.argv[2]), float(sys.argv[3]))
    elif sys.argv[1:2] == ["subscribe"]:
        subscribe_main(int(sys.argv[2]))
    else:
        main()
