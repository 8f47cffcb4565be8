"""End to end through the real CLI: telemetry published to Mosquitto (by a test client, then by
the real edge agent) lands in VictoriaMetrics; the collector is stopped with SIGTERM mid-stream
(it drains and exits 0), and what devices publish while it is down is delivered when it
returns (persistent MQTT session)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from agent import wire
from collector.store import Store
from tests.support.agent import AgentProcess, Sink, agent_config, wait_until
from tests.support.collector import Publisher, collector_yaml, telemetry
from tests.support.collector_proc import CollectorProcess
from tests.support.mosquitto import Broker
from tests.support.services import free_port
from tests.support.victoria import Victoria

DEVICES = ("gw-1", "gw-2", "gw-3")
T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)


def _publish_range(pub: Publisher, seqs: range) -> None:
    pub.many(
        [
            (
                f"fleet/v1/acme/{device}/telemetry",
                telemetry(device, seq, ts=T0 + timedelta(seconds=seq), cpu_pct=float(seq)),
            )
            for seq in seqs
            for device in DEVICES
        ]
    )


def test_samples_reach_victoria_and_survive_a_collector_restart(
    tmp_path: Path, broker: Broker, victoria: Victoria
) -> None:
    http_port = free_port()
    config = tmp_path / "collector.yaml"
    config.write_text(collector_yaml(tmp_path, broker, tsdb=victoria.url, http_port=http_port))
    collector = CollectorProcess(config, http_port, tmp_path / "collector.log")
    pub = Publisher(broker)
    try:
        collector.start().wait_subscribed()
        _publish_range(pub, range(0, 100))
        _publish_range(pub, range(90, 100))  # at-least-once repeats: dropped as duplicates
        stored = victoria.wait_for_samples('fleet_cpu_pct{tenant="acme"}', 300)
        assert {d: len(v) for d, v in stored.items()} == dict.fromkeys(DEVICES, 100)

        assert collector.stop() == 0, collector.log.read_text()
        _publish_range(pub, range(100, 250))  # while the collector is down
        collector.start().wait_subscribed()
        _publish_range(pub, range(250, 300))

        stored = victoria.wait_for_samples('fleet_cpu_pct{tenant="acme"}', 900)
        t0_ms = int(T0.timestamp() * 1000)
        for device in DEVICES:
            assert stored[device] == [(t0_ms + 1000 * s, float(s)) for s in range(300)], device
        assert collector.stop() == 0
    finally:
        collector.kill()
        pub.close()
    store = Store.open(f"sqlite:///{tmp_path / 'state.db'}")
    rows = {row.id: row for row in store.devices()}
    store.close()
    assert set(rows) == set(DEVICES)
    assert all(r.last_seq == 299 and r.gaps == 0 and r.tenant == "acme" for r in rows.values())
    log = collector.log.read_text()
    assert '"msg": "draining"' in log and '"msg": "stopped"' in log


def test_real_agent_reports_reach_victoria_across_a_collector_restart(
    tmp_path: Path, broker: Broker, victoria: Victoria
) -> None:
    """The real edge agent publishes; a second subscriber records what it sent (the truth);
    the collector is stopped with SIGTERM and restarted while the agent keeps reporting, and
    every telemetry report the agent published is in VictoriaMetrics, no sequence number lost."""
    http_port = free_port()
    config = tmp_path / "collector.yaml"
    config.write_text(collector_yaml(tmp_path, broker, tsdb=victoria.url, http_port=http_port))
    collector = CollectorProcess(config, http_port, tmp_path / "collector.log")
    truth = Sink(broker, client_id="truth").start()
    agent_cfg = agent_config(tmp_path, f"mqtt://127.0.0.1:{broker.port}", device="agent-gw-1")
    agent: AgentProcess | None = None
    try:
        collector.start().wait_subscribed()
        agent = AgentProcess.start(agent_cfg)
        wait_until(lambda: len(truth.of(wire.Telemetry, "agent-gw-1")) >= 5, what="reports")
        assert collector.stop() == 0
        seen = len(truth.of(wire.Telemetry, "agent-gw-1"))
        wait_until(  # the agent keeps reporting while the collector is away
            lambda: len(truth.of(wire.Telemetry, "agent-gw-1")) >= seen + 5, what="more"
        )
        collector.start().wait_subscribed()
        seen = len(truth.of(wire.Telemetry, "agent-gw-1"))
        wait_until(lambda: len(truth.of(wire.Telemetry, "agent-gw-1")) >= seen + 5, what="after")
        assert agent.stop() == 0
        sent = truth.of(wire.Telemetry, "agent-gw-1")
        expected = sorted({int(m.ts.timestamp() * 1000) for m in sent})
        match = 'fleet_exec_answer_value{device="agent-gw-1",tenant="t1"}'
        stored = victoria.wait_for_samples(match, len(expected)).get("agent-gw-1", [])
        assert [ts for ts, _ in stored] == expected
        assert {value for _, value in stored} == {42.0}
        assert collector.stop() == 0
    finally:
        if agent is not None and agent.proc.poll() is None:
            agent.kill()
        collector.kill()
        truth.stop()
    store = Store.open(f"sqlite:///{tmp_path / 'state.db'}")
    row = store.device("agent-gw-1")
    store.close()
    numbered = truth.unique("agent-gw-1")
    assert row is not None and row.gaps == 0
    assert row.last_seq == max(seq for _, _, seq in numbered)
    assert (row.model, row.firmware, row.tenant) == ("WR5120", "test-fw", "t1")  # from birth
