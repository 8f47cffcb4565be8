"""Downlink commands through a real Mosquitto: signed commands are obeyed within the configured
bounds; malformed, unknown, unsigned, forged, expired, retained and replayed commands get an
error reply naming why. Another device's topic is ignored."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from agent import wire
from agent.command_auth import make_command, signature
from tests.support.agent import REPO, AgentProcess, Sink, agent_config, wait_until
from tests.support.mosquitto import Broker

CMD = "fleet/v1/t1/gw-1/cmd"
KEY = "k3y-for-gw-1-0123456789abcdef"


def commands_table(tmp: Path, extra: str = "", key: str | None = KEY) -> str:
    if key is None:
        return f"[commands]\n{extra}\n"
    key_file = tmp / "command.key"
    key_file.write_text(key + "\n")
    return f'[commands]\nkey_file = "{key_file}"\n{extra}\n'


def signed(
    id_: str,
    cmd: str,
    *,
    key: str = KEY,
    topic: str = CMD,
    ttl: float = 300,
    now: datetime | None = None,
    **args: Any,
) -> str:
    body = make_command(cmd, dict(args), now or datetime.now(UTC), ttl, id_)
    body["sig"] = signature(body, topic, key.encode())
    return json.dumps(body)


def unsigned(id_: str, cmd: str, **args: Any) -> str:
    return json.dumps(make_command(cmd, dict(args), datetime.now(UTC), 300, id_))


def replies(sink: Sink) -> dict[str, wire.Reply]:
    return {r.id: r for r in sink.of(wire.Reply, "gw-1")}


def reason(reply: wire.Reply) -> tuple[bool, str]:
    return reply.ok, (reply.error or "").split(":")[0]


def test_signed_commands_and_error_replies(
    tmp_path: Path, broker: Broker, sink: Sink, agents: list[AgentProcess]
) -> None:
    allowed = f'ping_targets = ["127.0.0.1:{broker.port}"]\nmin_interval_s = 1'
    extra = commands_table(tmp_path, allowed)
    agent = AgentProcess.start(agent_config(tmp_path, broker.url, interval=1, extra=extra))
    agents.append(agent)
    wait_until(lambda: sink.of(wire.Birth, "gw-1"), what="birth")

    sink.publish("fleet/v1/t1/gw-other/cmd", signed("not-mine", "ping"))
    sent = {
        "p1": signed("p1", "ping"),
        "garbage": b"\xff{not json",
        "m1": json.dumps({"v": 1, "id": "m1", "args": {}}),
        "v2": json.dumps({"v": 2, "id": "v2", "cmd": "ping"}),
        "n1": json.dumps({"v": 1, "id": "n1", "cmd": "Reboot Now"}),
        "u1": signed("u1", "reboot"),
        "i1": signed("i1", "set_interval", interval_s="fast"),
        "i2": signed("i2", "set_interval", interval_s=0.05),  # below min_interval_s
        "i3": signed("i3", "set_interval", interval_s=2),
        "r1": signed("r1", "run_probe", probe="system"),
        "r2": signed("r2", "run_probe", probe="nope"),
        "t1": signed("t1", "ping", target=f"127.0.0.1:{broker.port}", count=2),
        "t2": signed("t2", "ping", target="127.0.0.1:http"),
        "t3": signed("t3", "ping", target="127.0.0.1", count=99),
        "t4": signed("t4", "ping", target="127.0.0.1:22"),  # not on the allow-list
        "t5": signed("t5", "ping", target="192.168.1.1"),
    }
    for payload in sent.values():
        sink.publish(CMD, payload)

    expected = set(sent) - {"garbage"} | {"invalid"}
    wait_until(lambda: expected <= set(replies(sink)), what=f"replies {expected}")
    agent.stop()
    got = replies(sink)

    assert "not-mine" not in got  # only the device's own topic is acted on
    assert got["p1"].ok and got["p1"].result is not None and got["p1"].result["pong"] is True
    errors = {key: reason(got[key]) for key in got}
    assert errors["invalid"] == (False, "bad_json")
    assert errors["m1"] == (False, "missing_field")
    assert errors["v2"] == (False, "bad_version")
    assert errors["n1"] == (False, "bad_name")
    assert errors["u1"] == (False, "unknown_command")
    assert "known: ping, run_probe, set_interval" in (got["u1"].error or "")
    assert errors["i1"] == errors["i2"] == (False, "bad_args")
    assert "1..86400" in (got["i2"].error or "")
    assert got["i3"].ok and got["i3"].result == {"interval_s": 2.0}
    assert sink.of(wire.Birth, "gw-1")[-1].interval_s == 2  # the birth follows the change
    assert got["r1"].ok and got["r1"].result is not None
    assert got["r1"].result["probe"] == "system" and "uptime_s" in got["r1"].result["metrics"]
    assert errors["r2"] == (False, "bad_args") and "exec_answer" in (got["r2"].error or "")
    assert got["t1"].ok and got["t1"].result is not None and got["t1"].result["loss_pct"] == 0
    assert errors["t2"] == errors["t3"] == (False, "bad_args")
    assert errors["t4"] == errors["t5"] == (False, "not_allowed")
    assert "refused" in agent.text()
    assert KEY not in agent.text()  # the key is never logged


def test_refused_commands_say_why_and_are_never_obeyed(
    tmp_path: Path, broker: Broker, sink: Sink, agents: list[AgentProcess]
) -> None:
    config = agent_config(tmp_path, broker.url, interval=1, extra=commands_table(tmp_path))
    agent = AgentProcess.start(config)
    agents.append(agent)
    wait_until(lambda: sink.of(wire.Birth, "gw-1"), what="birth")
    past = datetime.now(UTC) - timedelta(hours=1)
    other = "fleet/v1/t1/gw-2/cmd"
    sent = {
        "unsigned": unsigned("unsigned", "set_interval", interval_s=5),
        "forged": signed("forged", "set_interval", key="not-the-key-0123456789", interval_s=5),
        "for-gw-2": signed("for-gw-2", "set_interval", topic=other, interval_s=5),
        "expired": signed("expired", "set_interval", now=past, ttl=60, interval_s=5),
        "far": signed("far", "set_interval", ttl=30 * 86_400, interval_s=5),
        "ok-1": signed("ok-1", "ping"),
    }
    tampered = json.loads(signed("tampered", "set_interval", interval_s=60))
    tampered["args"]["interval_s"] = 5
    sent["tampered"] = json.dumps(tampered)
    no_exp = make_command("ping", {}, datetime.now(UTC), 300, "no-exp")
    del no_exp["exp"]
    no_exp["sig"] = signature(no_exp, CMD, KEY.encode())
    sent["no-exp"] = json.dumps(no_exp)
    for payload in sent.values():
        sink.publish(CMD, payload)
    wait_until(lambda: set(sent) <= set(replies(sink)), what=f"replies {set(sent)}")
    got = {key: reason(reply) for key, reply in replies(sink).items()}
    assert got == {
        "unsigned": (False, "unsigned"),
        "forged": (False, "bad_signature"),
        "for-gw-2": (False, "bad_signature"),  # the signature binds tenant and device
        "tampered": (False, "bad_signature"),
        "expired": (False, "expired"),
        "far": (False, "bad_expiry"),
        "no-exp": (False, "no_expiry"),
        "ok-1": (True, ""),
    }

    # The same signed command again: refused, in this run and after a restart.
    sink.publish(CMD, sent["ok-1"])
    wait_until(lambda: len(sink.of(wire.Reply, "gw-1")) == len(sent) + 1, what="replay reply")
    assert reason(sink.of(wire.Reply, "gw-1")[-1]) == (False, "replayed")
    assert agent.stop() == 0
    births = len(sink.of(wire.Birth, "gw-1"))
    agent = AgentProcess.start(config, tag="agent2")
    agents.append(agent)
    wait_until(lambda: len(sink.of(wire.Birth, "gw-1")) > births, what="second birth")
    sink.publish(CMD, sent["ok-1"])
    wait_until(lambda: len(sink.of(wire.Reply, "gw-1")) == len(sent) + 2, what="replay reply")
    assert reason(sink.of(wire.Reply, "gw-1")[-1]) == (False, "replayed")
    assert agent.stop() == 0
    assert {b.interval_s for b in sink.of(wire.Birth, "gw-1")} == {1}  # nothing obeyed


def test_a_retained_stale_command_is_refused_on_every_restart(
    tmp_path: Path, broker: Broker, sink: Sink, agents: list[AgentProcess]
) -> None:
    """The reported attack: a retained command stamped 2020 from an anonymous client, even
    with unsigned commands trusted to the broker's ACL."""
    extra = commands_table(tmp_path, "trust_broker_acl = true", key=None)
    config = agent_config(tmp_path, broker.url, interval=1, extra=extra)
    stale = make_command("set_interval", {"interval_s": 0.05}, datetime(2020, 1, 1, tzinfo=UTC), 60)
    stale["id"] = "stale"
    sink.publish(CMD, json.dumps(stale), retain=True)
    for run in range(3):
        agent = AgentProcess.start(config, tag=f"agent{run}")
        agents.append(agent)
        wait_until(
            lambda n=run: len([r for r in sink.of(wire.Reply, "gw-1") if r.id == "stale"]) > n,
            what=f"refusal {run}",
        )
        assert agent.stop() == 0
    stale_replies = [r for r in sink.of(wire.Reply, "gw-1") if r.id == "stale"]
    assert [reason(r) for r in stale_replies] == [(False, "retained")] * 3
    assert {b.interval_s for b in sink.of(wire.Birth, "gw-1")} == {1}

    # trust_broker_acl: a live, unexpired unsigned command is obeyed; an expired one is not.
    agent = AgentProcess.start(config, tag="agent-acl")
    agents.append(agent)
    wait_until(lambda: len(sink.of(wire.Reply, "gw-1")) == 4, what="the fourth refusal")
    sink.publish(CMD, unsigned("live", "set_interval", interval_s=3))
    sink.publish(CMD, json.dumps(stale | {"id": "stale-2"}))
    wait_until(lambda: {"live", "stale-2"} <= set(replies(sink)), what="acl replies")
    assert reason(replies(sink)["live"]) == (True, "")
    assert reason(replies(sink)["stale-2"]) == (False, "expired")
    assert agent.stop() == 0


