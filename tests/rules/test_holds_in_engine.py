"""Holds and timers through the engine, minute by minute with explicit times: flap damping at
its window's edge and after its last opening, a flapping kind released from maintenance, a
late window over a device with a held kind, root causes found after maintenance or further up
the tree, and the power-loss exemption at its limit."""

from __future__ import annotations

from datetime import timedelta

import pytest

from agent import wire
from collector.rules.engine import Engine
from collector.rules.faults import EventType, Exemption, FaultEvent, Hold
from collector.rules.inputs import Maintenance
from tests.support.rules import T0, engine_of, events_of, report, row

MIN = timedelta(minutes=1)


def disk(
    e: Engine, full_at: set[int], start: int, end: int, device: str = "d1"
) -> list[FaultEvent]:
    """``device`` reports every minute from ``start`` to ``end``: its disk full at the minutes
    of ``full_at``, fine otherwise. The events, in order."""
    events: list[FaultEvent] = []
    for m in range(start, end + 1):
        events += report(e, m, device, disk_used_pct=99 if m in full_at else 50)
    return events


def test_an_opening_exactly_the_window_before_no_longer_counts_towards_flapping() -> None:
    e = engine_of(row("d1"))
    # four openings, the first exactly an hour before the fourth: only three within the hour
    events = disk(e, {0, 20, 40, 60, 62}, 0, 130)
    assert events_of(events) == [
        ("opened", 0, "d1", "disk_full"),
        ("cleared", 1, "d1", "disk_full"),
        ("opened", 20, "d1", "disk_full"),
        ("cleared", 21, "d1", "disk_full"),
        ("opened", 40, "d1", "disk_full"),
        ("cleared", 41, "d1", "disk_full"),
        ("opened", 60, "d1", "disk_full"),
        ("cleared", 61, "d1", "disk_full"),
        # the fifth: 20, 40, 60 and 62 lie within the hour; nothing opens after it, and the
        # flapping fault ends an hour after that last opening
        ("opened", 62, "d1", "flapping"),
        ("cleared", 122, "d1", "flapping"),
    ]
    assert events[8].fault.onset == T0 + 20 * MIN
    # the openings of a flapping fault that ended are not kept
    assert e.export_state()["devices"]["d1"]["flaps"] is None


def test_an_earlier_openings_timer_does_not_end_a_flapping_fault_a_later_one_prolonged() -> None:
    e = engine_of(row("d1"))
    full = {0, 10, 20, 30, *range(40, 111)}  # flapping from 30, full again (held) from 40 on
    events = disk(e, full, 0, 110)
    assert events_of(events)[6:] == [
        ("opened", 30, "d1", "flapping"),
        ("cleared", 100, "d1", "flapping"),  # an hour after the opening at 40, not at 90
        ("opened", 100, "d1", "disk_full"),  # it settled in the failed state
    ]


def test_a_flapping_kind_released_from_maintenance_stays_held_in_the_flapping_fault() -> None:
    e = engine_of(row("d1"))
    events = disk(e, {0, 2, 4, 6}, 0, 8)
    assert events_of(events)[-1] == ("opened", 6, "d1", "flapping")
    window = Maintenance(start=T0 + 10 * MIN, end=T0 + 20 * MIN, device="d1")
    assert e.process(window, T0 + 8 * MIN) == []
    events = disk(e, set(range(12, 71)), 9, 30)  # full from 12, inside the window
    assert events == []
    assert e.holds() == {"d1": {"disk_full": Hold.FLAPPING}}  # the window ended at 20
    events = disk(e, set(range(12, 71)), 31, 70)
    assert events_of(events) == [
        ("cleared", 66, "d1", "flapping"),  # an hour after the last opening raised (6)
        ("opened", 66, "d1", "disk_full"),
    ]


def test_a_late_window_exempts_a_raised_fault_behind_a_held_kind_of_the_same_device() -> None:
    e = engine_of(row("d1"))
    for m in range(0, 18):  # disk_full flaps (held from 6 on); cpu high from 7, raised at 17
        report(e, m, "d1", disk_used_pct=99 if m in {0, 2, 4} or m >= 6 else 50,
               cpu_pct=95 if m >= 7 else 10)  # fmt: skip
    assert e.holds() == {"d1": {"disk_full": Hold.FLAPPING}}
    [cpu] = [f for f in e.open_faults() if f.kind == "cpu_high"]
    assert cpu.onset == T0 + 7 * MIN
    late = Maintenance(start=T0 + 7 * MIN, end=T0 + 60 * MIN, device="d1")
    events = e.process(late, T0 + 18 * MIN)
    assert [(ev.event, ev.fault.kind) for ev in events] == [(EventType.EXEMPTED, "cpu_high")]


def silent_until(e: Engine, end: int, *, reporting: dict[str, int]) -> list[FaultEvent]:
    """Minute by minute to ``end``: each device of ``reporting`` reports until its minute."""
    events: list[FaultEvent] = []
    for m in range(0, end + 1):
        for device, last in reporting.items():
            if m <= last:
                events += report(e, m, device, cpu_pct=5)
        events += e.tick(T0 + m * MIN)
    return events


def test_a_fault_released_from_maintenance_is_held_by_its_parent_offline() -> None:
    e = engine_of(row("gw1"), row("d1", parent="gw1"), row("x1"))
    e.process(Maintenance(start=T0, end=T0 + 20 * MIN, device="d1"), T0)
    events = silent_until(e, 30, reporting={"gw1": 0, "d1": 0, "x1": 30})
    assert [(ev.event.value, ev.fault.subject) for ev in events] == [("opened", "gw1")]
    assert e.holds() == {"d1": {"device_offline": Hold.PARENT_OFFLINE}}


def test_a_device_behind_a_reporting_parent_is_held_by_an_offline_grandparent() -> None:
    e = engine_of(row("gw0"), row("gw1", parent="gw0"), row("d1", parent="gw1"))
    events = silent_until(e, 12, reporting={"gw0": 0, "gw1": 12, "d1": 5})
    assert [(ev.event.value, ev.fault.subject) for ev in events] == [("opened", "gw0")]
    assert e.holds() == {"d1": {"device_offline": Hold.PARENT_OFFLINE}}


@pytest.mark.parametrize(("after_s", "exempt"), [(600, True), (601, False)])
def test_an_offline_state_up_to_the_power_loss_window_after_a_dying_gasp_owes_no_sla(
    after_s: int, exempt: bool
) -> None:
    e = engine_of(row("d1", interval_s=3600))  # no absence in the hour looked at
    e.process(wire.Event("d1", "b1", 1, T0, "dying_gasp"), T0)
    t = T0 + timedelta(seconds=after_s)
    [opened] = e.process(wire.State("d1", wire.DeviceState.OFFLINE, t), t)
    assert (opened.event, opened.fault.kind, opened.fault.onset) == (
        EventType.OPENED,
        "device_offline",
        t,
    )
    assert opened.fault.exempt is (Exemption.POWER_OUTAGE if exempt else None)
