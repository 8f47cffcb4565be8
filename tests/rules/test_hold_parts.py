"""The small parts the engine decides holds and timers with, each against its own contract:
the timer heap's order, the maintenance book (ids, cancel, onsets after windows), a late site
window's edges, the site-outage hold, and flap damping's set-up and end."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from collector.rules.classify import FaultMaker, PolicyBook, sla_loader
from collector.rules.engine import Engine
from collector.rules.faults import EventType, Exemption, Fault, Hold, Impact, Outbox, Scope
from collector.rules.flapping import FlapDamping
from collector.rules.holds import Holds, SiteOutageHold
from collector.rules.inputs import Maintenance
from collector.rules.inventory import parse_csv_inventory
from collector.rules.maintenance import MaintenanceBook, Window
from collector.rules.ruleset import Flapping, load_rules, parse_rules
from collector.rules.timers import TimerKind, TimerQueue
from tests.support.rules import HEADER, T0, engine_of, row

MIN = timedelta(minutes=1)
OFFLINE = "device_offline"

# flapping with no "of": every fault kind of the set but its own is watched
FLAP_ANY = """
rules:
  - name: disk_full
    fault: disk_full
    impact: degraded
    when:
      threshold: {metric: disk_used_pct, above: 95, clear_below: 90}
  - name: cpu_high
    fault: cpu_high
    impact: degraded
    when:
      threshold: {metric: cpu_pct, above: 90, clear_below: 80}
  - name: flapping
    fault: flapping
    impact: intermittent
    when:
      flapping: {opens: 2, within: 10m}
