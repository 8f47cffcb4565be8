"""End to end: the agent as a real process against a real Mosquitto.

Reports arrive in sequence; a broker outage, a kill -9 and a full spool lose nothing they
should not, and what a full spool drops is reported.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

from agent import wire
from tests.support.agent import (
    REPO,
    AgentProcess,
    Sink,
    agent_config,
    spool_meta,
    spool_pending,
    wait_until,
)
from tests.support.mosquitto import Broker
from tests.support.services import free_port


def covered(sink: Sink, device: str, upto: int) -> bool:
    return {s for _, _, s in sink.unique(device)} >= set(range(1, upto + 1))


def test_reports_arrive_in_sequence_with_birth_and_state(
    tmp_path: Path, broker: Broker, sink: Sink, agents: list[AgentProcess]
) -> None:
    agent = AgentProcess.start(agent_config(tmp_path, broker.url))
    agents.append(agent)
    wait_until(lambda: len(sink.of(wire.Telemetry, "gw-1")) >= 5, what="5 reports")
    assert agent.stop() == 0

    births = sink.of(wire.Birth, "gw-1")
    assert births and births[0].model == "WR5120" and births[0].serial == "SN-gw-1"
    assert set(births[0].probes) == {"system", "exec_answer"}
    reports = sink.of(wire.Telemetry, "gw-1")
    seqs = [r.seq for r in reports]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    assert seqs[0] == 1
    assert len({r.boot for r in reports}) == 1
    last = reports[-1].metrics
    assert last["exec_answer_value"] == 42 and last["exec_answer_exit"] == 0
    assert {"uptime_s", "mem_used_pct", "load1", "spool_pending", "spool_dropped"} <= set(last)
    assert sink.rejects() == []
    states = [s.state for s in sink.of(wire.State, "gw-1")]
    assert states[0] is wire.DeviceState.ONLINE and states[-1] is wire.DeviceState.OFFLINE


def test_broker_outage_loses_and_duplicates_nothing(
    tmp_path: Path, broker: Broker, sink: Sink, agents: list[AgentProcess]
) -> None:
    config = agent_config(tmp_path, broker.url, drain_rate=20)
    agent = AgentProcess.start(config)
    agents.append(agent)
    wait_until(lambda: len(sink.seqs("gw-1")) >= 3, what="first reports")
    broker.stop()
    spool = tmp_path / "gw-1" / "spool.db"
    # Reports keep being made and spooled while the broker is away.
    wait_until(lambda: spool_pending(spool) >= 10, what="10 reports spooled during the outage")
    outage_next = int(spool_meta(spool)["next_seq"])
    broker.start()
    wait_until(lambda: covered(sink, "gw-1", outage_next + 5), what="backlog and new reports")
    agent.stop()
    assert "lost" in agent.text()  # the agent saw the outage

    seqs = sink.seqs("gw-1")
    unique = sorted({s for _, _, s in sink.unique("gw-1")})
    assert unique == list(range(1, max(unique) + 1)), "a sequence number is missing"
    assert len({boot for _, boot, _ in sink.unique("gw-1")}) == 1
    # After de-duplication on (device, boot, seq) every report is there exactly once.
    assert len(sink.unique("gw-1")) == len(set(seqs)) == max(unique)


def test_kill_9_mid_drain_then_restart_delivers_the_spool(
    tmp_path: Path, broker: Broker, sink: Sink, agents: list[AgentProcess]
) -> None:
    config = agent_config(tmp_path, broker.url, drain_rate=4)
    spool = tmp_path / "gw-1" / "spool.db"
    first = AgentProcess.start(config, "first")
    agents.append(first)
    wait_until(lambda: len(sink.seqs("gw-1")) >= 2, what="first reports")
    broker.stop()
    wait_until(lambda: spool_pending(spool) >= 15, what="a backlog")
    broker.start()
    # Kill it while the backlog is draining (4 per second): some of it out, some not.
    backlog_start = min(s for s in range(1, 10_000) if s not in set(sink.seqs("gw-1")))
    wait_until(lambda: backlog_start in sink.seqs("gw-1"), what="the drain to start")
    first.proc.send_signal(signal.SIGKILL)
    first.proc.wait(10)
    left = spool_pending(spool)
    assert left > 0, "the kill came too late to test anything"
    meta = spool_meta(spool)
    produced = int(meta["next_seq"]) - 1

    second = AgentProcess.start(config, "second")
    agents.append(second)
    wait_until(lambda: covered(sink, "gw-1", produced + 3), timeout=30, what="spool replay")
    second.stop()

    boots = {boot for _, boot, _ in sink.unique("gw-1")}
    assert boots == {meta["boot"]}, "the restart must continue the sequence epoch"
    unique = sorted({s for _, _, s in sink.unique("gw-1")})
    assert unique == list(range(1, max(unique) + 1))
    assert f"next seq {produced + 1}" in second.text()


def test_full_spool_drops_oldest_and_reports_the_loss(
    tmp_path: Path, broker: Broker, sink: Sink, agents: list[AgentProcess]
) -> None:
    # The sink's session is kept by the broker while it is down, so it misses nothing later.
    broker.stop()
    probes = '[[probes.exec]]\nname = "one"\ncommand = ["echo", "1"]\n'
    config = agent_config(tmp_path, broker.url, spool_size="2KiB", probes=probes)
    spool = tmp_path / "gw-1" / "spool.db"
    agent = AgentProcess.start(config)
    agents.append(agent)

    def dropped() -> int:
        return int(spool_meta(spool).get("dropped_total", 0))

    wait_until(lambda: dropped() >= 10, what="the spool to overflow")
    broker.start()
    wait_until(
        lambda: any(e.event == "spool_dropped" for e in sink.of(wire.Event, "gw-1")),
        what="the spool_dropped event",
    )
    produced = int(spool_meta(spool)["next_seq"]) - 1
    wait_until(lambda: max(sink.seqs("gw-1"), default=0) >= produced + 2, what="the backlog")

    def reported() -> int:
        return max(int(r.metrics["spool_dropped"]) for r in sink.of(wire.Telemetry, "gw-1"))

    # A report carries the drops counted before it was made, so wait for one made after the
    # last drop (on a loaded machine the backlog may still push a few out after the event).
    wait_until(lambda: reported() == dropped(), what="a report carrying every drop")
    agent.stop()

    received = {s for _, _, s in sink.unique("gw-1")}
    assert 1 not in received, "the oldest reports should have been dropped"
    missing = set(range(1, max(received) + 1)) - received
    events = [e for e in sink.of(wire.Event, "gw-1") if e.event == "spool_dropped"]
    assert events and all(e.data["count"] > 0 for e in events)
    counter = reported()
    # Every report that never arrived is one the spool counted (and reported) as dropped.
    assert counter == len(missing) >= 10
    # The oldest went first; entries already published when room was needed were spared
    # (they may yet be delivered), so a drop always means a report that never arrives.
    assert set(range(1, 6)) <= missing


def test_clean_stop_and_dying_gasp(
    tmp_path: Path, broker: Broker, sink: Sink, agents: list[AgentProcess]
) -> None:
    agent = AgentProcess.start(agent_config(tmp_path, broker.url))
    agents.append(agent)
    wait_until(lambda: len(sink.seqs("gw-1")) >= 2)
    agent.send(signal.SIGUSR1)
    assert agent.proc.wait(15) == 0
    gasps = [e for e in sink.of(wire.Event, "gw-1") if e.event == "dying_gasp"]
    assert len(gasps) == 1 and gasps[0].data == {"reason": "signal"}
    assert gasps[0].seq > max(sink.seqs("gw-1")[:-1])  # it takes the next sequence number
    # The retained state a late subscriber sees is the dying gasp, not the will's "offline"
    # (a will the broker sent when the agent's socket closed is through before the marker).
    sink.sync()
    late = Sink(broker, client_id="late").start()
    wait_until(lambda: late.of(wire.State, "gw-1"), what="the retained state")
    late.stop()
    assert late.of(wire.State, "gw-1")[-1].state is wire.DeviceState.DYING_GASP


def test_dying_gasp_command_signals_the_agent_or_publishes_itself(
    tmp_path: Path, broker: Broker, sink: Sink, agents: list[AgentProcess]
) -> None:
    config = agent_config(tmp_path, broker.url)
    agent = AgentProcess.start(config)
    agents.append(agent)
    wait_until(lambda: len(sink.seqs("gw-1")) >= 2)

    def gasp() -> subprocess.CompletedProcess[str]:
        argv = [sys.executable, "-m", "agent.cli", "dying-gasp", "--config", str(config)]
        return subprocess.run(
            argv, cwd=REPO, capture_output=True, text=True, timeout=60, check=False
        )

    done = gasp()
    assert done.returncode == 0 and f"pid {agent.proc.pid}" in done.stdout
    assert agent.proc.wait(15) == 0
    # No agent runs now: the command connects and publishes the gasp itself.
    done = gasp()
    assert done.returncode == 0 and "dying gasp published" in done.stdout, done.stderr
    wait_until(lambda: len(gasps(sink)) == 2, what="two dying gasps")
    assert [g.data["reason"] for g in gasps(sink)] == ["signal", "command"]
    unique = sorted({s for _, _, s in sink.unique("gw-1")})
    assert unique == list(range(1, max(unique) + 1))  # the one-shot continued the epoch
    assert sink.of(wire.State, "gw-1")[-1].state is wire.DeviceState.DYING_GASP


def gasps(sink: Sink) -> list[wire.Event]:
    return [e for e in sink.of(wire.Event, "gw-1") if e.event == "dying_gasp"]


def test_fails_over_to_the_next_broker_with_mqtt5_and_keeps_the_password_quiet(
    tmp_path: Path, broker: Broker, sink: Sink, agents: list[AgentProcess]
) -> None:
    dead = f"mqtt://127.0.0.1:{free_port()}"
    config = agent_config(tmp_path, broker.url)
    text = config.read_text().replace(
        f'urls = ["{broker.url}"]', f'urls = ["{dead}", "{broker.url}"]'
    )
    text = text.replace(
        "[broker]\n", '[broker]\nprotocol = "5"\nusername = "gw-1"\npassword = "pa55-w0rd-xyz"\n'
    )
    config.write_text(text)
    agent = AgentProcess.start(config)
    agents.append(agent)
    wait_until(lambda: len(sink.of(wire.Telemetry, "gw-1")) >= 2, what="reports via the 2nd URL")
    assert agent.stop() == 0
    log = agent.text()
    assert f"cannot connect: {dead}" in log and f"connected to {broker.url}" in log
    assert "pa55-w0rd-xyz" not in log


def test_a_second_agent_on_the_same_spool_is_refused(
    tmp_path: Path, broker: Broker, sink: Sink, agents: list[AgentProcess]
) -> None:
    config = agent_config(tmp_path, broker.url)
    first = AgentProcess.start(config, "first")
    agents.append(first)
    wait_until(lambda: len(sink.seqs("gw-1")) >= 1)
    second = AgentProcess.start(config, "second")
    agents.append(second)
    assert second.proc.wait(30) == 2
    assert f"another agent (pid {first.proc.pid})" in second.text()
    assert first.proc.poll() is None
