"""Several collector processes on one PostgreSQL and one Mosquitto, and a simulated fleet.

Used by tests/collector/test_scale_out.py (the SIGKILL failover test) and bench/scale.py. The
fleet is one paho client publishing, for each of ``devices`` devices, a numbered telemetry
report every ``period_s``; a device in ``faulty`` reports a full disk (a fault with a ticket)
from its ``fault_round`` on. What the broker acknowledged (PUBACK) is recorded per device: that
is what must reach the database, none lost.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import paho.mqtt.client as mqtt
import sqlalchemy as sa
from paho.mqtt.enums import CallbackAPIVersion

from tests.support.collector import TICKETS_HEADER, telemetry
from tests.support.collector_proc import CollectorProcess
from tests.support.mosquitto import Broker
from tests.support.receiver import Received, Receiver
from tests.support.services import free_port

SITE_SIZE = 4  # devices per site: a site's devices share a partition


def device_name(i: int) -> str:
    return f"gw-{i:04d}"


def write_inventory(path: Path, devices: int, interval_s: int) -> None:
    rows = "".join(
        f"{device_name(i)},acme,WR5120,router,site-{i // SITE_SIZE},,common,acme,"
        f"xian-integrator,2026-01-01,36,{interval_s}\n"
        for i in range(devices)
    )
    path.write_text(TICKETS_HEADER + rows)


def collector_config(
    workdir: Path,
    *,
    broker: Broker,
    store_url: str,
    inventory: Path,
    sinks: Path | None,
    http_port: int,
    partitions: int,
    client_id: str = "fleetdesk-group",
) -> Path:
    """One collector's config: all of them share the client id (a partition's MQTT session is
    ``<client id>-pNNN``, whoever owns it), the database and the inventory."""
    workdir.mkdir(parents=True, exist_ok=True)
    lines = [
        "mqtt:",
        f"  url: mqtt://127.0.0.1:{broker.port}",
        f"  client_id: {client_id}",
        "store:",
        f"  url: {store_url}",
        "  flush_interval_s: 0.2",
        "http:",
        f"  listen: 127.0.0.1:{http_port}",
        "intake:",
        f"  dead_letter_file: {workdir / 'dead-letters.jsonl'}",
        "rules:",
        f"  inventory: {inventory}",
        "  state_flush_s: 0.5",
        "tickets:",
        "  delivery_poll_s: 0.05",
    ]
    if sinks is not None:
        lines.append(f"  sinks: {sinks}")
    lines += ["scale:", f"  partitions: {partitions}", "  lease_check_s: 0.5"]
    path = workdir / "collector.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def write_sinks(path: Path, receiver: Receiver) -> None:
    path.write_text(
        "sinks:\n  - name: desk\n    type: webhook\n"
        f"    url: {receiver.url}\n    secret_env: DESK_OUT_SECRET\n"
        "    backoff_base: 0.05s\n    backoff_cap: 0.2s\n"
    )


@dataclass
class Group:
    """``count`` collector processes with the same partitions."""

    root: Path
    broker: Broker
    store_url: str
    inventory: Path
    partitions: int
    sinks: Path | None = None
    client_id: str = "fleetdesk-group"
    procs: list[CollectorProcess] = field(default_factory=list)

    def add(self) -> CollectorProcess:
        n = len(self.procs)
        port = free_port()
        config = collector_config(
            self.root / f"collector-{n}",
            broker=self.broker,
            store_url=self.store_url,
            inventory=self.inventory,
            sinks=self.sinks,
            http_port=port,
            partitions=self.partitions,
            client_id=self.client_id,
        )
        proc = CollectorProcess(config, port, config.parent / "collector.log").start()
        self.procs.append(proc)
        return proc

    def live(self) -> list[CollectorProcess]:
        return [p for p in self.procs if p.running]

    def owned(self) -> dict[int, list[int]]:
        """collector index -> the partitions its /healthz says it serves (subscribed)."""
        out = {}
        for n, proc in enumerate(self.procs):
            if proc.running:
                health = proc.health()
                if health.get("mqtt_subscribed") and not health.get("draining"):
                    out[n] = list(health.get("partitions", []))
        return out

    def settled(self) -> bool:
        """Every partition served by exactly one live collector, each subscribed."""
        owned = self.owned()
        if len(owned) != len(self.live()):
            return False
        parts = sorted(p for ps in owned.values() for p in ps)
        return parts == list(range(self.partitions))

    def leader(self) -> int | None:
        for n, proc in enumerate(self.procs):
            if proc.running and proc.health().get("tickets_leader"):
                return n
        return None

    def wait_settled(self, timeout: float = 60.0) -> float:
        """Seconds until every partition is served again."""
        start = time.monotonic()
        while not self.settled():
            if time.monotonic() - start > timeout:
                tails = "\n".join(p.tail(15) for p in self.live())
                raise AssertionError(f"partitions not settled: {self.owned()}\n{tails}")
            time.sleep(0.05)
        return time.monotonic() - start

    def stop(self) -> None:
        for proc in self.procs:
            if proc.running:
                proc.stop()


class Fleet(threading.Thread):
    """``devices`` devices reporting every ``period_s`` (one paho client, QoS 1)."""

    def __init__(
        self,
        broker: Broker,
        devices: int,
        period_s: float,
        faulty: dict[str, int] | None = None,  # device -> round its disk fills
        client_id: str = "fleet-sim",
    ) -> None:
        super().__init__(daemon=True)
        self.devices = [device_name(i) for i in range(devices)]
        self.period_s = period_s
        self.faulty = faulty or {}
        self.acked: dict[str, int] = {}  # device -> highest seq the broker acknowledged
        self.rounds = 0
        self.error: BaseException | None = None
        self._halt = threading.Event()
        self._client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id)
        self._client.max_inflight_messages_set(1000)
        self._client.connect("127.0.0.1", broker.port)
        self._client.loop_start()

    def run(self) -> None:
        try:
            seq = 0
            next_at = time.monotonic()
            while not self._halt.is_set():
                seq += 1
                infos = []
                for device in self.devices:
                    metrics = {"cpu_pct": 10.0}
                    start = self.faulty.get(device)
                    if start is not None and seq >= start:
                        metrics["disk_used_pct"] = 97.0
                    payload = telemetry(device, seq, ts=datetime.now(UTC), **metrics)
                    topic = f"fleet/v1/acme/{device}/telemetry"
                    infos.append((device, self._client.publish(topic, payload, qos=1)))
                for device, info in infos:
                    info.wait_for_publish(timeout=60)
                    if info.is_published():
                        self.acked[device] = seq
                self.rounds = seq
                next_at += self.period_s
                self._halt.wait(max(0.0, next_at - time.monotonic()))
        except BaseException as exc:  # reported by the test, not lost in a thread
            self.error = exc

    def stop(self) -> None:
        self._halt.set()
        self.join(timeout=120)
        self._client.disconnect()
        self._client.loop_stop()


def counts(store_url: str) -> dict[str, object]:
    """What the shared database says: devices (last_seq, gaps), tickets by key, fault kinds,
    outbox events."""
    engine = sa.create_engine(store_url)
    with engine.connect() as conn:
        devices = {
            r.id: (r.last_seq, r.gaps) for r in conn.execute(sa.text("SELECT * FROM devices"))
        }
        tickets = conn.execute(sa.text("SELECT key, count(*) FROM tickets GROUP BY key")).all()
        kinds = conn.execute(sa.text("SELECT kind, count(*) FROM fault_events GROUP BY kind")).all()
        events = conn.execute(sa.text("SELECT event_id, state FROM outbox")).all()
    engine.dispose()
    return {
        "devices": devices,
        "tickets": {k: int(n) for k, n in tickets},
        "fault_kinds": {k: int(n) for k, n in kinds},
        "outbox": {e: s for e, s in events},
    }


@dataclass
class Failover:
    """What one SIGKILL run saw (``run_failover``): the checks read these from outside."""

    faulty: dict[str, int]
    acked: dict[str, int]
    found: dict[str, object]
    received: list[Received]
    owned_before: dict[int, list[int]]
    owned_after: dict[int, list[int]]
    victim_accepted: float
    delivered_before_kill: int
    failover_s: float
    leader_after: int | None
    victim: int

    @property
    def duplicate_tickets(self) -> int:
        tickets = self.found["tickets"]
        assert isinstance(tickets, dict)
        return sum(n - 1 for n in tickets.values())

    @property
    def lost_reports(self) -> int:
        """Reports the broker acknowledged that the registry does not account for (by device,
        boot, seq: a lower last_seq, or a gap)."""
        devices = self.found["devices"]
        assert isinstance(devices, dict)
        lost = 0
        for device, seq in self.acked.items():
            last, gaps = devices.get(device, (0, 0))
            lost += max(0, seq - last) + gaps
        return lost


def run_failover(
    root: Path,
    broker: Broker,
    store_url: str,
    receiver: Receiver,
    *,
    devices: int = 1000,
    partitions: int = 12,
    interval_s: int = 2,
    kill_at_round: int = 12,
) -> Failover:
    """Three collectors, ``devices`` devices reporting every second (a twentieth of them fill
    their disk at rounds 6..17); the tickets leader is SIGKILLed at ``kill_at_round``; the run
    goes on for ten more rounds and waits until the database and the receiver have it all."""
    inventory = root / "inventory.csv"
    write_inventory(inventory, devices, interval_s)
    sinks = root / "sinks.yaml"
    write_sinks(sinks, receiver)
    group = Group(root, broker, store_url, inventory, partitions, sinks)
    faulty = {device_name(i): 6 + (i // 20) % 12 for i in range(0, devices, 20)}
    fleet = Fleet(broker, devices, 1.0, faulty)
    try:
        for _ in range(3):
            group.add()
        fleet.start()
        group.wait_settled()
        owned_before = group.owned()
        _wait(lambda: fleet.error is not None or fleet.rounds >= kill_at_round, "kill round")
        victim = group.leader()
        assert victim is not None, "no collector holds the tickets lease"
        accepted = group.procs[victim].value("collector_messages_total", outcome="accepted")
        delivered = len(receiver.accepted())
        group.procs[victim].kill()
        failover_s = group.wait_settled()
        owned_after = group.owned()
        leader_after = group.leader()
        _wait(lambda: fleet.error is not None or fleet.rounds >= kill_at_round + 10, "the end")
        fleet.stop()
        if fleet.error is not None:
            raise fleet.error
        expected = {f"device:{d}/disk_full" for d in faulty}

        def tickets_in() -> bool:
            found = counts(store_url)["tickets"]
            return isinstance(found, dict) and set(found) >= expected

        def delivered_all() -> bool:
            outbox = counts(store_url)["outbox"]
            keys = {r.headers.get("idempotency-key") for r in receiver.accepted()}
            return isinstance(outbox, dict) and bool(outbox) and set(outbox) <= keys

        def reports_in() -> bool:
            rows = counts(store_url)["devices"]
            assert isinstance(rows, dict)
            return all(rows.get(d, (-1, 0))[0] >= s for d, s in fleet.acked.items())

        for check, what in ((tickets_in, "tickets"), (delivered_all, "webhooks"),
                            (reports_in, "reports")):  # fmt: skip
            _wait(check, what, timeout=60)
        found = counts(store_url)
    finally:
        if fleet.is_alive():
            fleet.stop()
        group.stop()
    return Failover(
        faulty, dict(fleet.acked), found, receiver.accepted(), owned_before, owned_after,
        accepted, delivered, failover_s, leader_after, victim,
    )  # fmt: skip


def _wait(predicate: Callable[[], bool], what: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"not reached in {timeout:g}s: {what}")
        time.sleep(0.05)
