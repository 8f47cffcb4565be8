"""Absence counts only time the collector listened (``Engine.resume``), and a device known from
traps alone is not judged for absence: tables of instants, no clock."""

from __future__ import annotations

from datetime import timedelta

from agent import wire
from collector.rules.engine import Engine
from collector.rules.faults import EventType
from collector.rules.inputs import Trap
from collector.rules.inventory import parse_csv_inventory
from collector.rules.ruleset import load_rules
from tests.support.rules import HEADER, T0, row


def _engine(*rows: str) -> Engine:
    inv = parse_csv_inventory("\n".join((HEADER, *rows)) + "\n")
    return Engine(inv, load_rules(), default_policy="wthink")


def _report(engine: Engine, device: str, seq: int, seconds: float) -> list[EventType]:
    t = T0 + timedelta(seconds=seconds)
    msg = wire.Telemetry(device, "b", seq, t, {"cpu_pct": 5.0})
    return [e.event for e in engine.process(msg, t)]


def _opened(engine: Engine, seconds: float) -> list[str]:
    events = engine.tick(T0 + timedelta(seconds=seconds))
    return [e.fault.subject for e in events if e.event is EventType.OPENED]


def test_time_not_listened_to_does_not_count_as_absence() -> None:
    engine = _engine(row("d1", interval_s=10), row("d2", interval_s=10))
    for i in range(3):
        _report(engine, "d1", i, i * 10)
        _report(engine, "d2", i, i * 10)
    # the collector was away from 20 s to 120 s (three intervals would be 50 s)
    engine.resume(T0 + timedelta(seconds=120))
    _report(engine, "d1", 3, 120.5)  # d1's queued report, applied first; d2 went silent
    assert _opened(engine, 145) == []  # d2: 25 s of listening, less than 3 x 10 s
    _report(engine, "d1", 4, 146)
    assert _opened(engine, 151) == ["d2"]  # 30 s of listening without d2: found
    assert _opened(engine, 175) == []  # d1 keeps its own clock: due at 176


def test_without_resume_the_same_gap_is_an_outage() -> None:
    engine = _engine(row("d1", interval_s=10))
    _report(engine, "d1", 0, 0)
    _report(engine, "d1", 1, 20)
    assert _opened(engine, 120) == ["d1"]  # what resume prevents for a collector outage


def test_resume_before_any_input_and_twice_is_harmless() -> None:
    engine = _engine(row("d1", interval_s=10))
    engine.resume(T0)  # a fresh engine: nothing to rebase
    _report(engine, "d1", 0, 0)
    engine.resume(T0 + timedelta(seconds=5))
    engine.resume(T0 + timedelta(seconds=5))  # no time passed since: no change
    assert _opened(engine, 34) == []
    assert _opened(engine, 36) == ["d1"]  # 30 s of listening from 5 s: due at 35


def test_a_device_known_from_traps_alone_is_not_judged_for_absence() -> None:
    engine = _engine(row("d1", interval_s=10))
    _report(engine, "d1", 0, 0)
    link_down = Trap(device="trap-only", name="linkDown", oid=None, varbinds={"ifIndex": "1"})
    events = engine.process(link_down, T0 + timedelta(seconds=1))
    assert [(e.event, e.fault.kind) for e in events] == [(EventType.OPENED, "interface_down")]
    _report(engine, "d1", 1, 3600)
    subjects = [f.subject for f in engine.open_faults() if f.kind == "device_offline"]
    assert "trap-only" not in subjects  # an hour of silence: it was never expected to report
