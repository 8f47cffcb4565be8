"""The engine as the collector uses it: purity, the clock only from inputs, holds with reasons,
unassigned devices, traps and maintenance as typed inputs."""

from __future__ import annotations

import ast
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from agent import wire
from collector.rules.engine import Engine
from collector.rules.faults import EventType, Exemption
from collector.rules.holds import Hold
from collector.rules.inputs import Maintenance, Trap
from collector.rules.inventory import parse_csv_inventory
from collector.rules.ruleset import load_rules
from tests.support.rules import HEADER, T0, row

PACKAGE = Path(__file__).resolve().parents[2] / "collector" / "rules"
FORBIDDEN = ("asyncio", "paho", "httpx", "pysnmp", "sqlalchemy", "psycopg", "influxdb_client")

INVENTORY_TEXT = "\n".join((HEADER, row("d1"))) + "\n"
PROGRAM = f"""
import sys
from datetime import datetime, timezone
from agent import wire
from collector.rules.engine import Engine
from collector.rules.inventory import parse_csv_inventory
from collector.rules.ruleset import load_rules
inv = parse_csv_inventory({INVENTORY_TEXT!r})
e = Engine(inv, load_rules(), default_policy="wthink")
t = datetime(2030, 1, 1, tzinfo=timezone.utc)
e.process(wire.Telemetry("d1", "b", 1, t, {{"disk_used_pct": 99}}), t)
loaded = sorted({{m.split(".")[0] for m in sys.modules}} & set({FORBIDDEN!r}))
print(",".join(loaded))
"""


def test_the_rules_core_imports_no_io_frameworks() -> None:
    proc = subprocess.run(
        [sys.executable, "-c", PROGRAM], capture_output=True, text=True, check=True, timeout=60
    )
    assert proc.stdout.strip() == ""


def test_nothing_in_the_rules_core_reads_the_clock() -> None:
    clock_calls = {"now", "utcnow", "today", "time", "monotonic", "perf_counter"}
    found = []
    for path in sorted(PACKAGE.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in clock_calls
            ):
                found.append(f"{path.name}:{node.lineno}")
    assert found == []


@pytest.fixture
def engine() -> Engine:
    inv = parse_csv_inventory(
        "\n".join((HEADER, row("gw1"), row("dtu1", cls="dtu", parent="gw1"))) + "\n"
    )
    return Engine(inv, load_rules(), default_policy="wthink")


def test_holds_name_their_reason_and_unknown_devices_are_registered(engine: Engine) -> None:
    t0 = T0
    for device in ("gw1", "dtu1"):
        engine.process(wire.Telemetry(device, "b", 1, t0, {"cpu_pct": 5}), t0)
    birth = wire.Birth("stray", "b", t0, "WR920", "SN9", "2.0", "0.1.0", 30)
    engine.process(birth, t0)
    stray = engine.device("stray")
    assert stray is not None and not stray.assigned and stray.policy == "wthink"
    assert stray.model == "WR920"
    events = engine.tick(t0 + timedelta(minutes=3))
    assert [(e.event, e.fault.subject) for e in events] == [
        (EventType.OPENED, "stray"),  # 3 x 30 s (its birth's interval) after its birth
        (EventType.OPENED, "gw1"),
    ]
    assert engine.holds() == {"dtu1": {"device_offline": Hold.PARENT_OFFLINE}}
    assert {f.subject for f in engine.open_faults()} == {"gw1", "stray"}


def test_traps_and_maintenance_are_typed_inputs(engine: Engine) -> None:
    t0 = T0
    engine.process(wire.Telemetry("gw1", "b", 1, t0, {}), t0)
    engine.process(wire.Telemetry("dtu1", "b", 1, t0, {}), t0)
    window = Maintenance(start=t0, end=t0 + timedelta(minutes=30), device="dtu1")
    assert engine.process(window, t0) == []
    gasp = t0 + timedelta(seconds=10)
    assert engine.process(Trap("gw1", "dyingGasp", oid="1.3.6.1.4.1.9.9"), gasp) == []
    (opened,) = engine.tick(gasp + timedelta(minutes=3))  # dtu1 is held: in maintenance
    assert (opened.fault.subject, opened.fault.kind) == ("gw1", "device_offline")
    assert opened.fault.exempt is Exemption.POWER_OUTAGE and opened.fault.deadlines == {}
    assert opened.fault.onset == gasp + timedelta(minutes=1)
    with pytest.raises(ValueError, match="exactly one of device or site"):
        Maintenance(start=t0, end=t0 + timedelta(minutes=1))
