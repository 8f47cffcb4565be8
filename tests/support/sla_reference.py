"""A brute-force business-time reference: step minute by minute and count.

Written independently of the engine: it knows each calendar's rules directly (chinese-calendar
for China's working days, zoneinfo for wall time) and never uses collector.sla. All inputs are
whole epoch minutes, so a minute [m, m+1) is either wholly open or wholly closed and the count
is exact. Slow on purpose: it is the baseline the engine is checked and benchmarked against.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime
from functools import lru_cache
from zoneinfo import ZoneInfo

import chinese_calendar

OpenMinute = Callable[[int], bool]  # epoch minute -> open?

_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
_SHANGHAI_OFFSET = 8 * 60  # Asia/Shanghai has had no DST since 1991


@lru_cache(maxsize=4096)
def _cn_workday(ordinal: int) -> bool:
    return bool(chinese_calendar.is_workday(date.fromordinal(ordinal)))


def _always(minute: int) -> bool:
    return True


def _every_day_0900_1700(minute: int) -> bool:
    return 540 <= (minute + _SHANGHAI_OFFSET) % 1440 < 1020


def _cn_workdays(minute: int) -> bool:
    local = minute + _SHANGHAI_OFFSET
    return 540 <= local % 1440 < 1080 and _cn_workday(_EPOCH_ORDINAL + local // 1440)


def _office_with_lunch(minute: int) -> bool:
    """Mon-Fri 09:00-12:00 and 13:00-18:00 Beijing, no holidays."""
    local = minute + _SHANGHAI_OFFSET
    weekday = (_EPOCH_ORDINAL + local // 1440 - 1) % 7  # date.weekday(): Monday = 0
    of_day = local % 1440
    return weekday < 5 and (540 <= of_day < 720 or 780 <= of_day < 1080)


_BERLIN = ZoneInfo("Europe/Berlin")


def _berlin_night(minute: int) -> bool:
    """Every day 01:00-04:00 wall time in Berlin (2 or 4 real hours on DST days)."""
    wall = datetime.fromtimestamp(minute * 60, _BERLIN)
    return 1 <= wall.hour < 4


REFERENCES: dict[str, OpenMinute] = {
    "24x7": _always,
    "every-day-0900-1700": _every_day_0900_1700,
    "cn-workdays": _cn_workdays,
    "office-lunch": _office_with_lunch,
    "berlin-night": _berlin_night,
}

# The calendar files the engine reads for the two test-only references above.
TEST_CALENDARS = {
    "calendars/office-lunch.yaml": (
        "timezone: Asia/Shanghai\nhours: {mon-fri: ['09:00-12:00', '13:00-18:00']}\n"
    ),
    "calendars/berlin-night.yaml": "timezone: Europe/Berlin\nhours: {daily: '01:00-04:00'}\n",
}


def _paused(minute: int, pauses: Sequence[tuple[int, int]]) -> bool:
    return any(start <= minute < end for start, end in pauses)


def due_minute(
    is_open: OpenMinute, start: int, minutes: int, pauses: Sequence[tuple[int, int]] = ()
) -> int:
    """The first minute boundary where ``minutes`` open, unpaused minutes have passed
    (0 minutes: the first minute that runs)."""
    m = start
    if minutes == 0:
        while not is_open(m) or _paused(m, pauses):
            m += 1
        return m
    counted = 0
    while True:
        if is_open(m) and not _paused(m, pauses):
            counted += 1
            if counted == minutes:
                return m + 1
        m += 1


def business_minutes(
    is_open: OpenMinute, start: int, end: int, pauses: Sequence[tuple[int, int]] = ()
) -> int:
    return sum(1 for m in range(start, end) if is_open(m) and not _paused(m, pauses))


def to_minute(at: datetime) -> int:
    seconds = int(at.timestamp())
    assert seconds % 60 == 0, at
    return seconds // 60


def from_minute(minute: int) -> datetime:
    return datetime.fromtimestamp(minute * 60, UTC)