"""


def pop_all(queue: TimerQueue, now: float) -> list[Any]:
    out = []
    while (timer := queue.pop_due(now)) is not None:
        out.append(timer.key)
    return out


def test_same_instant_timers_about_one_subject_pop_in_the_order_of_their_key() -> None:
    queue = TimerQueue()
    queue.push(10.0, TimerKind.CLEAR_AFTER, "d1", "b")
    queue.push(10.0, TimerKind.CLEAR_AFTER, "d1", "A")
    queue.push(10.0, TimerKind.CLEAR_AFTER, "d1", None)  # no key sorts first
    queue.push(9.0, TimerKind.CLEAR_AFTER, "d1", "z")  # earlier instant: first of all
    assert pop_all(queue, 10.0) == ["z", None, "A", "b"]


def test_timers_alike_in_all_but_their_key_object_pop_in_the_order_they_were_set() -> None:
    queue = TimerQueue()
    keys: list[Any] = [1, "1", 1, "1", 1, "1", "1", 1]  # the same tiebreak ("1") for all
    for key in keys:
        queue.push(10.0, TimerKind.CLEAR_AFTER, "d1", key)
    got = pop_all(queue, 10.0)
    assert [type(k) for k in got] == [type(k) for k in keys]


def test_a_fresh_book_numbers_its_windows_from_m1() -> None:
    book = MaintenanceBook()
    ids = [book.add(Maintenance(start=T0, end=T0 + MIN, device="d")).id for _ in range(2)]
    assert ids == ["m1", "m2"]


@pytest.mark.parametrize(
    ("at", "end"),
    [
        (30.0, 30.0),  # cancelled while it runs: it ends now
        (5.0, 10.0),  # cancelled before it began: it ends at its start
        (150.0, 100.0),  # cancelled after it ended: unchanged
    ],
)
def test_a_cancelled_window_ends_now_but_never_before_its_start_nor_later(
    at: float, end: float
) -> None:
    book = MaintenanceBook()
    book.restore(Window("m1", 10.0, 100.0, "d", None))
    assert book.cancel("m1", at) == Window("m1", 10.0, end, "d", None)
    assert book.windows["m1"].end == end


def test_cancelling_an_unknown_window_is_a_key_error() -> None:
    with pytest.raises(KeyError):
        MaintenanceBook().cancel("m1", 0.0)


def test_an_onset_moves_past_an_ended_window_of_its_own_device_only() -> None:
    book = MaintenanceBook()
    book.restore(Window("m1", 0.0, 10.0, "d2", None))
    assert book.after_windows("d1", None, 5.0, 20.0) == 5.0  # another device's window
    assert book.after_windows("d2", None, 5.0, 20.0) == 10.0
    assert book.after_windows("d2", None, 5.0, 9.0) == 5.0  # not ended yet


def site_fault(onset_min: float, site: str = "s1") -> Fault:
    onset = T0 + onset_min * MIN
    return Fault("site_outage", Impact.OUTAGE, Scope.SITE, site, onset, "wthink", None)


@pytest.mark.parametrize(
    ("start_min", "end_min", "exempt"),
    [
        (0.0, 10.0, True),  # the onset is the window's first instant
        (-10.0, 0.0, False),  # the window ends at the onset
        (-10.0, 0.001, True),
        (0.001, 10.0, False),
    ],
)
def test_a_late_site_window_exempts_a_site_outage_whose_onset_lies_inside_it(
    start_min: float, end_min: float, exempt: bool
) -> None:
    start, end = (T0 + m * MIN for m in (start_min, end_min))
    window = Window("m1", start.timestamp(), end.timestamp(), None, "s1")
    assert window.exempts(site_fault(0.0)) is (Exemption.MAINTENANCE if exempt else None)


SITES = (row("a1", site="s1"), row("b1", site="s2"), row("c1"))


def outage_engine() -> Engine:
    """a1 on s1, whose outage is open; b1 on s2; c1 on no site."""
    e = engine_of(*SITES)
    e.state.site_faults["s1"] = site_fault(0.0)
    return e


def test_the_site_outage_holds_the_offline_fault_of_its_own_sites_devices_only() -> None:
    e = outage_engine()
    devices = e.state.devices
    hold = SiteOutageHold(e.state, OFFLINE)
    assert hold.holds(devices["a1"], OFFLINE) is Hold.SITE_OUTAGE
    assert hold.holds(devices["a1"], "disk_full") is None  # not the offline kind
    assert hold.holds(devices["b1"], OFFLINE) is None  # another site, no outage
    assert hold.holds(devices["c1"], OFFLINE) is None  # on no site
    assert SiteOutageHold(e.state, None).holds(devices["a1"], OFFLINE) is None  # no offline rule


def test_every_hold_asks_the_site_outage_for_the_offline_kind() -> None:
    e = outage_engine()
    inventory = parse_csv_inventory("\n".join((HEADER, *SITES)) + "\n")
    flap = FlapDamping(None, frozenset(), maker=maker(), outbox=Outbox(), timers=TimerQueue())
    holds = Holds(e.state, inventory, OFFLINE, flap)
    a1 = e.state.devices["a1"]
    assert holds.root_cause(a1, OFFLINE) is Hold.SITE_OUTAGE
    assert holds.holds(a1, OFFLINE, T0.timestamp()) is Hold.SITE_OUTAGE
    assert holds.holds(a1, "disk_full", T0.timestamp()) is None


def maker() -> FaultMaker:
    return FaultMaker(PolicyBook(sla_loader()), "wthink")


def damping(
    rules_text: str | None = None, rule_name: str = "flapping", outbox: Outbox | None = None
) -> FlapDamping:
    rules = load_rules() if rules_text is None else parse_rules([(rules_text, "rules.yaml")])
    [rule] = [r for r in rules.rules if r.name == rule_name]
    out = outbox if outbox is not None else Outbox()
    return FlapDamping(rule, rules.kinds, maker=maker(), outbox=out, timers=TimerQueue())


def test_flap_damping_watches_the_kinds_its_rule_names() -> None:
    flap = damping()
    assert isinstance(flap.cond, Flapping)
    assert flap.watched == flap.cond.of
    assert "disk_full" in flap.watched and "firmware_changed" not in flap.watched


def test_flap_damping_without_a_list_watches_every_kind_but_its_own() -> None:
    assert damping(FLAP_ANY).watched == {"disk_full", "cpu_high"}


def test_a_rule_of_another_type_damps_nothing() -> None:
    flap = damping(FLAP_ANY, rule_name="disk_full")
    assert flap.cond is None
    assert flap.watched == frozenset()


def test_a_flap_end_for_a_kind_that_is_not_flapping_changes_nothing() -> None:
    outbox = Outbox()
    flap = damping(outbox=outbox)
    st = engine_of(row("d1")).state.devices["d1"]
    fault = Fault("flapping", Impact.INTERMITTENT, Scope.DEVICE, "d1", T0, "wthink", None)
    st.flapping = {"disk_full": fault}
    st.flaps = {"disk_full": [0.0], "cpu_high": [5.0]}  # cpu_high opened, never flapped
    assert flap.end(st, "cpu_high", 10_000.0) is False
    assert st.flapping == {"disk_full": fault}
    assert st.flaps == {"disk_full": [0.0], "cpu_high": [5.0]}
    assert outbox.drain() == []


def test_a_flap_end_clears_only_when_no_later_opening_prolonged_it() -> None:
    outbox = Outbox()
    flap = damping(outbox=outbox)
    st = engine_of(row("d1")).state.devices["d1"]
    fault = Fault("flapping", Impact.INTERMITTENT, Scope.DEVICE, "d1", T0, "wthink", None)
    st.flapping = {"disk_full": fault}
    st.flaps = {"disk_full": [0.0, 100.0]}  # the default rule: within an hour
    assert flap.end(st, "disk_full", 3600.0) is False  # the first opening's end: prolonged
    assert st.flapping == {"disk_full": fault} and outbox.drain() == []
    assert flap.end(st, "disk_full", 3700.0) is True
    assert st.flapping == {} and st.flaps == {}
    [cleared] = outbox.drain()
    assert (cleared.event, cleared.fault) == (EventType.CLEARED, fault)
