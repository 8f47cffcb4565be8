"""The engine against the brute-force minute-stepping reference, over random inputs."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collector.sla.calendar import Calendar, load_calendar
from collector.sla.clock import SlaClock
from collector.sla.policy import load_policy
from tests.support.sla import write_rules
from tests.support.sla_reference import (
    REFERENCES,
    TEST_CALENDARS,
    business_minutes,
    due_minute,
    from_minute,
    to_minute,
)

PRESET_POLICIES = ("shanghai-energy", "xian-integrator", "nanjing-instruments", "mtbox", "wthink")

# Starts within the years chinese-calendar publishes (deadlines stay before 2027), plus the
# days around Berlin's 2026 DST changes so that the wall-time calendar crosses them.
_2025 = to_minute(datetime.fromisoformat("2025-01-01T00:00+08:00"))
_LAST = to_minute(datetime.fromisoformat("2026-11-30T00:00+08:00"))
_DST = [to_minute(datetime.fromisoformat(t)) for t in ("2026-03-27T12:00Z", "2026-10-23T12:00Z")]
starts = st.one_of(
    st.integers(_2025, _LAST),
    st.sampled_from(_DST).flatmap(lambda m: st.integers(m, m + 4 * 1440)),
)
pause_lists = st.lists(st.tuples(st.integers(-1500, 15000), st.integers(0, 3000)), max_size=3)


@pytest.fixture(scope="module")
def calendars(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Calendar]:
    rules: Path = write_rules(tmp_path_factory.mktemp("rules"), TEST_CALENDARS)
    return {name: load_calendar(name, rules) for name in REFERENCES}


def _pauses(start: int, raw: list[tuple[int, int]]) -> list[tuple[int, int]]:
    return [(start + offset, start + offset + length) for offset, length in raw]


def _aware(pauses: list[tuple[int, int]]) -> list[tuple[datetime, datetime]]:
    return [(from_minute(a), from_minute(b)) for a, b in pauses]


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    name=st.sampled_from(sorted(REFERENCES)),
    start=starts,
    minutes=st.one_of(st.integers(0, 5 * 540), st.sampled_from([0, 1, 45, 180, 480, 540])),
    raw_pauses=pause_lists,
)
def test_add_and_business_seconds_match_the_reference(
    calendars: dict[str, Calendar],
    name: str,
    start: int,
    minutes: int,
    raw_pauses: list[tuple[int, int]],
) -> None:
    calendar, is_open = calendars[name], REFERENCES[name]
    pauses = _pauses(start, raw_pauses)
    expected = due_minute(is_open, start, minutes, pauses)
    due = calendar.add(from_minute(start), minutes * 60, _aware(pauses))
    assert to_minute(due) == expected
    assert due.tzinfo is calendar.tz
    end = expected + 17
    counted = calendar.business_seconds(from_minute(start), from_minute(end), _aware(pauses))
    assert counted == 60 * business_minutes(is_open, start, end, pauses)
    assert calendar.is_open(from_minute(expected)) == is_open(expected)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    data=st.data(),
    policy_name=st.sampled_from(PRESET_POLICIES),
    start=st.integers(_2025, _LAST),
    raw_pauses=pause_lists,
)
def test_every_preset_deadline_matches_the_reference(
    data: st.DataObject, policy_name: str, start: int, raw_pauses: list[tuple[int, int]]
) -> None:
    policy = load_policy(policy_name)
    level = data.draw(st.sampled_from(sorted(policy.levels)), label="level")
    pauses = _pauses(start, raw_pauses)
    deadlines = policy.deadlines(level, from_minute(start), _aware(pauses))
    assert set(deadlines) == set(policy.levels[level].targets)
    for name, target in policy.levels[level].targets.items():
        minutes, rest = divmod(int(target.seconds), 60)
        assert rest == 0
        is_open = REFERENCES[target.calendar.name]
        assert to_minute(deadlines[name]) == due_minute(is_open, start, minutes, pauses), name


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    policy_name=st.sampled_from(PRESET_POLICIES),
    data=st.data(),
    start=st.integers(_2025, _LAST),
    raw_pauses=pause_lists,
    ask=st.integers(0, 20000),
)
def test_clock_elapsed_and_due_match_the_reference(
    policy_name: str,
    data: st.DataObject,
    start: int,
    raw_pauses: list[tuple[int, int]],
    ask: int,
) -> None:
    policy = load_policy(policy_name)
    level = policy.levels[data.draw(st.sampled_from(sorted(policy.levels)), label="level")]
    target = level.targets[data.draw(st.sampled_from(sorted(level.targets)), label="target")]
    is_open = REFERENCES[target.calendar.name]
    # pauses as events: sorted, non-overlapping, after the start
    events: list[tuple[int, int]] = []
    for a, b in sorted(_pauses(start, raw_pauses)):
        begin = max(a, start, events[-1][1] if events else start)
        if b > begin:
            events.append((begin, b))
    clock = SlaClock.start(target, from_minute(start))
    for a, b in events:
        clock = clock.pause(from_minute(a)).resume(from_minute(b))
    at = start + ask
    assert clock.elapsed(from_minute(at)) == 60 * business_minutes(is_open, start, at, events)
    minutes = int(target.seconds) // 60
    due = clock.due()
    assert due is not None and to_minute(due) == due_minute(is_open, start, minutes, events)
