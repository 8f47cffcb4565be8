"""Fault injection: what the collector acknowledged is never lost (docs/reliability.md).

Real parts only: Mosquitto, VictoriaMetrics, SQLite or PostgreSQL, and the collector as its own
process (``python -m collector collector``) so it can be SIGKILLed in the middle of a backlog.
Every report has a distinct (device, timestamp); the verdict is read from VictoriaMetrics.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
import sqlalchemy as sa

from agent import wire
from collector.store import DeviceRow, Store, schema
from collector.store.tickets import TicketStore
from tests.support.collector import Publisher
from tests.support.collector_proc import CollectorProcess
from tests.support.mosquitto import Broker
from tests.support.services import free_port
from tests.support.victoria import Victoria

DEVICES = 100
PER_DEVICE = 100  # 10,000 reports
WINDOW = 200  # mqtt.max_unacked
FAULTY = [f"gw-{i:03d}" for i in range(0, DEVICES, 10)]  # their last reports: WAN down
BASE = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=3)


def _inventory(path: Path) -> Path:
    rows = [
        "device,tenant,model,class,site,parent,criticality,customer,policy,"
        "warranty_start,warranty_months,interval_s"
    ]
    rows += [
        f"gw-{i:03d},acme,WR5120,router,site-{i // 20},,common,acme,shanghai-energy,"
        "2026-01-01,36,3600"
        for i in range(DEVICES)
    ]
    path.write_text("\n".join(rows) + "\n")
    return path


def _config(tmp: Path, broker: Broker, victoria: Victoria, store_url: str, port: int) -> Path:
    text = f"""\
mqtt:
  url: mqtt://127.0.0.1:{broker.port}
  client_id: durability-test
  max_batch: 200
  # at most this many messages unacknowledged (the MQTT 5 Receive Maximum: Mosquitto keeps to
  # it while no acknowledgement flows, as under a database lock)
  max_unacked: {WINDOW}
store:
  url: {store_url}
  flush_interval_s: 0.2
  commit_interval_s: 0.5
http:
  listen: 127.0.0.1:{port}
tsdb:
  url: {victoria.url}
  retry_interval_ms: 100
rules:
  inventory: {_inventory(tmp / "inventory.csv")}
  state_flush_s: 1
