"""Maintenance windows announced after they began: which open faults they exempt (a device's,
a site's devices', the site outage itself), exactly at the window's edges, and the window ids
a restored book goes on from."""

from __future__ import annotations

from datetime import timedelta

import pytest

from agent import wire
from collector.rules.engine import Engine
from collector.rules.faults import EventType, Exemption
from collector.rules.inputs import Maintenance
from collector.rules.inventory import parse_csv_inventory
from collector.rules.maintenance import MaintenanceBook, Window
from collector.rules.ruleset import load_rules
from tests.support.rules import HEADER, T0, row

MIN = timedelta(minutes=1)


def engine(*rows: str) -> Engine:
    inventory = parse_csv_inventory("\n".join((HEADER, *rows)) + "\n")
    return Engine(inventory, load_rules(), default_policy="wthink")


def disk_full(e: Engine, *devices: str) -> None:
    for device in devices:
        e.process(wire.Telemetry(device, "b", 0, T0, {"disk_used_pct": 99}), T0)


def exempted(events: list) -> list[tuple[str, str]]:  # type: ignore[type-arg]
    """The exemptions among ``events`` (the input may first tick other timers)."""
    found = [ev for ev in events if ev.event is EventType.EXEMPTED]
    assert all(ev.fault.exempt is Exemption.MAINTENANCE for ev in found)
    return [(ev.fault.subject, ev.fault.kind) for ev in found]


def test_a_late_site_window_exempts_the_open_faults_of_that_sites_devices() -> None:
    # quiet (first on the site) has never reported: no state, the others are still looked at
    e = engine(
        row("quiet", site="s1"), row("a1", site="s1"), row("a2", site="s1"), row("b1", site="s2")
    )
    disk_full(e, "a1", "a2", "b1")
    late = Maintenance(start=T0 - 5 * MIN, end=T0 + 60 * MIN, site="s1")
    assert exempted(e.process(late, T0 + MIN)) == [("a1", "disk_full"), ("a2", "disk_full")]
    assert {f.subject: f.exempt for f in e.open_faults()} == {
        "a1": Exemption.MAINTENANCE,
        "a2": Exemption.MAINTENANCE,
        "b1": None,
    }


@pytest.mark.parametrize(
    ("start", "end", "exempt"),
    [
        (T0, T0 + MIN, True),  # the onset is the window's first instant: inside
        (T0 - MIN, T0, False),  # the window ends at the onset: outside
        (T0 + MIN, T0 + 9 * MIN, False),  # began after the onset
    ],
)
def test_a_late_device_window_exempts_an_onset_inside_it_only(
    start: object, end: object, exempt: bool
) -> None:
    e = engine(row("a1", site="s1"), row("a2", site="s1"))
    disk_full(e, "a1", "a2")
    window = Maintenance(start=start, end=end, device="a1")  # type: ignore[arg-type]
    got = exempted(e.process(window, T0 + MIN))
    assert got == ([("a1", "disk_full")] if exempt else [])


def site_outage(e: Engine) -> None:
    for device in ("a1", "a2", "b1"):
        e.process(wire.Telemetry(device, "b", 0, T0, {"cpu_pct": 5}), T0)
    for i in range(1, 10):  # b1 keeps reporting; every device of s1 goes silent
        t = T0 + i * MIN
        e.process(wire.Telemetry("b1", "b", i, t, {"cpu_pct": 5}), t)
        e.tick(t)


def test_a_late_site_window_exempts_the_site_outage() -> None:
    e = engine(row("a1", site="s1"), row("a2", site="s1"), row("b1", site="s2"))
    site_outage(e)
    [outage] = [f for f in e.open_faults() if f.device is None]
    assert (outage.subject, outage.kind, outage.exempt) == ("s1", "site_outage", None)
    other = Maintenance(start=T0, end=T0 + 60 * MIN, site="s2")
    assert exempted(e.process(other, T0 + 10 * MIN)) == []
    too_late = Maintenance(start=outage.onset + MIN, end=T0 + 60 * MIN, site="s1")
    assert exempted(e.process(too_late, T0 + 10 * MIN)) == []
    window = Maintenance(start=T0, end=T0 + 60 * MIN, site="s1")
    assert exempted(e.process(window, T0 + 10 * MIN)) == [("s1", "site_outage")]
    [outage] = [f for f in e.open_faults() if f.device is None]
    assert outage.exempt is Exemption.MAINTENANCE and outage.deadlines == {}


def test_a_restored_book_numbers_new_windows_after_the_highest() -> None:
    book = MaintenanceBook()
    for window_id in ("m7", "m3"):
        book.restore(Window(window_id, 0.0, 1.0, "d", None))
    m = Maintenance(start=T0, end=T0 + MIN, device="d")
    assert book.add(m).id == "m8"
    assert sorted(book.windows) == ["m3", "m7", "m8"]


@pytest.mark.parametrize("second", ["device", "site"])
def test_a_fault_stays_held_while_another_window_still_covers_it(second: str) -> None:
    e = engine(row("a1", site="s1"), row("b1", site="s2"))
    first = Maintenance(start=T0, end=T0 + 10 * MIN, device="a1")
    other = Maintenance(
        start=T0, end=T0 + 20 * MIN, **{second: "a1" if second == "device" else "s1"}
    )
    e.process(first, T0)
    e.process(other, T0)
    e.process(wire.Telemetry("b1", "b", 0, T0 + MIN, {"disk_used_pct": 99}), T0 + MIN)
    for i in range(1, 20):
        t = T0 + i * MIN
        events = e.process(wire.Telemetry("a1", "b", i, t, {"disk_used_pct": 99}), t)
        assert [ev for ev in events if ev.fault.subject == "a1"] == [], i  # held throughout
    t = T0 + 20 * MIN
    events = e.process(wire.Telemetry("a1", "b", 20, t, {"disk_used_pct": 99}), t)
    assert [(ev.event, ev.fault.subject) for ev in events] == [(EventType.OPENED, "a1")]
    assert "a1" not in e.holds()


def test_a_late_window_for_a_site_without_devices_exempts_nothing() -> None:
    e = engine(row("a1", site="s1"))
    disk_full(e, "a1")
    window = Maintenance(start=T0, end=T0 + MIN, site="nowhere")
    assert exempted(e.process(window, T0 + MIN)) == []


def test_windows_are_forgotten_a_day_after_they_ended() -> None:
    book = MaintenanceBook()
    book.restore(Window("m1", 0.0, 100.0, "d", None))
    book.prune(100.0 + 86_400.0)  # exactly a day: still kept
    assert list(book.windows) == ["m1"]
    book.prune(100.0 + 86_400.5)
    assert book.windows == {}
    book.restore(Window("m2", 0.0, 100.0, "d", None))
    book.prune(160.0, keep_s=60.0)
    assert list(book.windows) == ["m2"]
    book.prune(160.5, keep_s=60.0)
    assert book.windows == {}
