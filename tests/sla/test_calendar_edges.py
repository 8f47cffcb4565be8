"""Calendar files at their edges: minutes in spans, the last minute of the day, spans that touch,
day ranges, the regular working day, a year's official schedule, dates written as text."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from collector.config.errors import ConfigError
from collector.sla.businesstime import Calendar
from collector.sla.calendar import (
    calendar_names,
    estimated_calendars,
    load_calendar,
    parse_span,
    regular_workday_seconds,
    regular_workday_spans,
)
from tests.support.sla import write_rules

H = 3600
HEAD = "timezone: Asia/Shanghai\n"


def calendar(tmp_path: Path, text: str, name: str = "c") -> Calendar:
    write_rules(tmp_path, {f"calendars/{name}.yaml": HEAD + text})
    return load_calendar(name, tmp_path)


def refusal(tmp_path: Path, text: str) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        calendar(tmp_path, text)
    return info.value


@pytest.mark.parametrize(
    ("text", "span"),
    [
        ("08:30-12:15", (8 * H + 30 * 60, 12 * H + 15 * 60)),
        ("00:00-24:00", (0, 24 * H)),
        ("23:00-23:59", (23 * H, 23 * H + 59 * 60)),
        ("9:05 - 9:06", (9 * H + 5 * 60, 9 * H + 6 * 60)),
    ],
)
def test_spans_count_their_minutes(text: str, span: tuple[int, int]) -> None:
    assert parse_span(text) == span


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("09:60-10:00", "bad time span '09:60-10:00': 09:60 is not a time of day"),
        ("09:00-24:30", "bad time span '09:00-24:30': 24:30 is not a time of day"),
        ("09:00-25:00", "bad time span '09:00-25:00': 25:00 is not a time of day"),
        ("09:00-09:00", "bad time span '09:00-09:00': ends before it starts"),
        ("9-18", "bad time span '9-18': expected HH:MM-HH:MM, like 09:00-18:00"),
    ],
)
def test_bad_spans_are_refused_with_the_whole_message(text: str, problem: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_span(text)
    assert str(info.value) == problem


def test_spans_may_touch_but_not_overlap(tmp_path: Path) -> None:
    touching = calendar(tmp_path, "hours:\n  mon: ['12:00-18:00', '09:00-12:00']\n")
    assert touching.weekly[0] == ((9 * H, 12 * H), (12 * H, 18 * H))
    err = refusal(tmp_path / "o", "hours:\n  mon: ['09:00-12:01', '12:00-18:00']\n")
    assert (err.line, err.key, err.problem) == (3, "hours.mon", "time spans overlap")


def test_closed_among_spans_is_skipped(tmp_path: Path) -> None:
    cal = calendar(tmp_path, "hours:\n  mon: [closed, '09:00-12:00']\n  tue: closed\n")
    assert cal.weekly[:2] == (((9 * H, 12 * H),), ())


@pytest.mark.parametrize(
    ("key", "days"),
    [
        ("every_day", range(7)),
        ("mon-sun", range(7)),
        ("daily", range(7)),
        ("sat-sat", [5]),
        ("TUE-thu", [1, 2, 3]),
    ],
)
def test_day_keys(tmp_path: Path, key: str, days: range | list[int]) -> None:
    cal = calendar(tmp_path, f"hours:\n  {key}: '09:00-17:00'\n")
    assert [i for i, spans in enumerate(cal.weekly) if spans] == list(days)


@pytest.mark.parametrize("key", ["mon-funday", "funday-fri", "fri-mon", "mon-wed-fri"])
def test_bad_day_keys_are_refused(tmp_path: Path, key: str) -> None:
    err = refusal(tmp_path, f"hours:\n  {key}: '09:00-17:00'\n")
    assert err.problem == (
        f"unknown day {key!r}: expected mon..sun, a range like mon-fri, or daily"
    )


def test_the_regular_working_day_is_the_most_common_length() -> None:
    eight, ten, four = ((9 * H, 17 * H),), ((8 * H, 18 * H),), ((9 * H, 13 * H),)
    week = (four, eight, eight, eight, ten, (), ())
    assert regular_workday_seconds(week) == 8 * H  # not the longest day
    assert regular_workday_spans(week) == eight  # Tuesday's, not Monday's short day
    assert regular_workday_seconds((four, four, ten, ten, (), (), ())) == 10 * H  # tie: longest
    assert regular_workday_seconds(((),) * 7) == 0.0
    assert regular_workday_spans(((),) * 7) == ()


def test_a_calendar_takes_its_regular_day(tmp_path: Path) -> None:
    cal = calendar(tmp_path, "hours:\n  mon: '09:00-13:00'\n  tue-fri: '08:30-17:00'\n")
    assert cal.workday_seconds == 8.5 * H
    assert cal.workday_spans == ((8 * H + 30 * 60, 17 * H),)


OFFICIAL_HEAD = "hours: {mon-fri: '09:00-18:00'}\nholidays: {source: cn}\nofficial:\n"


@pytest.mark.parametrize("year", [1901, 2199])
def test_official_years_inside_the_range_are_read(tmp_path: Path, year: int) -> None:
    cal = calendar(
        tmp_path,
        OFFICIAL_HEAD + f"  {year}:\n    holidays: [{year}-01-01]\n"
        f"    working_days: ['{year}-01-05']\n    source: gazette\n",
    )
    assert cal.official == {year: (frozenset({date(year, 1, 1)}), frozenset({date(year, 1, 5)}))}


@pytest.mark.parametrize(
    ("year_block", "line", "key", "problem"),
    [
        (
            "  1900:\n    holidays: []\n",
            6,
            "official.1900",
            "expected a year like 2027, got '1900'",
        ),
        (
            "  2200:\n    holidays: []\n",
            6,
            "official.2200",
            "expected a year like 2027, got '2200'",
        ),
        (
            "  2027:\n    holidays: []\n    colour: red\n",
            7,
            "official.2027.colour",
            "unknown key (expected one of: holidays, source, working_days)",
        ),
        (
            "  2027:\n    working_days: []\n",
            6,
            "official.2027",
            "missing key 'holidays' (the year's public holidays)",
        ),
        (
            "  2027:\n    holidays: [2027-01-01]\n    working_days: [2028-01-02]\n",
            7,
            "official.2027.working_days",
            "working day 2028-01-02 is not in 2027",
        ),
        (
            "  2027:\n    holidays: [2026-12-31]\n",
            6,
            "official.2027.holidays",
            "holiday 2026-12-31 is not in 2027",
        ),
        (
            "  2027:\n    holidays: [2027-01-02]\n    working_days: [2027-01-02]\n",
            7,
            "official.2027.working_days",
            "2027-01-02 is both a holiday and a working day",
        ),
    ],
)
def test_a_bad_official_year_is_refused_with_the_whole_message(
    tmp_path: Path, year_block: str, line: int, key: str, problem: str
) -> None:
    err = refusal(tmp_path, OFFICIAL_HEAD + year_block)
    assert (err.line, err.key, err.problem) == (line, key, problem)


def test_dates_may_be_written_as_text_but_not_as_times(tmp_path: Path) -> None:
    cal = calendar(tmp_path, "hours: {mon-fri: '09:00-18:00'}\nholidays:\n  add: ['2026-11-23']\n")
    assert cal.extra_holidays == {date(2026, 11, 23)}
    assert not cal.is_open(datetime(2026, 11, 23, 10, tzinfo=ZoneInfo("Asia/Shanghai")))
    err = refusal(
        tmp_path / "t", "hours: {mon-fri: '09:00-18:00'}\nholidays:\n  add: [2026-11-23 10:00:00]\n"
    )
    assert (err.line, err.key) == (4, "holidays.add[0]")
    assert err.problem.startswith("expected a date like 2026-10-01, got ")


def test_calendar_names_and_estimates_of_a_rules_folder(tmp_path: Path) -> None:
    write_rules(
        tmp_path,
        {
            "calendars/far-cn.yaml": HEAD + "hours: {mon-fri: '09:00-18:00'}\n"
            "holidays: {source: cn}\n",
            "calendars/plain.yaml": HEAD + "hours: {mon-fri: '09:00-18:00'}\n",
        },
    )
    assert {"far-cn", "plain"} <= set(calendar_names(tmp_path))
    far = datetime(2199, 6, 1, tzinfo=ZoneInfo("Asia/Shanghai"))  # beyond the published years
    assert estimated_calendars(far, tmp_path, names=["plain"]) == {}
    assert estimated_calendars(far, tmp_path, names=["far-cn"]) == {"far-cn": (2199, 2200)}
    assert "far-cn" in estimated_calendars(far, tmp_path)


@pytest.mark.parametrize(
    ("text", "line", "key", "problem"),
    [
        ("", 1, "", "missing key 'hours' (weekly working hours, e.g. mon-fri: 09:00-18:00)"),
        ("hours: {mon-sun: closed}\n", 2, "hours", "no working hours on any day of the week"),
        (
            "hours: {mon: '09:00-17:00'}\nworkday_length: 0h\n",
            3,
            "workday_length",
            "must be a positive fixed duration like 8h",
        ),
        (
            "hours: {mon: '09:00-17:00'}\nholidays: {source: none, colour: red}\n",
            3,
            "holidays.colour",
            "unknown key (expected one of: add, remove, source, subdivision)",
        ),
        (
            "hours: {mon: '09:00-17:00'}\nworking_days: {add: [], colour: red}\n",
            3,
            "working_days.colour",
            "unknown key (expected one of: add, remove)",
        ),
        (
            "hours: {mon: '09:00-17:00'}\nholidays: {add: [2026-11-28]}\n"
            "working_days: {add: [2026-11-29, 2026-11-28]}\n",
            4,
            "working_days.add",
            "2026-11-28 is both a holiday and a working day",
        ),
    ],
)
def test_a_bad_calendar_is_refused_with_the_whole_message(
    tmp_path: Path, text: str, line: int, key: str, problem: str
) -> None:
    err = refusal(tmp_path, text)
    assert (err.line, err.key, err.problem) == (line, key, problem)


def test_a_calendar_without_a_time_zone_is_refused(tmp_path: Path) -> None:
    write_rules(tmp_path, {"calendars/c.yaml": "hours: {mon: '09:00-17:00'}\n"})  # no HEAD
    with pytest.raises(ConfigError) as info:
        load_calendar("c", tmp_path)
    assert (info.value.line, info.value.key, info.value.problem) == (
        1,
        "",
        "missing key 'timezone' (an IANA name like Asia/Shanghai)",
    )


def test_a_bad_workday_length_is_refused_with_the_durations_message(tmp_path: Path) -> None:
    from collector.config.durations import parse_duration

    with pytest.raises(ValueError) as expected:
        parse_duration("9 hours")
    err = refusal(tmp_path, "hours: {mon: '09:00-17:00'}\nworkday_length: 9 hours\n")
    assert (err.line, err.key, err.problem) == (3, "workday_length", str(expected.value))


def test_workday_hours_length_and_the_plain_defaults(tmp_path: Path) -> None:
    plain = calendar(tmp_path, "hours: {mon-fri: '09:00-17:00'}\n")
    assert len(plain.weekly) == 7
    assert (plain.extra_holidays, plain.not_holidays) == (frozenset(), frozenset())
    assert (plain.extra_workdays, plain.not_workdays) == (frozenset(), frozenset())
    assert plain.workday_seconds == 8 * H
    own = calendar(
        tmp_path / "own",
        "hours: {mon-fri: '09:00-17:00'}\nworkday_hours: '10:00-16:00'\nworkday_length: 9h\n"
        "working_days: {remove: [2026-10-10]}\n",
    )
    assert own.workday_spans == ((10 * H, 16 * H),)
    assert own.workday_seconds == 9 * H
    assert (own.extra_workdays, own.not_workdays) == (frozenset(), frozenset({date(2026, 10, 10)}))
    added = calendar(tmp_path / "add", "hours: {mon-fri: '09:00-17:00'}\nworking_days:\n"
                     "  add: [2026-11-28]\n")  # fmt: skip
    assert (added.extra_workdays, added.not_workdays) == (
        frozenset({date(2026, 11, 28)}),
        frozenset(),
    )


@pytest.mark.parametrize(
    "tail",
    [
        "holidays: {source: cn}\n",  # China's make-up Saturdays need hours
        "working_days: {add: [2026-11-28]}\n",
        "official:\n  2027:\n    holidays: [2027-01-01]\n    working_days: [2027-01-09]\n",
    ],
)
def test_working_days_without_hours_are_refused(tmp_path: Path, tail: str) -> None:
    err = refusal(tmp_path, "hours: {mon-fri: '09:00-17:00'}\nworkday_hours: closed\n" + tail)
    assert (err.line, err.key, err.problem) == (
        1,
        "",
        "working days without hours: set 'workday_hours'",
    )


def test_no_working_days_need_no_hours(tmp_path: Path) -> None:
    cal = calendar(
        tmp_path,
        "hours: {mon-fri: '09:00-17:00'}\nworkday_hours: closed\nholidays: {source: DE}\n"
        "official:\n  2027:\n    holidays: [2027-01-01]\n",
    )
    assert cal.workday_spans == ()


def test_a_calendar_keeps_its_description(tmp_path: Path) -> None:
    described = calendar(tmp_path, "description: office hours\nhours: {mon: '09:00-17:00'}\n")
    assert described.description == "office hours"
    assert calendar(tmp_path / "plain", "hours: {mon: '09:00-17:00'}\n").description == ""


def test_a_calendar_path_that_cannot_be_read_is_named(tmp_path: Path) -> None:
    gone = tmp_path / "calendars" / "gone.yaml"
    with pytest.raises(ConfigError) as info:
        load_calendar(gone)
    err = info.value
    assert (err.key, err.problem) == ("", "cannot read: No such file or directory")
    assert str(err) == f"{gone}: cannot read: No such file or directory"
