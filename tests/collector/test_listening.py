"""The rules clock runs only while the collector listens (``ListeningClock``): the real pipeline
and engine on a virtual clock, inputs fed as the MQTT intake and the SNMP poller feed them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from agent import wire
from collector.config.collector import IntakeConfig
from collector.intake.deadletter import Rejects
from collector.intake.envelope import Envelope
from collector.metrics import Metrics
from collector.pipeline.assembly import Pipeline, assemble
from collector.pipeline.dedup import Registry
from collector.pipeline.identity import from_inventory
from collector.pipeline.listening import ListeningClock
from collector.rules.engine import Engine
from collector.rules.faults import EventType, FaultEvent
from collector.rules.inventory import parse_csv_inventory
from collector.rules.ruleset import load_rules
from tests.support.rules import HEADER, row

T0 = datetime(2026, 11, 25, 2, 0, tzinfo=UTC)


class Opened:
    def __init__(self) -> None:
        self.devices: list[str] = []

    def on_fault(self, event: FaultEvent) -> None:
        if event.event is EventType.OPENED:
            self.devices.append(event.fault.subject)

    def advance(self, now: datetime) -> None:
        pass


def _pipeline(opened: Opened) -> tuple[Pipeline, Engine]:
    inv = parse_csv_inventory("\n".join((HEADER, row("d1", interval_s=10), row("d2"))) + "\n")
    engine = Engine(inv, load_rules(), default_policy="wthink")
    metrics = Metrics()
    pipeline = assemble(
        intake=IntakeConfig(),
        mappings=(),
        metrics=metrics,
        registry=Registry(metrics, identity=from_inventory(inv)),
        rejects=Rejects(metrics),
        measurement="fleet",
        telemetry=None,
        recent=None,
        engine=engine,
        fault_stages=(opened,),
    )
    return pipeline, engine


def _at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def _mqtt(pipeline: Pipeline, seq: int, seconds: float) -> None:
    msg = wire.Telemetry("d1", "b", seq, _at(seconds), {"cpu_pct": 5.0})
    pipeline.feed([("fleet/v1/acme/d1/telemetry", wire.encode(msg), _at(seconds).timestamp())])


def test_absence_is_judged_on_listening_time_only() -> None:
    opened = Opened()
    pipeline, engine = _pipeline(opened)
    clock = ListeningClock(pipeline, grace_s=2.0)  # starts paused: queued reports first
    clock(_at(0), connected=True)
    _mqtt(pipeline, 1, 0.5)  # the first batch resumes the rules
    for s in range(1, 21):
        if s % 5 == 0:
            _mqtt(pipeline, s, s + 0.5)
        clock(_at(s), connected=True)
    # the broker goes away for 40 s; an SNMP sample of d2 arrives meanwhile and waits
    snmp = wire.Telemetry("d2", "", 0, _at(30), {"cpu_pct": 1.0})
    for s in range(21, 61):
        if s == 30:
            pipeline([Envelope("", b"", _at(30).timestamp(), msg=snmp, source="snmp")])
        clock(_at(s), connected=False)
    assert opened.devices == []  # without the pause d1 would be offline at 50 s
    assert engine.state.devices["d2"].last_ts == float("-inf")  # held, not yet applied
    clock(_at(61), connected=True)
    _mqtt(pipeline, 21, 61.5)  # the broker's queue: applied, then the SNMP sample
    assert engine.state.devices["d2"].last_ts == _at(30).timestamp()
    for s in range(62, 91):
        clock(_at(s), connected=True)
    assert opened.devices == []  # d1's report at 61.5: due 91.5
    for s in range(91, 95):
        clock(_at(s), connected=True)
    assert opened.devices == ["d1"]  # really silent since: found after 30 s of listening


def test_connected_with_nothing_queued_resumes_after_the_grace() -> None:
    opened = Opened()
    pipeline, _engine = _pipeline(opened)
    _mqtt(pipeline, 1, 0)  # before the clock exists: not paused yet
    clock = ListeningClock(pipeline, grace_s=2.0)
    assert pipeline.rules is not None and pipeline.rules.paused
    for s in range(100, 102):
        clock(_at(s), connected=True)
    assert pipeline.rules.paused
    clock(_at(102), connected=True)  # 2 s connected, no batch: resumed as of 100 s
    assert not pipeline.rules.paused
    for s in range(103, 130):
        clock(_at(s), connected=True)
    assert opened.devices == []  # 30 s of listening from 100 s: due at 130
    clock(_at(130), connected=True)
    assert opened.devices == ["d1"]
