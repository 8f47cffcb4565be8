"""The rules engine inside the service: faults from telemetry and real traps are counted,
persisted as open faults, and survive a restart with their onset (the clock keeps running)."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

from collector.store import Store
from tests.support.collector import (
    Publisher,
    ago,
    collector_yaml,
    eventually,
    make_config,
    running,
    telemetry,
)
from tests.support.mosquitto import Broker
from tests.support.services import free_port
from tests.support.snmpd import snmptrap

HEADER = (
    "device,tenant,model,class,site,parent,criticality,customer,policy,"
    "warranty_start,warranty_months,interval_s\n"
)
T = "fleet/v1/acme/gw-1/telemetry"


def _config(tmp_path: Path, broker: Broker, trap_port: int) -> str:
    inventory = tmp_path / "inventory.csv"
    inventory.write_text(
        HEADER + "gw-1,acme,WR5120,router,pump-3,,common,acme,shanghai-energy,2026-01-01,36,60\n"
    )
    extra = (
        f"rules:\n  inventory: {inventory}\n  state_flush_s: 0.2\n"
        f"snmp:\n  traps:\n    listen: 127.0.0.1:{trap_port}\n    communities: [public]\n"
        "    sources: {127.0.0.1: gw-1}\n"
    )
    return collector_yaml(tmp_path, broker, extra=extra)


async def test_faults_are_counted_persisted_and_kept_across_a_restart(
    tmp_path: Path, broker: Broker
) -> None:
    trap_port = free_port(socket.SOCK_DGRAM)
    cfg = make_config(tmp_path, _config(tmp_path, broker, trap_port))
    pub = Publisher(broker)
    async with running(cfg) as service:
        assert service.rules is not None
        await asyncio.to_thread(pub.publish, T, telemetry("gw-1", 1, disk_used_pct=97.0))
        await asyncio.to_thread(
            snmptrap,
            trap_port,
            ["-v2c", "-c", "public"],
            "1.3.6.1.6.3.1.1.5.3",
            "1.3.6.1.2.1.2.2.1.1.4",
            "i",
            "4",
        )
        value = service.metrics.registry.get_sample_value
        await eventually(lambda: value("collector_fault_events_total", {"kind": "disk_full"}))
        await eventually(lambda: value("collector_fault_events_total", {"kind": "interface_down"}))
        before = {f.kind: f for f in service.rules.engine.open_faults()}
        assert set(before) == {"disk_full", "interface_down"}
        assert before["disk_full"].level == "C"  # shanghai-energy: degraded -> C
        assert before["interface_down"].level == "B"  # at_risk -> B
        assert before["interface_down"].detail == {"ifIndex": "4"}

    store = Store.open(cfg.store.url)
    stored = {f.kind: f for f in store.open_faults()}
    store.close()
    assert set(stored) == {"disk_full", "interface_down"}
    assert stored["disk_full"].opened_at == before["disk_full"].onset.timestamp()

    async with running(cfg) as service:  # restarted: the engine continues from its state
        assert service.rules is not None
        after = {f.kind: f for f in service.rules.engine.open_faults()}
        assert after["disk_full"].onset == before["disk_full"].onset  # same clock
        assert service.metrics.registry.get_sample_value("collector_open_faults") == 2
        await asyncio.to_thread(pub.publish, T, telemetry("gw-1", 2, disk_used_pct=50.0))
        await eventually(lambda: len(service.rules.engine.open_faults()) == 1)  # type: ignore[union-attr]
    pub.close()
    store = Store.open(cfg.store.url)
    assert [f.kind for f in store.open_faults()] == ["interface_down"]
    assert store.fault_event_count() == 3  # two opened, one cleared
    device = store.device("gw-1")
    store.close()
    assert device is not None and device.unassigned is False


async def test_devices_not_in_the_inventory_are_registered_unassigned(
    tmp_path: Path, broker: Broker
) -> None:
    cfg = make_config(tmp_path, _config(tmp_path, broker, free_port(socket.SOCK_DGRAM)))
    pub = Publisher(broker)
    async with running(cfg) as service:
        topic = "fleet/v1/acme/stranger-1/telemetry"
        await asyncio.to_thread(pub.publish, topic, telemetry("stranger-1", 1, ts=ago(1)))
        await eventually(lambda: "stranger-1" in service.registry.devices)
        assert service.registry.devices["stranger-1"].unassigned is True
    pub.close()
