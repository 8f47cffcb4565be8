"""Restarts do not invent outages: the collector as a subprocess, a real Mosquitto, devices
reporting every second, a webhook desk. A collector SIGKILL, a SIGTERM restart after 20 s and a
broker restart after 25 s give no fault, no ticket and no webhook for the devices that kept
reporting; the one that went silent during the first outage is found offline, and the
registry says so."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
import urllib.request
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from collector.store import Store
from collector.store.tickets import TicketStore
from tests.support.collector import collector_yaml, telemetry
from tests.support.collector_proc import CollectorProcess
from tests.support.mosquitto import Broker
from tests.support.receiver import Receiver
from tests.support.services import free_port
from tests.support.tickets import new_secret

HEADER = (
    "device,tenant,model,class,site,parent,criticality,customer,policy,"
    "warranty_start,warranty_months,interval_s\n"
)
KEPT = ("gw-1", "gw-2", "gw-3")  # report every second throughout
SILENT = "gw-4"  # stops during the first outage


class Devices(threading.Thread):
    """Publishes one report a second per device (QoS 1, reconnecting like an agent)."""

    def __init__(self, broker: Broker) -> None:
        super().__init__(daemon=True)
        self.devices = {*KEPT, SILENT}
        self.stopped = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="devices")
        self.client.reconnect_delay_set(0.2, 1)
        self.client.connect("127.0.0.1", broker.port)
        self.client.loop_start()

    def run(self) -> None:
        seq = 0
        while not self.stopped.wait(1.0):
            seq += 1
            for device in sorted(self.devices):
                topic = f"fleet/v1/acme/{device}/telemetry"
                self.client.publish(topic, telemetry(device, seq, cpu_pct=5.0), qos=1)

    def close(self) -> None:
        self.stopped.set()
        self.join()
        self.client.disconnect()
        self.client.loop_stop()


def _health(port: int) -> dict[str, object]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as resp:
        body: dict[str, object] = json.load(resp)
        return body


def _wait(predicate: object, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():  # type: ignore[operator]
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.2)


def _fault_events(db: Path) -> list[tuple[str, str, str]]:
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT device, kind, body FROM fault_events").fetchall()
    return [(device, kind, json.loads(body)["event"]) for device, kind, body in rows]


def _connected(port: int) -> bool:
    try:
        return bool(_health(port)["mqtt_connected"])
    except OSError:
        return False


def test_restarts_invent_no_outage_and_a_silent_device_is_still_found(
    tmp_path: Path, broker: Broker, monkeypatch: pytest.MonkeyPatch
) -> None:
    desk = Receiver(free_port())  # the customer's service desk: what reaches it is the proof
    desk.start()
    monkeypatch.setenv("DESK_OUT_SECRET", new_secret())  # inherited by the collector process
    sinks = tmp_path / "sinks.yaml"
    sinks.write_text(
        f"sinks:\n  - name: desk\n    type: webhook\n    url: {desk.url}\n"
        "    secret_env: DESK_OUT_SECRET\n"
    )
    inventory = tmp_path / "inventory.csv"
    inventory.write_text(
        HEADER
        + "".join(
            f"{d},acme,WR5120,router,,,common,acme,shanghai-energy,2026-01-01,36,1\n"
            for d in (*KEPT, SILENT)
        )
    )
    http_port = free_port()
    text = collector_yaml(
        tmp_path,
        broker,
        http_port=http_port,
        extra=(
            f"rules:\n  inventory: {inventory}\n  state_flush_s: 2\n"
            f"tickets:\n  sinks: {sinks}\n  delivery_poll_s: 0.2\n"
        ),
    ).replace(
        "  client_id: collector-test\n", "  client_id: collector-test\n  reconnect_max_s: 1\n"
    )
    config = tmp_path / "collector.yaml"
    config.write_text(text)
    db = tmp_path / "state.db"
    collector = CollectorProcess(config, http_port, tmp_path / "collector.log")
    devices = Devices(broker)
    try:
        collector.start().wait_subscribed()
        devices.start()
        _wait(lambda: _health(http_port)["devices"] == 4)
        time.sleep(4)  # the engine's state is saved (every 2 s): the kill restores it

        collector.kill()  # 1. SIGKILL; one device goes silent while the collector is away
        devices.devices.discard(SILENT)
        time.sleep(8)
        collector.start().wait_subscribed()
        _wait(lambda: (SILENT, "device_offline", "opened") in _fault_events(db))
        _wait(lambda: len(desk.accepted()) >= 1)  # its ticket reached the desk
        time.sleep(5)

        assert collector.stop() == 0, collector.log.read_text()  # 2. SIGTERM, 20 s down
        time.sleep(20)
        collector.start().wait_subscribed()
        time.sleep(8)

        broker.stop()  # 3. the broker is away for 25 s
        time.sleep(25)
        broker.start()
        _wait(lambda: _connected(http_port))
        time.sleep(8)
        assert collector.stop() == 0, collector.log.read_text()
    finally:
        collector.kill()
        devices.close()
        desk.stop()

    events = _fault_events(db)
    assert [e for e in events if e[0] in KEPT] == [], events
    assert (SILENT, "device_offline", "opened") in events
    registry = Store.open(f"sqlite:///{db}")
    states = {row.id: row.state for row in registry.devices()}
    registry.close()
    assert states == {**dict.fromkeys(KEPT, "online"), SILENT: "offline"}  # as the engine sees it
    store = TicketStore(f"sqlite:///{db}")
    tickets = store.tickets(live_only=False)
    store.close()
    assert sorted({t.device for t in tickets}) == [SILENT]  # nothing else to send to a desk
    assert {t.kind for t in tickets} == {"device_offline"}
    sent = [r.json()["ticket"] for r in desk.accepted()]
    assert {(t["device"], t["fault_kind"]) for t in sent} == {(SILENT, "device_offline")}
