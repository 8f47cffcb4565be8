"""SNMP polling against the real net-snmp snmpd (v2c and v3 authPriv), real traps via snmptrap."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agent import wire
from collector.config.snmp import SnmpConfig, SnmpTarget, SnmpV3User, TrapConfig
from collector.intake.envelope import Envelope
from collector.intake.snmp_poll import Poller
from collector.intake.snmp_profiles import load_profiles
from collector.intake.snmp_traps import TrapNotice, TrapReceiver
from collector.metrics import Metrics
from collector.preset_paths import default_rules_dir
from tests.support.collector import eventually
from tests.support.services import free_port
from tests.support.snmpd import TRAP_ENGINE_ID, V3_AUTH, V3_PRIV, V3_USER, Snmpd, snmptrap

V3 = SnmpV3User(user=V3_USER, auth_key=V3_AUTH, priv_key=V3_PRIV)


@pytest.fixture(scope="module")
def snmpd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Snmpd]:
    agent = Snmpd(tmp_path_factory.mktemp("snmpd")).start()
    yield agent
    agent.stop()


def _dead_port() -> int:
    return free_port(socket.SOCK_DGRAM)  # nothing listens: requests go unanswered


def _target(device: str, port: int, profile: str = "router", **kw: Any) -> SnmpTarget:
    return SnmpTarget(
        device=device, tenant="acme", host="127.0.0.1", port=port, profile=profile, **kw
    )


def _poller(
    targets: tuple[SnmpTarget, ...], sink: list[Envelope], timeout_s: float = 10.0, **kw: float
) -> Poller:
    """A live snmpd answers well inside the default timeout however busy the machine is; a
    short timeout is only for targets that must time out (no answer is ever too fast)."""
    cfg = SnmpConfig(devices=targets, timeout_s=timeout_s, retries=0, interval_s=60, **kw)  # type: ignore[arg-type]
    return Poller(cfg, load_profiles(default_rules_dir() / "snmp"), sink.extend, Metrics())


@pytest.mark.parametrize("version", ["2c", "3"])
async def test_router_profile_maps_to_canonical_metrics(snmpd: Snmpd, version: str) -> None:
    target = SnmpTarget(
        device="r1",
        tenant="acme",
        host="127.0.0.1",
        port=snmpd.port,
        version=version,
        v3=V3 if version == "3" else None,
    )
    poller = _poller((target,), [])
    result = await poller.poll(target)
    poller.engine.close_dispatcher()
    assert result.outcome == "ok", result.detail
    metrics = result.metrics
    assert metrics is not None
    assert isinstance(metrics["uptime_s"], float) and metrics["uptime_s"] >= 0
    assert 0 <= float(metrics["mem_used_pct"]) <= 100
    assert isinstance(metrics["load1"], float)
    assert metrics["if_lo_up"] is True  # the loopback interface of this machine
    assert isinstance(metrics["if_lo_rx_bytes"], float)
    assert all(wire.valid_name(name) for name in metrics)


async def test_wrong_v3_key_and_unreachable_device_are_absent_not_errors(snmpd: Snmpd) -> None:
    bad = SnmpV3User(user=V3_USER, auth_key="wrong-auth-key", priv_key=V3_PRIV)
    targets = (
        _target("gone", _dead_port()),
        _target("badkey", snmpd.port, "system", version="3", v3=bad),
        _target("ok", snmpd.port, "system"),
    )
    sink: list[Envelope] = []
    failing = _poller(targets[:2], sink, timeout_s=0.3)
    poller = _poller(targets[2:], sink)
    results = [await failing.poll(t) for t in targets[:2]] + [await poller.poll(targets[2])]
    failing.engine.close_dispatcher()
    poller.engine.close_dispatcher()
    assert [r.outcome for r in results[:1]] == ["timeout"]
    assert results[1].metrics is None and results[1].outcome in ("timeout", "error")
    assert results[2].outcome == "ok"
    envelopes = [poller.to_envelope(r, 1_700_000_000.0) for r in results]
    assert envelopes[0] is None and envelopes[1] is None  # absence: no sample at all
    assert envelopes[2] is not None and envelopes[2].msg.metrics["uptime_s"] >= 0
    value = failing.metrics.registry.get_sample_value
    assert value("collector_snmp_polls_total", {"outcome": "timeout"}) >= 1
    assert value("collector_snmp_polls_total", {"outcome": "ok"}) is None
    ok = poller.metrics.registry.get_sample_value("collector_snmp_polls_total", {"outcome": "ok"})
    assert ok == 1


async def test_a_dead_device_does_not_delay_the_others(snmpd: Snmpd) -> None:
    dead = _target("dead", _dead_port())
    alive = tuple(_target(f"r{i}", snmpd.port, "system") for i in range(3))
    sink: list[Envelope] = []
    poller = _poller((dead, *alive), sink, concurrency=2)
    stop = asyncio.Event()
    task = asyncio.create_task(poller.run(stop))
    await eventually(lambda: len(sink) >= len(alive))
    # every live device was polled (through the one free slot) while the dead one still waits
    dead_polls = poller.metrics.registry.get_sample_value(
        "collector_snmp_polls_total", {"outcome": "timeout"}
    )
    stop.set()
    task.cancel()  # the dead device's poll would hold its slot for the whole 10 s timeout
    with contextlib.suppress(asyncio.CancelledError):
        await task
    assert {e.msg.device for e in sink} == {"r0", "r1", "r2"}
    assert dead_polls is None


def _receiver(port: int, sink: list[Envelope], targets: tuple[SnmpTarget, ...]) -> TrapReceiver:
    cfg = TrapConfig(
        listen=f"127.0.0.1:{port}",
        communities=("trapsecret",),
        v3_users=(
            SnmpV3User(user=V3_USER, auth_key=V3_AUTH, priv_key=V3_PRIV, engine_id=TRAP_ENGINE_ID),
        ),
        enterprise=(("1.3.6.1.4.1.99999.0.1", "dyingGasp"),),
    )
    return TrapReceiver(cfg, targets, sink.extend, Metrics())


async def test_real_traps_v2c_and_v3_become_inputs(tmp_path: Path) -> None:
    port = free_port(socket.SOCK_DGRAM)
    sink: list[Envelope] = []
    target = _target("r1", 161)
    receiver = _receiver(port, sink, (target,))
    stop = asyncio.Event()
    task = asyncio.create_task(receiver.run(stop))
    await receiver.listening.wait()  # the port is bound: no trap can be sent too early
    v2c = ["-v2c", "-c", "trapsecret"]
    v3 = ["-v3", "-e", TRAP_ENGINE_ID, "-u", V3_USER, "-l", "authPriv"]
    v3 += ["-a", "SHA", "-A", V3_AUTH, "-x", "AES", "-X", V3_PRIV]
    if_index = ("1.3.6.1.2.1.2.2.1.1.2", "i", "2")
    await asyncio.to_thread(snmptrap, port, v2c, "1.3.6.1.6.3.1.1.5.3", *if_index)
    await asyncio.to_thread(snmptrap, port, v3, "1.3.6.1.6.3.1.1.5.1")
    await asyncio.to_thread(snmptrap, port, v2c, "1.3.6.1.4.1.99999.0.1")
    await asyncio.to_thread(snmptrap, port, ["-v2c", "-c", "wrong"], "1.3.6.1.6.3.1.1.5.4")
    await asyncio.to_thread(snmptrap, port, v2c, "1.3.6.1.4.1.1.2.3")  # not configured
    value = receiver.metrics.registry.get_sample_value
    await eventually(
        lambda: len(sink) == 3 and value("collector_snmp_traps_total", {"outcome": "ignored"})
    )
    await eventually(lambda: value("collector_snmp_traps_total", {"outcome": "bad_auth"}))
    stop.set()
    await task
    notices = [e.msg for e in sink]
    assert all(isinstance(n, TrapNotice) and n.device == "r1" for n in notices)
    assert [n.name for n in notices] == ["linkDown", "coldStart", "dyingGasp"]
    assert notices[0].varbinds["1.3.6.1.2.1.2.2.1.1.2"] == "2"
    assert notices[0].varbinds["ifIndex"] == "2"  # by name, for rules keyed on it
    assert value("collector_snmp_traps_total", {"outcome": "accepted"}) == 3
    assert value("collector_snmp_traps_total", {"outcome": "bad_auth"}) == 1


async def test_traps_from_unknown_sources_are_counted_and_dropped() -> None:
    port = free_port(socket.SOCK_DGRAM)
    sink: list[Envelope] = []
    receiver = _receiver(port, sink, ())  # no device at 127.0.0.1
    stop = asyncio.Event()
    task = asyncio.create_task(receiver.run(stop))
    await receiver.listening.wait()  # the port is bound: no trap can be sent too early
    await asyncio.to_thread(snmptrap, port, ["-v2c", "-c", "trapsecret"], "1.3.6.1.6.3.1.1.5.3")
    value = receiver.metrics.registry.get_sample_value
    await eventually(lambda: value("collector_snmp_traps_total", {"outcome": "unknown_source"}))
    stop.set()
    await task
    assert sink == []
