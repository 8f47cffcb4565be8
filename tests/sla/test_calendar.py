"""Business-time semantics, as tables of datetimes (docs/sla.md states each rule)."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from collector.sla.calendar import Calendar, CalendarError, load_calendar
from tests.support.sla import sh, write_rules

H = 3600
M = 60


@pytest.fixture(scope="module")
def cn() -> Calendar:
    return load_calendar("cn-workdays")


# (start, business seconds, expected deadline), cn-workdays (Mon-Fri 09:00-18:00 Beijing)
CN_DEADLINES = [
    # inside a plain working day
    ("2026-11-23T10:00", 45 * M, "2026-11-23T10:45"),
    # a deadline that falls exactly at closing time is due at closing time, not next morning
    ("2026-10-09T17:15", 45 * M, "2026-10-09T18:00"),
    ("2026-11-23T09:00", 9 * H, "2026-11-23T18:00"),
    # one minute more spills into the next working day
    ("2026-11-23T17:15", 46 * M, "2026-11-24T09:01"),
    # a clock started outside working time starts at the next opening
    ("2026-11-23T03:00", 45 * M, "2026-11-23T09:45"),
    ("2026-11-23T18:00", 45 * M, "2026-11-24T09:45"),
    ("2026-11-27T17:30", 1 * H, "2026-11-30T09:30"),  # Friday evening -> Monday
    # a start on a Saturday before a make-up working day (Sun 2026-09-20 is worked)
    ("2026-09-19T10:00", 45 * M, "2026-09-20T09:45"),
    ("2026-09-19T10:00", 10 * H, "2026-09-21T10:00"),
    # the make-up Saturday before Spring Festival (2026-02-14), then 15-23 Feb off
    ("2026-02-13T17:30", 2 * H, "2026-02-14T10:30"),
    ("2026-02-14T17:30", 2 * H, "2026-02-24T10:30"),
    ("2026-02-16T03:00", 45 * M, "2026-02-24T09:45"),
    # National Day 2026: 1-7 Oct off, Sat 10 Oct worked
    ("2026-09-30T17:00", 5 * 9 * H, "2026-10-13T17:00"),
    ("2026-10-01T03:00", 45 * M, "2026-10-08T09:45"),
    ("2026-10-09T17:30", 1 * H, "2026-10-10T09:30"),
    # across the year end into 2027 (computed holidays: 1 Jan off)
    ("2026-12-31T17:00", 2 * H, "2027-01-04T10:00"),
]


@pytest.mark.parametrize(("start", "seconds", "due"), CN_DEADLINES)
def test_cn_workdays_deadlines(cn: Calendar, start: str, seconds: int, due: str) -> None:
    assert cn.add(sh(start), seconds) == sh(due)
    # and the elapsed business time at the deadline is exactly the target
    assert cn.business_seconds(sh(start), sh(due)) == seconds


@pytest.mark.parametrize(
    ("start", "due"),
    [
        ("2026-11-23T10:00", "2026-11-23T10:00"),  # open: due at once
        ("2026-11-23T09:00", "2026-11-23T09:00"),  # opening instant runs
        ("2026-11-23T03:00", "2026-11-23T09:00"),
        ("2026-11-23T18:00", "2026-11-24T09:00"),  # closing instant does not run
        ("2026-10-01T03:00", "2026-10-08T09:00"),
        ("2026-10-09T18:30", "2026-10-10T09:00"),  # the make-up Saturday
    ],
)
def test_zero_target_is_due_at_the_first_running_instant(
    cn: Calendar, start: str, due: str
) -> None:
    assert cn.add(sh(start), 0) == sh(due)


@pytest.mark.parametrize(
    ("start", "seconds", "pauses", "due"),
    [
        # a pause inside working hours adds its length
        ("2026-11-23T09:00", 2 * H, [("2026-11-23T10:00", "2026-11-23T10:30")], "2026-11-23T11:30"),
        # a pause across closing time: 16:00-17:30 runs, then nothing until 09:30
        ("2026-11-23T16:00", 4 * H, [("2026-11-23T17:30", "2026-11-24T09:30")], "2026-11-24T12:00"),
        # a pause wholly outside working time changes nothing
        ("2026-11-23T16:00", 4 * H, [("2026-11-23T19:00", "2026-11-24T08:00")], "2026-11-24T11:00"),
        # a pause that covers the start delays the start to its end
        ("2026-11-23T09:00", 1 * H, [("2026-11-23T08:00", "2026-11-23T10:00")], "2026-11-23T11:00"),
        # a pause that starts exactly when the target is met does not move it
        ("2026-11-23T09:00", 1 * H, [("2026-11-23T10:00", "2026-11-23T12:00")], "2026-11-23T10:00"),
        # overlapping pauses count once
        (
            "2026-11-23T09:00",
            2 * H,
            [("2026-11-23T10:00", "2026-11-23T11:00"), ("2026-11-23T10:30", "2026-11-23T11:30")],
            "2026-11-23T12:30",
        ),
        # a pause that ended before the start is ignored
        ("2026-11-23T09:00", 1 * H, [("2026-11-22T10:00", "2026-11-22T11:00")], "2026-11-23T10:00"),
        # zero target paused at the opening: runs at the end of the pause
        ("2026-11-23T08:00", 0, [("2026-11-23T08:30", "2026-11-23T09:20")], "2026-11-23T09:20"),
    ],
)
def test_pauses(
    cn: Calendar, start: str, seconds: int, pauses: list[tuple[str, str]], due: str
) -> None:
    paused = [(sh(a), sh(b)) for a, b in pauses]
    assert cn.add(sh(start), seconds, paused) == sh(due)
    if seconds:
        assert cn.business_seconds(sh(start), sh(due), paused) == seconds


def test_business_seconds_and_openness(cn: Calendar) -> None:
    assert cn.business_seconds(sh("2026-11-23T17:00"), sh("2026-11-24T10:00")) == 2 * H
    assert cn.business_seconds(sh("2026-11-24T10:00"), sh("2026-11-23T17:00")) == 0
    assert cn.business_seconds(sh("2026-09-28T00:00"), sh("2026-10-12T00:00")) == 6 * 9 * H
    assert cn.is_open(sh("2026-11-23T09:00"))
    assert not cn.is_open(sh("2026-11-23T18:00"))
    assert cn.is_open(sh("2026-10-10T12:00"))  # make-up Saturday
    assert not cn.is_open(sh("2026-10-05T12:00"))  # National Day (a Monday)
    assert cn.next_open(sh("2026-11-23T12:00")) == sh("2026-11-23T12:00")
    assert cn.next_open(sh("2026-11-28T12:00")) == sh("2026-11-30T09:00")
    assert cn.workday_seconds == 9 * H
    # other zones in, the calendar's zone out
    utc_start = datetime(2026, 11, 23, 1, 0, tzinfo=ZoneInfo("UTC"))  # 09:00 Beijing
    due = cn.add(utc_start, H)
    assert due == sh("2026-11-23T10:00") and due.utcoffset() == timedelta(hours=8)


def test_naive_datetimes_and_bad_pauses_are_errors(cn: Calendar) -> None:
    with pytest.raises(CalendarError, match="naive"):
        cn.add(datetime(2026, 11, 23, 9), H)
    with pytest.raises(CalendarError, match="pause ends"):
        cn.add(sh("2026-11-23T09:00"), H, [(sh("2026-11-23T11:00"), sh("2026-11-23T10:00"))])


def test_working_days_use_the_regular_day_length() -> None:
    every_day = load_calendar("every-day-0900-1700")
    always = load_calendar("24x7")
    assert every_day.workday_seconds == 8 * H
    assert always.workday_seconds == 24 * H
    # 2wd on the 7x8 hotline: two 8 h days, holidays included
    assert every_day.add(sh("2026-10-01T10:00"), 16 * H) == sh("2026-10-03T10:00")
    assert always.add(sh("2026-10-01T10:00"), 24 * H) == sh("2026-10-02T10:00")


def test_years_beyond_chinese_calendar_fall_back_without_crashing(cn: Calendar) -> None:
    assert cn.is_exact(date(2026, 10, 1))
    assert not cn.is_exact(date(2030, 10, 1))
    assert not cn.is_open(sh("2030-10-01T10:00"))  # National Day, from the holidays package
    assert cn.is_open(sh("2030-10-08T10:00"))
    assert cn.add(sh("2030-09-30T17:00"), 2 * H).date() > date(2030, 10, 1)
    assert not cn.is_exact(date(2003, 5, 1))


def test_lunch_break_calendar(tmp_path: Path) -> None:
    rules = write_rules(
        tmp_path,
        {
            "calendars/office.yaml": """
                timezone: Asia/Shanghai
                hours:
                  mon-fri: ["09:00-12:00", "13:00-18:00"]
            """
        },
    )
    office = load_calendar("office", rules)
    assert office.workday_seconds == 8 * H
    assert office.add(sh("2026-11-23T10:00"), 4 * H) == sh("2026-11-23T15:00")
    assert office.add(sh("2026-11-23T09:00"), 3 * H) == sh("2026-11-23T12:00")  # at the break
    assert office.add(sh("2026-11-23T12:00"), 0) == sh("2026-11-23T13:00")
    assert office.add(sh("2026-11-23T12:30"), 30 * M) == sh("2026-11-23T13:30")
    assert office.business_seconds(sh("2026-11-23T11:00"), sh("2026-11-23T14:00")) == 2 * H
    # one working day of 8 h from 17:00: 1 h today, 3 h + 4 h tomorrow
    assert office.add(sh("2026-11-23T17:00"), 8 * H) == sh("2026-11-24T17:00")


def test_24x7_across_dst_changes_counts_real_time(tmp_path: Path) -> None:
    rules = write_rules(
        tmp_path,
        {"calendars/berlin.yaml": "timezone: Europe/Berlin\nhours: {daily: '00:00-24:00'}\n"},
    )
    berlin = load_calendar("berlin", rules)
    tz = ZoneInfo("Europe/Berlin")
    # spring forward (29 Mar 2026, 02:00 -> 03:00): 4 h of real time show as 5 wall hours
    due = berlin.add(datetime(2026, 3, 29, 1, 0, tzinfo=tz), 4 * H)
    assert due == datetime(2026, 3, 29, 6, 0, tzinfo=tz)
    assert due.isoformat() == "2026-03-29T06:00:00+02:00"
    # fall back (25 Oct 2026, 03:00 -> 02:00): 4 h of real time show as 3 wall hours
    due = berlin.add(datetime(2026, 10, 25, 1, 0, tzinfo=tz), 4 * H)
    assert due.isoformat() == "2026-10-25T04:00:00+01:00"
    assert (
        berlin.business_seconds(
            datetime(2026, 10, 24, 12, 0, tzinfo=tz), datetime(2026, 10, 25, 12, 0, tzinfo=tz)
        )
        == 25 * H
    )


def test_calendar_file_adds_and_removes_dates(tmp_path: Path) -> None:
    rules = write_rules(
        tmp_path,
        {
            "calendars/company.yaml": """
                timezone: Asia/Shanghai
                hours: {mon-fri: "09:00-18:00"}
                holidays:
                  source: cn
                  add: [2026-11-23]        # a company day off
                  remove: [2026-10-07]     # worked although the State Council says off
                working_days:
                  add: [2026-11-28]        # a Saturday worked
                  remove: [2026-10-10]     # the make-up Saturday not worked here
            """,
            "calendars/berlin-office.yaml": """
                timezone: Europe/Berlin
                hours: {mon-fri: "08:00-16:00"}
                holidays: {source: DE, subdivision: BY}
            """,
        },
    )
    company = load_calendar("company", rules)
    assert not company.is_open(sh("2026-11-23T10:00"))
    assert company.is_open(sh("2026-11-28T10:00"))
    assert not company.is_open(sh("2026-10-10T10:00"))
    assert company.is_open(sh("2026-10-07T10:00"))
    assert not company.is_open(sh("2026-10-06T10:00"))
    berlin = load_calendar("berlin-office", rules)
    tz = ZoneInfo("Europe/Berlin")
    assert not berlin.is_open(datetime(2026, 12, 25, 10, tzinfo=tz))  # Christmas
    assert not berlin.is_open(datetime(2026, 1, 6, 10, tzinfo=tz))  # Epiphany in Bavaria
    assert berlin.is_open(datetime(2026, 1, 7, 10, tzinfo=tz))


def test_unknown_calendar_names_the_presets() -> None:
    with pytest.raises(ValueError, match="unknown calendar 'cn'") as info:
        load_calendar("cn")
    assert "24x7, cn-workdays, every-day-0900-1700" in str(info.value)


def test_far_years_and_holidays_added_by_the_file(tmp_path: Path, cn: Calendar) -> None:
    # far apart queries on one calendar: the cached years grow, answers stay right
    assert cn.add(sh("2040-06-04T09:00"), H) == sh("2040-06-04T10:00")
    assert cn.add(sh("2026-11-23T09:00"), H) == sh("2026-11-23T10:00")
    assert cn.business_seconds(sh("2026-11-23T09:00"), sh("2040-06-04T10:00")) > 0
    days = ", ".join(str(date(2026, 1, 1) + timedelta(days=i)) for i in range(0, 7))
    rules = write_rules(
        tmp_path,
        {
            "calendars/never.yaml": f"""
                timezone: UTC
                hours: {{mon-fri: "09:00-18:00"}}
                holidays: {{source: none, add: [{days}]}}
            """
        },
    )
    never = load_calendar("never", rules)
    assert never.add(datetime(2026, 1, 1, tzinfo=ZoneInfo("UTC")), H).date() == date(2026, 1, 8)
