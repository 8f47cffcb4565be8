"""SlaClock at its edges: the exact messages for bad events, instants that fall exactly on a
boundary (a stop, a pause, a step already reported), steps in any order, short targets."""

from __future__ import annotations

from datetime import datetime

import pytest

from collector.config.durations import parse_duration
from collector.sla.calendar import load_calendar
from collector.sla.clock import ClockState, SlaClock
from collector.sla.policy import EscalationAction, EscalationStep, Target
from tests.support.sla import sh

H = 3600
WARN = EscalationStep(EscalationAction.WARNING, 0.5)
BREACH = EscalationStep(EscalationAction.BREACH, 1.0)


def target(duration: str, calendar: str = "cn-workdays") -> Target:
    return Target("resolution", parse_duration(duration), load_calendar(calendar))


def test_a_time_without_a_zone_is_refused_naming_the_event() -> None:
    naive = datetime(2026, 11, 23, 9, 0)
    with pytest.raises(ValueError) as info:
        SlaClock.start(target("4h"), naive)
    assert str(info.value) == "clock start 2026-11-23T09:00:00 needs a time zone"
    clock = SlaClock.start(target("4h"), sh("2026-11-23T09:00"))
    for event in ("pause", "stop"):
        with pytest.raises(ValueError) as info:
            getattr(clock, event)(naive)
        assert str(info.value) == f"{event} at 2026-11-23T09:00:00 needs a time zone"
    with pytest.raises(ValueError) as info:
        clock.pause(sh("2026-11-23T10:00")).resume(naive)
    assert str(info.value) == "resume at 2026-11-23T09:00:00 needs a time zone"


@pytest.mark.parametrize("event", ["pause", "stop"])
def test_an_event_before_the_last_one_is_refused_naming_it(event: str) -> None:
    """After a pause and its resume, an event between the two is out of order."""
    clock = (
        SlaClock.start(target("4h"), sh("2026-11-23T09:00"))
        .pause(sh("2026-11-23T10:00"))
        .resume(sh("2026-11-23T12:00"))
    )
    with pytest.raises(ValueError) as info:
        getattr(clock, event)(sh("2026-11-23T11:00"))
    assert str(info.value) == (
        f"{event} at 2026-11-23T11:00:00+08:00 is before the clock's last event "
        "(2026-11-23T12:00:00+08:00): events must come in time order"
    )


def test_resume_before_the_pause_is_refused_naming_it() -> None:
    clock = (
        SlaClock.start(target("4h"), sh("2026-11-23T09:00"))
        .pause(sh("2026-11-23T10:00"))
        .resume(sh("2026-11-23T11:00"))
        .pause(sh("2026-11-23T12:00"))
    )
    with pytest.raises(ValueError) as info:
        clock.resume(sh("2026-11-23T11:30"))
    assert str(info.value).startswith("resume at 2026-11-23T11:30:00+08:00 is before")


def test_at_the_stop_instant_the_clock_is_already_met_or_breached() -> None:
    start = SlaClock.start(target("4h"), sh("2026-11-23T09:00"))
    met = start.stop(sh("2026-11-23T12:00"))
    assert met.state(sh("2026-11-23T12:00")) is ClockState.MET
    assert met.state(sh("2026-11-23T11:59")) is ClockState.RUNNING  # asked about earlier
    breached = start.stop(sh("2026-11-23T14:00"))
    assert breached.state(sh("2026-11-23T14:00")) is ClockState.BREACHED


def test_a_target_of_one_second_has_fractions_between() -> None:
    clock = SlaClock.start(target("1s", "24x7"), sh("2026-11-23T09:00:00"))
    assert clock.fraction(datetime.fromisoformat("2026-11-23T09:00:00.500+08:00")) == 0.5


def test_a_zero_target_paused_at_its_start_is_due_as_if_resumed_now() -> None:
    clock = SlaClock.start(target("0"), sh("2026-11-23T10:00")).pause(sh("2026-11-23T10:00"))
    assert clock.due() is None
    assert clock.fraction(sh("2026-11-23T11:00")) == 1.0  # due(at): resumed now, due now


def test_a_step_reported_at_after_is_not_reported_again() -> None:
    clock = SlaClock.start(target("4h"), sh("2026-11-23T09:00"))
    warn_at = sh("2026-11-23T11:00")
    assert clock.escalations_between(None, warn_at, [WARN, BREACH]) == [(warn_at, WARN)]
    assert clock.escalations_between(warn_at, sh("2026-11-23T12:00"), [WARN, BREACH]) == []


def test_steps_between_count_a_closed_pause() -> None:
    clock = (
        SlaClock.start(target("4h"), sh("2026-11-23T09:00"))
        .pause(sh("2026-11-23T10:00"))
        .resume(sh("2026-11-23T11:00"))
    )
    hits = clock.escalations_between(None, sh("2026-11-23T14:00"), [WARN, BREACH])
    assert hits == [(sh("2026-11-23T12:00"), WARN), (sh("2026-11-23T14:00"), BREACH)]


def test_a_step_due_exactly_when_the_pause_began_is_reported() -> None:
    """The warning came due at 11:00 and the clock paused at 11:00: it was due before the pause;
    the breach, which needs running time after it, is not."""
    clock = SlaClock.start(target("4h"), sh("2026-11-23T09:00")).pause(sh("2026-11-23T11:00"))
    hits = clock.escalations_between(None, sh("2026-11-23T18:00"), [BREACH, WARN])
    assert hits == [(sh("2026-11-23T11:00"), WARN)]


def test_steps_in_any_order_are_all_considered() -> None:
    """Steps listed latest first: a later step held back by the pause does not hide an earlier
    one that is due."""
    clock = SlaClock.start(target("4h"), sh("2026-11-23T09:00")).pause(sh("2026-11-23T11:30"))
    hits = clock.escalations_between(None, sh("2026-11-23T18:00"), [BREACH, WARN])
    assert hits == [(sh("2026-11-23T11:00"), WARN)]


def test_of_two_steps_due_at_once_the_next_is_the_first_listed() -> None:
    clock = SlaClock.start(target("4h"), sh("2026-11-23T09:00"))
    notify = EscalationStep(EscalationAction.NOTIFY, 1.0)
    nxt = clock.next_escalation(sh("2026-11-23T09:00"), [BREACH, notify])
    assert nxt == (sh("2026-11-23T13:00"), BREACH)
    nxt = clock.next_escalation(sh("2026-11-23T09:00"), [notify, BREACH])
    assert nxt == (sh("2026-11-23T13:00"), notify)