def test_sign_command_prints_a_payload_the_agent_obeys(
    tmp_path: Path, broker: Broker, sink: Sink, agents: list[AgentProcess]
) -> None:
    config = agent_config(tmp_path, broker.url, interval=1, extra=commands_table(tmp_path))
    agent = AgentProcess.start(config)
    agents.append(agent)
    wait_until(lambda: sink.of(wire.Birth, "gw-1"), what="birth")
    env = os.environ | {"FLEETDESK_TEST_KEY": KEY}
    argv = [sys.executable, "-m", "agent.cli", "sign-command"]
    made = {
        "from-config": [*argv, "--config", str(config), "--cmd", "ping", "--id", "s1"],
        "from-env": [
            *argv,
            *("--tenant", "t1", "--device", "gw-1", "--key-env", "FLEETDESK_TEST_KEY"),
            *("--cmd", "set_interval", "--args", '{"interval_s": 7}', "--id", "s2"),
        ],
    }
    for args in made.values():
        done = subprocess.run(args, cwd=REPO, env=env, capture_output=True, text=True, check=True)
        assert KEY not in done.stdout + done.stderr
        assert f"topic: {CMD}" in done.stderr
        sink.publish(CMD, done.stdout.strip())
    wait_until(lambda: {"s1", "s2"} <= set(replies(sink)), what="replies to signed commands")
    assert reason(replies(sink)["s1"]) == reason(replies(sink)["s2"]) == (True, "")
    assert replies(sink)["s2"].result == {"interval_s": 7.0}
    bad = subprocess.run(
        [*argv, "--tenant", "t1", "--device", "gw-1", "--cmd", "ping"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert bad.returncode == 2 and "no command key" in bad.stderr
    assert agent.stop() == 0