"""
    path = tmp / "collector.yaml"
    path.write_text(text)
    return path


def _committed(url: str) -> int:
    """Reports the collector committed (and so acknowledged): per device, last seq + 1."""
    path = url.removeprefix("sqlite:///")
    if not Path(path).exists():
        return 0
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=1) as conn:
            rows = conn.execute("SELECT last_seq FROM devices").fetchall()
    except sqlite3.Error:  # not created yet, or busy: nothing to count this time
        return 0
    return sum(max(0, int(seq) + 1) for (seq,) in rows)


def _reports() -> list[tuple[str, bytes]]:
    out = []
    for seq in range(PER_DEVICE):
        for i in range(DEVICES):
            device = f"gw-{i:03d}"
            metrics: dict[str, wire.MetricValue] = {"cpu_pct": float(seq)}
            if device in FAULTY:
                metrics["if_wan_up"] = seq < PER_DEVICE // 2  # down from the middle on
            msg = wire.Telemetry(
                device=device,
                boot="b1",
                seq=seq,
                ts=BASE + timedelta(seconds=seq),
                metrics=metrics,
            )
            out.append((f"fleet/v1/acme/{device}/telemetry", wire.encode(msg)))
    return out


def _expected() -> dict[str, set[int]]:
    stamps = {int((BASE + timedelta(seconds=s)).timestamp() * 1000) for s in range(PER_DEVICE)}
    return {f"gw-{i:03d}": stamps for i in range(DEVICES)}


def _stored(victoria: Victoria) -> dict[str, set[int]]:
    found = victoria.samples('fleet_cpu_pct{tenant="acme"}')
    return {device: {ts for ts, _ in pairs} for device, pairs in found.items()}


def _wait_stored(victoria: Victoria, timeout: float) -> dict[str, set[int]]:
    deadline = time.monotonic() + timeout
    while True:
        stored = _stored(victoria)
        if stored == _expected() or time.monotonic() > deadline:
            return stored
        time.sleep(0.5)


def _missing(stored: dict[str, set[int]]) -> int:
    return sum(len(ts - stored.get(d, set())) for d, ts in _expected().items())


def _faults(url: str) -> list[tuple[str, str]]:
    """(device, kind) of the stored ``opened`` fault events."""
    store = Store.open(url)
    try:
        with store.engine.connect() as conn:
            rows = conn.execute(sa.select(schema.fault_events.c.device, schema.fault_events.c.body))
            return [(r.device, r.body) for r in rows if '"event": "opened"' in r.body]
    finally:
        store.close()


def _live_tickets(url: str) -> list[str]:
    store = TicketStore(url)
    try:
        return sorted(t.key for t in store.tickets())
    finally:
        store.close()


def _create_session(proc: CollectorProcess) -> None:
    """First start: the persistent session and its subscription exist; then a clean stop."""
    proc.start().wait_subscribed(60)
    assert proc.stop() == 0


def _unacked(proc: CollectorProcess) -> float | None:
    """``collector_mqtt_unacked``, or None while /metrics does not answer (never a false 0)."""
    return proc.metrics().get(("collector_mqtt_unacked", ()))


HALF = PER_DEVICE * DEVICES // 2  # reports seq 0-49: acknowledged before the kill


@pytest.mark.parametrize("tsdb", ["up", "hung"])
def test_sigkill_during_a_backlog_loses_nothing_acknowledged(
    tmp_path: Path, broker: Broker, tsdb: str
) -> None:
    """The kill lands mid-work by construction, not by racing the drain: the first half of the
    backlog is committed and acknowledged, then the database is locked, the second half
    arrives and goes through the pipeline (its effects held, unacknowledged), and the collector
    is killed while the lock still holds. (Mosquitto 2.0 does not keep to the MQTT 5 Receive
    Maximum once acknowledgements flow, so the collector's window cannot pace the drain.)"""
    victoria = Victoria(tmp_path / "victoria").start()
    url = f"sqlite:///{tmp_path / 'state.db'}"
    port = free_port()
    proc = CollectorProcess(_config(tmp_path, broker, victoria, url, port), port, tmp_path / "log")
    pub = Publisher(broker)
    reports = _reports()
    hung = False
    try:
        _create_session(proc)
        pub.many(reports[:HALF])  # queued in the broker for the collector's session
        if tsdb == "hung":
            assert victoria._proc is not None
            victoria._proc.send_signal(signal.SIGSTOP)  # accepts connections, never answers
            hung = True
        proc.start()
        proc.wait_until(lambda: _committed(url) == HALF, 120, "the first half committed")
        proc.wait_until(lambda: _unacked(proc) == 0, 60, "and acknowledged")
        with _Lock(url, 120.0) as lock:
            pub.many(reports[HALF:])
            # a window of the second half (the Receive Maximum) goes through the pipeline; its
            # commit waits for the lock, so none of it is acknowledged
            proc.wait_until(
                lambda: proc.value("collector_messages_total", outcome="accepted") >= HALF + WINDOW,
                60,
                "a window of the second half through the pipeline",
            )
            assert (
                _unacked(proc) == proc.value("collector_messages_total", outcome="accepted") - HALF
            )
            proc.kill()
            assert _committed(url) == HALF  # the kill came mid-work
            lock.release()
        assert _committed(url) == HALF
        proc.start()

        def received() -> float:
            return proc.value("collector_messages_total", outcome="accepted") + proc.value(
                "collector_messages_total", outcome="duplicate"
            )

        # the second half comes again (unacknowledged), the first half does not
        proc.wait_until(lambda: received() >= len(reports) - HALF, 120, "the redelivery")
        if hung:
            assert victoria._proc is not None
            victoria._proc.send_signal(signal.SIGCONT)
            hung = False
        proc.wait_until(
            lambda: proc.value("collector_tsdb_backlog_lines") == 0, 120, "disk buffer shipped"
        )
        stored = _wait_stored(victoria, 60)
        assert _missing(stored) == 0, f"{_missing(stored)} acknowledged reports lost"
        proc.wait_until(lambda: _unacked(proc) == 0, 60, "all acknowledged")
        assert received() == len(reports) - HALF, received()  # acknowledged: not sent again
        assert _committed(url) == len(reports)
        # no fault event lost: every faulty device's fault was stored and made a ticket
        proc.wait_until(lambda: len(_live_tickets(url)) >= len(FAULTY), 60, "tickets")
        assert proc.stop() == 0
    finally:
        if hung and victoria._proc is not None:
            victoria._proc.send_signal(signal.SIGCONT)
        if proc.running:
            proc.kill()
        pub.close()
        victoria.stop()
    opened = {device for device, body in _faults(url) if '"fault": "interface_down"' in body}
    assert opened == set(FAULTY)
    assert _live_tickets(url) == sorted(f"device:{d}/interface_down" for d in FAULTY)


class _Lock:
    """Another connection holds the database for ``seconds`` (SQLite: an exclusive
    transaction; PostgreSQL: ACCESS EXCLUSIVE locks on the collector's tables)."""

    def __init__(self, url: str, seconds: float) -> None:
        self.url = url
        self.seconds = seconds
        self.held = threading.Event()
        self._release = threading.Event()
        self._thread = threading.Thread(target=self._hold, daemon=True)

    def __enter__(self) -> _Lock:
        self._thread.start()
        assert self.held.wait(10), "the lock was not taken"
        return self

    def release(self) -> None:
        """Before the ``seconds`` are up."""
        self._release.set()

    def __exit__(self, *_exc: object) -> None:
        self._thread.join(timeout=self.seconds + 20)

    def _hold(self) -> None:
        if self.url.startswith("sqlite"):
            conn = sqlite3.connect(self.url.removeprefix("sqlite:///"), isolation_level=None)
            conn.execute("BEGIN EXCLUSIVE")
            self.held.set()
            self._release.wait(self.seconds)
            conn.execute("COMMIT")
            conn.close()
            return
        dsn = self.url.replace("postgresql+psycopg://", "postgresql://")
        with psycopg.connect(dsn) as conn:
            conn.execute(
                "LOCK TABLE devices, fault_events, faults, service_state, tickets, outbox "
                "IN ACCESS EXCLUSIVE MODE"
            )
            self.held.set()
            self._release.wait(self.seconds)
            conn.rollback()


@pytest.mark.parametrize("db", ["sqlite", "postgresql"])
def test_a_database_lock_degrades_and_catches_up(
    tmp_path: Path, broker: Broker, request: pytest.FixtureRequest, db: str
) -> None:
    url = f"sqlite:///{tmp_path / 'state.db'}"
    if db == "postgresql":
        url = request.getfixturevalue("fresh_pg")
    victoria = Victoria(tmp_path / "victoria").start()
    port = free_port()
    proc = CollectorProcess(_config(tmp_path, broker, victoria, url, port), port, tmp_path / "log")
    pub = Publisher(broker)
    reports = _reports()
    try:
        proc.start().wait_subscribed(60)
        pub.many(reports[:1000])
        proc.wait_until(
            lambda: (
                proc.value("collector_messages_total", outcome="accepted") == 1000
                and proc.value("collector_mqtt_unacked") == 0
            ),
            60,
            "the first reports committed",
        )
        with _Lock(url, 10.0):
            pub.many(reports[1000:])
            proc.wait_until(
                lambda: "intake-commit" in proc.health().get("degraded", {}),
                30,
                "/healthz degraded while the database is locked",
            )
            health = proc.health()
            assert health["status"] == "degraded"
            assert proc.value("collector_mqtt_unacked") > 0  # held, not acknowledged
            assert proc.value("collector_store_errors_total", part="intake-commit") >= 1
        proc.wait_until(
            lambda: (
                proc.value("collector_mqtt_unacked") == 0
                and proc.value("collector_messages_total", outcome="accepted") == len(reports)
                and proc.health().get("status") == "ok"
            ),
            90,
            "caught up after the lock",
        )
        stored = _wait_stored(victoria, 60)
        assert _missing(stored) == 0
        proc.wait_until(lambda: len(_live_tickets(url)) >= len(FAULTY), 60, "tickets")
        assert proc.running  # it never exited
        assert proc.stop() == 0
    finally:
        if proc.running:
            proc.kill()
        pub.close()
        victoria.stop()
    opened = {device for device, body in _faults(url) if '"fault": "interface_down"' in body}
    assert opened == set(FAULTY)
    devices = {row.id: row.last_seq for row in _devices(url)}
    assert devices == {f"gw-{i:03d}": PER_DEVICE - 1 for i in range(DEVICES)}


def _devices(url: str) -> list[DeviceRow]:
    store = Store.open(url)
    try:
        return store.devices()
    finally:
        store.close()


@pytest.fixture
def fresh_pg(pg_url: str) -> Iterator[str]:
    """A database of its own on the test server (the session's holds other tests' rows)."""
    name = f"durable_{os.getpid()}_{time.monotonic_ns() % 10**9}"
    admin = pg_url.rsplit("/", 1)[0].replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(f"{admin}/postgres", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield pg_url.rsplit("/", 1)[0] + f"/{name}"
    with psycopg.connect(f"{admin}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
