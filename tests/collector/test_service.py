"""The assembled service in-process: TSDB outage, MQTT 3.1.1 sessions, SNMP into the pipeline."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from collector.config.collector import parse_config
from collector.config.errors import ConfigError
from collector.service import app
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
from tests.support.snmpd import Snmpd
from tests.support.victoria import Victoria

T = "fleet/v1/acme/{}/telemetry"


async def test_tsdb_down_fills_the_disk_buffer_then_stops_acknowledging(
    tmp_path: Path, broker: Broker
) -> None:
    victoria = Victoria(tmp_path / "victoria")  # its port is chosen, not yet listening
    text = collector_yaml(tmp_path, broker).replace(
        "intake:",
        f"tsdb:\n  url: {victoria.url}\n  max_buffer_lines: 5\n  retry_interval_ms: 100\nintake:",
    )
    cfg = make_config(tmp_path, text)
    pub = Publisher(broker)
    try:
        async with running(cfg) as service:
            value = service.metrics.registry.get_sample_value
            first = [(T.format("d1"), telemetry("d1", s, ts=ago(60 - s))) for s in range(5)]
            await asyncio.to_thread(pub.many, first)
            await eventually(lambda: value("collector_tsdb_backlog_lines") == 5)
            await eventually(lambda: value("collector_mqtt_unacked") == 0)  # on disk: acked
            assert "tsdb" in service.health()[1]["degraded"]  # the database is down
            rest = [(T.format("d1"), telemetry("d1", s, ts=ago(60 - s))) for s in range(5, 20)]
            await asyncio.to_thread(pub.many, rest)
            # the buffer is full: the batch is held, not acknowledged (the broker keeps it)
            await eventually(lambda: "tsdb-buffer" in service.health()[1].get("degraded", {}))
            await eventually(lambda: value("collector_mqtt_unacked") == 15)
            assert value("collector_tsdb_backlog_lines") == 5
            assert service.registry.devices["d1"].high == 19  # evaluation kept up
            await asyncio.to_thread(victoria.start)
            await eventually(lambda: value("collector_mqtt_unacked") == 0, seconds=30)
            await eventually(lambda: value("collector_tsdb_backlog_lines") == 0, seconds=30)
            assert "degraded" not in service.health()[1]
            assert value("collector_tsdb_lines_total", {"outcome": "written"}) == 20
        stored = await asyncio.to_thread(
            victoria.wait_for_samples, 'fleet_cpu_pct{device="d1"}', 20
        )
        assert [v for _, v in stored["d1"]] == [float(s) for s in range(20)]
    finally:
        pub.close()
        victoria.stop()


async def test_mqtt_311_persistent_session_delivers_what_was_missed(
    tmp_path: Path, broker: Broker
) -> None:
    text = collector_yaml(tmp_path, broker).replace("mqtt:\n", "mqtt:\n  protocol: '3.1.1'\n")
    cfg = make_config(tmp_path, text)
    assert cfg.mqtt.protocol == "3.1.1"
    pub = Publisher(broker)
    async with running(cfg) as service:
        await asyncio.to_thread(pub.publish, T.format("d1"), telemetry("d1", 0))
        await eventually(lambda: "d1" in service.registry.devices)
    await asyncio.to_thread(pub.many, [(T.format("d1"), telemetry("d1", s)) for s in range(1, 6)])
    async with running(cfg) as service:
        await eventually(lambda: service.registry.devices["d1"].high == 5)
        assert service.recent is not None
        assert [m["cpu_pct"] for _ts, m in service.recent.latest("d1")] == [1, 2, 3, 4, 5]
    pub.close()
    store = Store.open(cfg.store.url)
    assert store.device("d1") is not None and store.device("d1").last_seq == 5  # type: ignore[union-attr]
    store.close()


async def test_polled_snmp_devices_flow_through_the_pipeline(
    tmp_path: Path, broker: Broker
) -> None:
    snmpd = Snmpd(tmp_path / "snmpd").start()
    try:
        extra = (
            "snmp:\n  interval_s: 0.5\n  timeout_s: 0.5\n  retries: 0\n  devices:\n"
            f"    - {{device: r1, tenant: acme, host: 127.0.0.1, port: {snmpd.port},"
            " profile: router}\n"
            f"    - {{device: gone, tenant: acme, host: 127.0.0.1, port: {free_port()},"
            " profile: system}\n"
        )
        cfg = make_config(tmp_path, collector_yaml(tmp_path, broker, extra=extra))
        async with running(cfg) as service:
            await eventually(lambda: len(service.recent.latest("r1")) >= 2)  # type: ignore[union-attr]
            value = service.metrics.registry.get_sample_value
            await eventually(lambda: value("collector_snmp_polls_total", {"outcome": "timeout"}))
            assert service.registry.devices["r1"].source == "snmp"
            assert "gone" not in service.registry.devices  # absent, not an error
            assert service.intake.connected
    finally:
        snmpd.stop()


def test_an_unknown_snmp_profile_is_rejected_at_start(tmp_path: Path) -> None:
    text = "snmp:\n  devices:\n    - {device: r1, host: 127.0.0.1, profile: nope}\n"
    cfg = parse_config(text, tmp_path / "c.yaml")  # the profiles are files: read at start
    with pytest.raises(ConfigError) as raised:
        app.snmp_profiles(cfg)
    assert raised.value.source == str(tmp_path / "c.yaml")
    assert raised.value.key == "snmp.devices: r1"
    assert raised.value.problem.startswith("unknown profile 'nope' (in ")
    assert "router" in raised.value.problem  # the profiles it knows


async def test_service_keeps_its_registry_in_postgresql(
    tmp_path: Path, broker: Broker, pg_url: str
) -> None:
    cfg = make_config(tmp_path, collector_yaml(tmp_path, broker, store_url=pg_url))
    pub = Publisher(broker)
    async with running(cfg) as service:
        await asyncio.to_thread(
            pub.many, [(T.format("pg-1"), telemetry("pg-1", s, boot="e1")) for s in (0, 1, 3)]
        )
        await eventually(lambda: "pg-1" in service.registry.devices)
        await eventually(lambda: service.registry.devices["pg-1"].high == 3)
    pub.close()
    store = Store.open(pg_url)
    row = store.device("pg-1")
    store.close()
    assert row is not None and (row.boot, row.last_seq, row.gaps) == ("e1", 3, 1)


async def test_reconnects_after_the_broker_restarts(tmp_path: Path, broker: Broker) -> None:
    text = collector_yaml(tmp_path, broker).replace("mqtt:\n", "mqtt:\n  reconnect_max_s: 0.5\n")
    cfg = make_config(tmp_path, text)
    async with running(cfg) as service:
        pub = Publisher(broker)
        await asyncio.to_thread(pub.publish, T.format("d1"), telemetry("d1", 0))
        await eventually(lambda: "d1" in service.registry.devices)
        pub.close()
        await asyncio.to_thread(broker.stop)
        await eventually(lambda: not service.intake.connected)
        await asyncio.to_thread(broker.start)
        await eventually(lambda: service.intake.connected, seconds=15)
        pub = Publisher(broker)
        await asyncio.to_thread(pub.publish, T.format("d1"), telemetry("d1", 1))
        await eventually(lambda: service.registry.devices["d1"].high == 1)
        pub.close()
        value = service.metrics.registry.get_sample_value
        assert (value("collector_mqtt_connects_total", {"result": "ok"}) or 0) >= 2


async def test_tsdb_writes_are_retried_until_the_database_is_back(
    tmp_path: Path, broker: Broker
) -> None:
    victoria = Victoria(tmp_path / "victoria")  # its port is chosen, not yet listening
    text = collector_yaml(tmp_path, broker, tsdb=victoria.url).replace(
        "  flush_interval_ms: 100\n",
        "  flush_interval_ms: 100\n  max_retries: 20\n  retry_interval_ms: 100\n",
    )
    cfg = make_config(tmp_path, text)
    pub = Publisher(broker)
    try:
        async with running(cfg) as service:
            await asyncio.to_thread(
                pub.many, [(T.format("d1"), telemetry("d1", s, ts=ago(60 - s))) for s in range(10)]
            )
            value = service.metrics.registry.get_sample_value
            await eventually(
                lambda: value("collector_messages_total", {"outcome": "accepted"}) == 10
            )
            # on disk (the next intake commit) and held while the database is down
            await eventually(lambda: value("collector_tsdb_backlog_lines") == 10)
            await asyncio.to_thread(victoria.start)
            await eventually(lambda: value("collector_tsdb_backlog_lines") == 0, seconds=30)
            assert value("collector_tsdb_lines_total", {"outcome": "written"}) == 10
        stored = await asyncio.to_thread(
            victoria.wait_for_samples, 'fleet_cpu_pct{device="d1"}', 10
        )
        assert [v for _, v in stored["d1"]] == [float(s) for s in range(10)]
    finally:
        pub.close()
        victoria.stop()
