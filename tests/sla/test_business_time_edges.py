"""Business time at its edges: a span ending at 24:00 in a zone far from UTC, queries reaching
years beyond the cached timeline, exactness and estimated years near a zone's new year."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from collector.sla.businesstime import Calendar, CalendarError
from collector.sla.calendar import load_calendar
from tests.support.sla import sh, write_rules

H = 3600


def own_calendar(root: Path, hours: str) -> Calendar:
    """A Beijing calendar read from its own file, so its timeline cache starts empty."""
    write_rules(root, {"calendars/own.yaml": f"timezone: Asia/Shanghai\nhours: {{{hours}}}\n"})
    return load_calendar("own", root)


def test_a_span_to_midnight_ends_at_the_zones_midnight(tmp_path: Path) -> None:
    """Mondays 18:00-24:00 in Beijing: 24:00 is the next local midnight, not UTC's, and not a
    day later."""
    write_rules(
        tmp_path,
        {"calendars/late.yaml": "timezone: Asia/Shanghai\nhours: {mon: '18:00-24:00'}\n"},
    )
    late = load_calendar("late", tmp_path)
    assert late.business_seconds(sh("2026-11-23T17:00"), sh("2026-11-24T10:00")) == 6 * H
    assert late.is_open(sh("2026-11-23T23:59"))
    assert not late.is_open(sh("2026-11-24T00:00"))
    assert late.add(sh("2026-11-23T18:00"), 6 * H) == sh("2026-11-24T00:00")
    assert late.add(sh("2026-11-23T18:00"), 6 * H + 1) == sh("2026-11-30T18:00:01")


def test_queries_beyond_the_cached_years_extend_the_timeline() -> None:
    always = load_calendar("24x7")
    start = sh("2026-01-01T00:00")
    assert always.business_seconds(start, sh("2026-01-02T00:00")) == 24 * H  # caches 2026-27
    end = sh("2031-06-01T00:00")
    assert always.business_seconds(start, end) == (end - start).total_seconds()
    assert always.add(start, (end - start).total_seconds()) == end


def test_a_naive_time_is_refused_with_the_whole_message() -> None:
    with pytest.raises(CalendarError) as info:
        load_calendar("24x7").is_open(datetime(2026, 11, 23, 9))
    assert str(info.value) == "naive datetime 2026-11-23T09:00:00: a time zone is required"


def test_next_open_returns_the_asked_instant_itself_when_open() -> None:
    cn = load_calendar("cn-workdays")
    asked = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)  # 10:00 in Beijing, a Monday
    assert cn.next_open(asked) is asked
    closed = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)  # 20:00 in Beijing
    assert cn.next_open(closed) == sh("2026-11-24T09:00")


def test_days_the_file_lists_are_exact_even_in_estimated_years(tmp_path: Path) -> None:
    write_rules(
        tmp_path,
        {
            "calendars/far.yaml": (
                "timezone: Asia/Shanghai\nhours: {mon-fri: '09:00-18:00'}\n"
                "workday_hours: '09:00-18:00'\nholidays: {source: cn, add: [2199-03-04]}\n"
                "working_days: {add: [2199-03-07]}\n"
                "official:\n  2197:\n    holidays: [2197-01-01]\n"
            )
        },
    )
    far = load_calendar("far", tmp_path)
    assert not far.is_exact(date(2199, 3, 3))  # chinese-calendar does not reach 2199
    assert far.is_exact(date(2199, 3, 4))  # an extra holiday the file lists
    assert far.is_exact(date(2199, 3, 7))  # an extra working day the file lists
    assert far.is_exact(date(2197, 5, 5))  # a year with its official schedule
    assert far.estimated_years(sh("2196-06-01T00:00"), sh("2198-06-01T00:00")) == (2196, 2198)
    # Years are the calendar's own: 20:00 UTC on New Year's Eve is already the next year here.
    eve = datetime(2198, 12, 31, 20, 0, tzinfo=UTC)
    assert far.estimated_years(eve, eve + timedelta(days=30)) == (2199,)
    assert far.estimated_years(eve - timedelta(days=30), eve) == (2198, 2199)


def test_the_first_query_of_a_calendar_west_of_utc_on_new_years_eve(tmp_path: Path) -> None:
    """20:00 on December 31 in New York is already next year in UTC: the cached years are the
    calendar's own, so the first query still counts the evening."""
    write_rules(
        tmp_path,
        {"calendars/ny.yaml": "timezone: America/New_York\nhours: {daily: '00:00-24:00'}\n"},
    )
    ny = load_calendar("ny", tmp_path)
    tz = ZoneInfo("America/New_York")
    eve = datetime(2026, 12, 31, 20, 0, tzinfo=tz)
    assert ny.business_seconds(eve, datetime(2027, 1, 1, 4, 0, tzinfo=tz)) == 8 * H


@pytest.mark.parametrize("after_midnight", [timedelta(seconds=1), timedelta(hours=5)])
def test_a_query_just_past_the_cached_years_is_counted(
    tmp_path: Path, after_midnight: timedelta
) -> None:
    """The timeline cached for a query in 2026 ends at local midnight of 2028-01-01; a query
    ending a second or hours after it extends the timeline instead of stopping at its end."""
    always = own_calendar(tmp_path, "daily: '00:00-24:00'")  # its own cache: nothing cached
    start = sh("2026-06-01T00:00")
    end = sh("2028-01-01T00:00") + after_midnight
    assert always.business_seconds(start, end) == (end - start).total_seconds()


def test_the_next_opening_beyond_the_cached_years(tmp_path: Path) -> None:
    """Friday 2027-12-31 20:00, with only 2026-2027 cached: the next opening is found in 2028."""
    weekdays = own_calendar(tmp_path, "daily: '09:00-17:00'")
    assert weekdays.is_open(sh("2026-03-02T10:00"))  # caches 2026-2027
    assert weekdays.next_open(sh("2027-12-31T20:00")) == sh("2028-01-01T09:00")


def test_a_deadline_years_past_the_cached_timeline(tmp_path: Path) -> None:
    """The first question of a fresh calendar is a deadline five years on: the timeline grows
    a year at a time until it holds it."""
    always = own_calendar(tmp_path, "daily: '00:00-24:00'")
    start = sh("2026-06-01T00:00")
    end = sh("2031-06-01T00:00")
    assert always.add(start, (end - start).total_seconds()) == end
    weekdays = own_calendar(tmp_path / "w", "mon-fri: '09:00-17:00'")
    day, left = date(2026, 6, 1), 1044  # about four years of working days, counted by hand:
    while True:
        left -= day.weekday() < 5
        if left == 0:
            break
        day += timedelta(days=1)
    expected = sh(f"{day.isoformat()}T17:00")  # the end of the 1,044th working day
    assert weekdays.add(sh("2026-06-01T09:00"), 8 * H * 1044) == expected
