"""SlaClock: an immutable clock driven by events with explicit times."""

from __future__ import annotations

import pytest

from collector.config.durations import parse_duration
from collector.sla.calendar import load_calendar
from collector.sla.clock import ClockState, SlaClock
from collector.sla.policy import EscalationAction, Target, load_policy
from tests.support.sla import sh

H = 3600


def cn_target(duration: str) -> Target:
    return Target("resolution", parse_duration(duration), load_calendar("cn-workdays"))


def test_start_in_the_past_counts_from_the_onset() -> None:
    clock = SlaClock.start(cn_target("4h"), sh("2026-11-23T09:00"))
    now = sh("2026-11-23T10:30")
    assert clock.elapsed(now) == 1.5 * H
    assert clock.remaining(now) == 2.5 * H
    assert clock.fraction(now) == pytest.approx(0.375)
    assert clock.due() == sh("2026-11-23T13:00")
    assert clock.state(now) is ClockState.RUNNING


def test_a_clock_started_outside_hours_waits_for_the_opening() -> None:
    clock = SlaClock.start(cn_target("1h"), sh("2026-11-22T20:00"))  # a Sunday
    assert clock.elapsed(sh("2026-11-23T08:59")) == 0
    assert clock.elapsed(sh("2026-11-23T09:30")) == 0.5 * H
    assert clock.due() == sh("2026-11-23T10:00")


def test_pause_and_resume_move_the_deadline() -> None:
    clock = SlaClock.start(cn_target("4h"), sh("2026-11-23T09:00"))
    paused = clock.pause(sh("2026-11-23T10:00"))
    assert paused.state(sh("2026-11-23T11:00")) is ClockState.PAUSED
    assert paused.elapsed(sh("2026-11-23T11:00")) == 1 * H  # nothing counts while paused
    assert paused.due() is None  # unknown until resumed
    assert paused.due(sh("2026-11-23T11:00")) == sh("2026-11-23T14:00")  # if resumed now
    assert paused.pause(sh("2026-11-23T10:30")) is paused  # a duplicate pause changes nothing
    resumed = paused.resume(sh("2026-11-23T17:30"))  # across closing time
    assert resumed.pauses == ((sh("2026-11-23T10:00"), sh("2026-11-23T17:30")),)
    assert resumed.due() == sh("2026-11-24T11:30")  # 1 h before, 0.5 h on the 23rd, 2.5 h next
    assert resumed.elapsed(sh("2026-11-24T09:00")) == 1.5 * H
    assert resumed.resume(sh("2026-11-23T18:00")) is resumed
    assert clock.due() == sh("2026-11-23T13:00")  # the original value is unchanged


def test_a_pause_before_the_onset_counts_from_the_onset() -> None:
    clock = SlaClock.start(cn_target("1h"), sh("2026-11-23T10:00"))
    clock = clock.pause(sh("2026-11-23T09:00")).resume(sh("2026-11-23T10:30"))
    assert clock.pauses == ((sh("2026-11-23T10:00"), sh("2026-11-23T10:30")),)
    assert clock.due() == sh("2026-11-23T11:30")


def test_events_must_not_go_back_in_time() -> None:
    clock = SlaClock.start(cn_target("1h"), sh("2026-11-23T10:00")).pause(sh("2026-11-23T11:00"))
    with pytest.raises(ValueError, match="time order"):
        clock.resume(sh("2026-11-23T10:30"))


@pytest.mark.parametrize(
    ("stop", "met", "used"),
    [
        ("2026-11-23T12:59", True, 4 * H - 60),
        ("2026-11-23T13:00", True, 4 * H),  # exactly at the deadline: met
        ("2026-11-23T13:01", False, 4 * H + 60),
        ("2026-11-24T09:00", False, 9 * H),
    ],
)
def test_stop_reports_met_or_breached_with_business_time_used(
    stop: str, met: bool, used: float
) -> None:
    clock = SlaClock.start(cn_target("4h"), sh("2026-11-23T09:00")).stop(sh(stop))
    result = clock.result
    assert result is not None
    assert (result.met, result.used_seconds, result.due) == (met, used, sh("2026-11-23T13:00"))
    assert clock.state(sh("2026-11-30T00:00")) is (ClockState.MET if met else ClockState.BREACHED)
    assert clock.elapsed(sh("2026-11-30T00:00")) == used  # frozen after the stop
    assert clock.stop(sh("2026-11-30T00:00")) is clock
    assert clock.next_escalation(sh(stop), ()) is None


