"""Identity and tenancy through the running service (real Mosquitto, real VictoriaMetrics): a
spoofed tenant topic is refused and changes nothing; an unknown device is listed, not judged; an
absurd seq jump is refused for that device alone; hostile labels cannot move a series to another
tenant or device; string metrics are kept as text, not as 0."""

from __future__ import annotations

import asyncio
from pathlib import Path

from agent import wire
from collector.store.tsdb import line
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
from tests.support.victoria import Victoria

HEADER = (
    "device,tenant,model,class,site,parent,criticality,customer,policy,"
    "warranty_start,warranty_months,interval_s\n"
)


def _config(tmp_path: Path, broker: Broker, extra: str = "", tsdb: str | None = None) -> str:
    inventory = tmp_path / "inventory.csv"
    inventory.write_text(
        HEADER
        + "".join(
            f"gw-{i},acme,WR5120,router,,,common,acme,shanghai-energy,2026-01-01,36,60\n"
            for i in range(1, 31)
        )
    )
    rules = f"rules:\n  inventory: {inventory}\n{extra}"
    return collector_yaml(tmp_path, broker, extra=rules, tsdb=tsdb)


async def test_a_spoofed_tenant_is_refused_and_applies_nothing(
    tmp_path: Path, broker: Broker
) -> None:
    cfg = make_config(tmp_path, _config(tmp_path, broker))
    pub = Publisher(broker)
    async with running(cfg) as service:
        assert service.rules is not None
        value = service.metrics.registry.get_sample_value
        await asyncio.to_thread(
            pub.publish, "fleet/v1/acme/gw-1/telemetry", telemetry("gw-1", 1, cpu_pct=5.0)
        )
        await eventually(lambda: "gw-1" in service.registry.devices)
        # the victim's id under another tenant: a failing disk and an offline state
        await asyncio.to_thread(
            pub.publish,
            "fleet/v1/evil/gw-1/telemetry",
            telemetry("gw-1", 2, disk_used_pct=99.0),
        )
        state = wire.encode(wire.State("gw-1", wire.DeviceState.OFFLINE, ago(0)))
        await asyncio.to_thread(pub.publish, "fleet/v1/evil/gw-1/state", state)
        await eventually(lambda: value("collector_rejects_total", {"reason": "tenant_mismatch"}))
        await eventually(
            lambda: value("collector_rejects_total", {"reason": "tenant_mismatch"}) == 2
        )
        dev = service.registry.devices["gw-1"]
        assert (dev.tenant, dev.state, dev.high) == ("acme", "online", 1)
        assert service.rules.engine.open_faults() == []
    pub.close()


async def test_unknown_devices_are_listed_not_judged_unless_their_tenant_adopts_them(
    tmp_path: Path, broker: Broker
) -> None:
    extra = "  adopt_tenants: [lab]\n"
    cfg = make_config(tmp_path, _config(tmp_path, broker, extra))
    pub = Publisher(broker)
    async with running(cfg) as service:
        assert service.rules is not None
        for tenant in ("acme", "lab"):
            topic = f"fleet/v1/{tenant}/stranger-{tenant}/telemetry"
            payload = telemetry(f"stranger-{tenant}", 1, disk_used_pct=99.0)
            await asyncio.to_thread(pub.publish, topic, payload)
        engine = service.rules.engine
        await eventually(lambda: [f.subject for f in engine.open_faults()] == ["stranger-lab"])
        await eventually(lambda: "stranger-acme" in service.registry.devices)
        stranger = service.registry.devices["stranger-acme"]
        assert (stranger.unassigned, stranger.state) == (True, "unassigned")
        assert engine.device("stranger-acme") is None  # not judged: no state, no fault
        assert service.registry.devices["stranger-lab"].state == "online"
    pub.close()


async def test_a_seq_jump_of_2_62_is_refused_for_that_device_alone(
    tmp_path: Path, broker: Broker
) -> None:
    cfg = make_config(tmp_path, _config(tmp_path, broker))
    pub = Publisher(broker)
    devices = [f"gw-{i}" for i in range(1, 31)]
    async with running(cfg) as service:
        first = [(f"fleet/v1/acme/{d}/telemetry", telemetry(d, 1)) for d in devices]
        await asyncio.to_thread(pub.many, first)
        await eventually(lambda: len(service.registry.devices) == 30)
        # one batch: gw-7 jumps by 2**62, the others report their next seq around it
        second = [
            (f"fleet/v1/acme/{d}/telemetry", telemetry(d, 2**62 if d == "gw-7" else 2))
            for d in devices
        ]
        await asyncio.to_thread(pub.many, second)
        value = service.metrics.registry.get_sample_value
        await eventually(lambda: value("collector_rejects_total", {"reason": "seq_jump"}) == 1)
        await eventually(
            lambda: all(service.registry.devices[d].high == 2 for d in devices if d != "gw-7")
        )
        assert service.registry.devices["gw-7"].high == 1
        await asyncio.to_thread(pub.publish, "fleet/v1/acme/gw-7/telemetry", telemetry("gw-7", 3))
        await eventually(lambda: service.registry.devices["gw-7"].high == 3)  # still heard
    pub.close()


def test_hostile_labels_are_escaped_and_cannot_overwrite_tenant_or_device() -> None:
    msg = wire.Telemetry(
        "gw-1",
        "b",
        1,
        ago(0),
        {"cpu_pct": 1.0},
        {"tenant": "evil", "device": "victim", "site": "a\\", "zone": "x\\,tenant=evil"},
    )
    text = line("fleet", "acme", msg)
    assert text is not None
    assert text.startswith(r"fleet,device=gw-1,tenant=acme,site=a\\,zone=x\\\,tenant\=evil ")


async def test_hostile_labels_land_under_the_right_tenant_and_device_in_victoria(
    tmp_path: Path, broker: Broker, victoria: Victoria
) -> None:
    cfg = make_config(tmp_path, _config(tmp_path, broker, tsdb=victoria.url))
    pub = Publisher(broker)
    labels = {"tenant": "evil", "device": "victim", "site": "a\\", "zone": "x\\,tenant=evil"}
    async with running(cfg):
        msg = wire.Telemetry("gw-1", "b", 1, ago(0), {"cpu_pct": 7.0, "fw": "v1.2 beta"}, labels)
        await asyncio.to_thread(pub.publish, "fleet/v1/acme/gw-1/telemetry", wire.encode(msg))
        await asyncio.to_thread(victoria.wait_for_samples, '{__name__=~"fleet_.*"}', 1)
        series = await asyncio.to_thread(victoria.export, '{__name__=~"fleet_.*"}')
    pub.close()
    by_name = {s["metric"]["__name__"]: s for s in series}
    assert sorted(by_name) == ["fleet_cpu_pct", "fleet_text_fw"]  # the string is kept as text
    assert by_name["fleet_text_fw"]["metric"]["value"] == "v1.2 beta"
    metric = by_name["fleet_cpu_pct"]["metric"]
    assert (metric["tenant"], metric["device"]) == ("acme", "gw-1")
    assert metric["site"] == "a\\"
    assert metric["zone"] == "x\\,tenant=evil"


def test_tickets_with_a_wrong_database_path_refuses_and_creates_nothing(tmp_path: Path) -> None:
    import subprocess
    import sys

    missing = tmp_path / "nope" / "collector.db"
    result = subprocess.run(
        [sys.executable, "-m", "collector", "tickets", "list", "--db", f"sqlite:///{missing}"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert "no database at" in result.stderr
    assert not missing.exists() and not missing.parent.exists()
