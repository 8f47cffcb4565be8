"""Downlink commands through a real Mosquitto: each known command answers, and malformed or
unknown commands get an error reply naming what was wrong. Another device's topic is ignored."""

from __future__ import annotations

import json
from pathlib import Path

from agent import wire
from tests.support.agent import AgentProcess, Sink, agent_config, wait_until
from tests.support.mosquitto import Broker

CMD = "fleet/v1/t1/gw-1/cmd"


def command(id_: str, cmd: str, **args: object) -> str:
    return json.dumps({"v": 1, "id": id_, "cmd": cmd, "args": args})


def test_commands_and_error_replies(
    tmp_path: Path, broker: Broker, sink: Sink, agents: list[AgentProcess]
) -> None:
    agent = AgentProcess.start(agent_config(tmp_path, broker.url, interval=1))
    agents.append(agent)
    wait_until(lambda: sink.of(wire.Birth, "gw-1"), what="birth")

    sink.publish("fleet/v1/t1/gw-other/cmd", command("not-mine", "ping"))
    sent = {
        "p1": command("p1", "ping"),
        "garbage": b"\xff{not json",
        "m1": json.dumps({"v": 1, "id": "m1", "args": {}}),
        "v2": json.dumps({"v": 2, "id": "v2", "cmd": "ping"}),
        "n1": json.dumps({"v": 1, "id": "n1", "cmd": "Reboot Now"}),
        "u1": command("u1", "reboot"),
        "i1": command("i1", "set_interval", interval_s="fast"),
        "i2": command("i2", "set_interval", interval_s=0),
        "i3": command("i3", "set_interval", interval_s=2),
        "r1": command("r1", "run_probe", probe="system"),
        "r2": command("r2", "run_probe", probe="nope"),
        "t1": command("t1", "ping", target=f"127.0.0.1:{broker.port}", count=2),
        "t2": command("t2", "ping", target="127.0.0.1:http"),
        "t3": command("t3", "ping", target="127.0.0.1", count=99),
    }
    for payload in sent.values():
        sink.publish(CMD, payload)

    def replies() -> dict[str, wire.Reply]:
        return {r.id: r for r in sink.of(wire.Reply, "gw-1")}

    expected = set(sent) - {"garbage"} | {"invalid"}
    wait_until(lambda: expected <= set(replies()), what=f"replies {expected}")
    agent.stop()
    got = replies()

    assert "not-mine" not in got  # only the device's own topic is acted on
    assert got["p1"].ok and got["p1"].result is not None and got["p1"].result["pong"] is True
    errors = {key: (got[key].ok, (got[key].error or "").split(":")[0]) for key in got}
    assert errors["invalid"] == (False, "bad_json")
    assert errors["m1"] == (False, "missing_field")
    assert errors["v2"] == (False, "bad_version")
    assert errors["n1"] == (False, "bad_name")
    assert errors["u1"] == (False, "unknown_command")
    assert "known: ping, run_probe, set_interval" in (got["u1"].error or "")
    assert errors["i1"] == errors["i2"] == (False, "bad_args")
    assert got["i3"].ok and got["i3"].result == {"interval_s": 2.0}
    assert sink.of(wire.Birth, "gw-1")[-1].interval_s == 2  # the birth follows the change
    assert got["r1"].ok and got["r1"].result is not None
    assert got["r1"].result["probe"] == "system" and "uptime_s" in got["r1"].result["metrics"]
    assert errors["r2"] == (False, "bad_args") and "exec_answer" in (got["r2"].error or "")
    assert got["t1"].ok and got["t1"].result is not None and got["t1"].result["loss_pct"] == 0
    assert errors["t2"] == errors["t3"] == (False, "bad_args")
    assert "refused" in agent.text()