def test_stop_while_paused_closes_the_pause() -> None:
    clock = SlaClock.start(cn_target("4h"), sh("2026-11-23T09:00")).pause(sh("2026-11-23T10:00"))
    stopped = clock.stop(sh("2026-11-23T15:00"))
    assert stopped.result is not None
    assert stopped.result.used_seconds == 1 * H
    assert stopped.result.met and stopped.result.due == sh("2026-11-23T18:00")


def test_zero_target_fraction_jumps_at_its_deadline() -> None:
    clock = SlaClock.start(cn_target("0"), sh("2026-11-22T20:00"))  # Sunday night
    assert clock.due() == sh("2026-11-23T09:00")
    assert clock.fraction(sh("2026-11-23T08:59")) == 0.0
    assert clock.fraction(sh("2026-11-23T09:00")) == 1.0
    assert clock.stop(sh("2026-11-23T08:00")).result.met  # type: ignore[union-attr]
    assert not clock.stop(sh("2026-11-23T09:01")).result.met  # type: ignore[union-attr]


def test_escalations_of_wthink_urgent_resolution() -> None:
    policy = load_policy("wthink")
    target = policy.levels["urgent"].targets["resolution"]  # 2wd = 16 h on 09:00-17:00
    steps = policy.escalation_steps("urgent", "resolution")
    clock = SlaClock.start(target, sh("2026-10-01T10:00"))
    first = clock.next_escalation(sh("2026-10-01T10:00"), steps)
    assert first is not None
    assert (first[0], first[1].action) == (sh("2026-10-02T10:00"), EscalationAction.SECOND_LINE)
    second = clock.next_escalation(first[0], steps)
    assert second is not None
    assert (second[0], second[1].action) == (sh("2026-10-02T14:00"), EscalationAction.WARNING)
    third = clock.next_escalation(second[0], steps)
    assert third is not None
    assert (third[0], third[1].action) == (sh("2026-10-03T10:00"), EscalationAction.BREACH)
    assert clock.next_escalation(third[0], steps) is None
    crossed = clock.escalations_between(None, sh("2026-10-02T16:00"), steps)
    assert [(t, s.action) for t, s in crossed] == [
        (sh("2026-10-02T10:00"), EscalationAction.SECOND_LINE),
        (sh("2026-10-02T14:00"), EscalationAction.WARNING),
    ]
    # a pause holds every later step back by the business time it covers
    paused = clock.pause(sh("2026-10-02T11:00"))
    assert paused.next_escalation(sh("2026-10-02T12:00"), steps) is None
    resumed = paused.resume(sh("2026-10-02T13:00"))
    nxt = resumed.next_escalation(sh("2026-10-02T13:00"), steps)
    assert nxt is not None and nxt[0] == sh("2026-10-02T16:00")
    assert paused.escalations_between(None, sh("2026-10-02T16:00"), steps) == crossed[:1]


def test_zero_target_steps_are_caught_at_the_start() -> None:
    policy = load_policy("shanghai-energy")
    steps = policy.escalation_steps("A", "response")
    clock = SlaClock.start(policy.levels["A"].targets["response"], sh("2026-10-01T03:00"))
    crossed = clock.escalations_between(None, sh("2026-10-01T03:00"), steps)
    assert [s.action for _, s in crossed] == [EscalationAction.WARNING, EscalationAction.BREACH]
    assert clock.next_escalation(sh("2026-10-01T03:00"), steps) is None
