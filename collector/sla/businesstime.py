"""Business-time arithmetic on a ``Calendar``: when it is open, and deadlines.

A ``Calendar`` is a time zone, weekly working hours (several spans a day allowed), public
holidays from a ``HolidaySource`` plus the file's own additions and removals, and extra working
days (China's make-up working days). All instants are tz-aware datetimes; business time is real
elapsed seconds while the calendar is open, so DST changes are handled by the time zone.
Reading calendar files is ``collector.sla.calendar``'s job; nothing here does I/O.

Speed: the calendar's open intervals are materialised per year as epoch-second lists with
cumulative business seconds at each interval's start (a ``_Timeline``). "How much business
time between a and b" is then two binary searches, and "when has ``n`` seconds of business time
elapsed" is one binary search over the cumulative sums: the cost does not depend on how many
minutes or days are crossed.
"""

from __future__ import annotations

import threading
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, tzinfo

from collector.sla.holidaysource import DayKind, HolidaySource

Span = tuple[int, int]  # seconds since local midnight, start < end <= 86400
Spans = tuple[Span, ...]
Pauses = Sequence[tuple[datetime, datetime]]

_MAX_YEARS_AHEAD = 50  # a calendar with no working time in 50 years is an error, not a hang


class CalendarError(ValueError):
    """A query the calendar cannot answer (naive datetime, no working time ahead).

    Not a file error: a bad calendar file is a ``ConfigError`` from ``load_calendar``."""


@dataclass(frozen=True, slots=True)
class _Timeline:
    """Open intervals for local dates [first, last) as epoch seconds, merged and sorted."""

    first: date
    last: date
    lo: float  # epoch of ``first`` 00:00 local
    hi: float  # epoch of ``last`` 00:00 local
    starts: list[float]
    ends: list[float]
    cum_start: list[float]  # business seconds from ``lo`` to starts[i]
    cum_end: list[float]  # business seconds from ``lo`` to ends[i]

    def cum(self, t: float) -> float:
        """Business seconds from ``lo`` to ``t`` (lo <= t <= hi)."""
        i = bisect_right(self.starts, t) - 1
        if i < 0:
            return 0.0
        end = self.ends[i]
        return self.cum_start[i] + ((t if t < end else end) - self.starts[i])


def _local_epoch(day: date, seconds: int, tz: tzinfo) -> float:
    """The instant of a wall-clock time of a local date (24:00 = next midnight). Aware
    datetime arithmetic is wall-clock arithmetic; the zone then gives the real offset."""
    if seconds == 86400:
        return datetime.combine(day + timedelta(days=1), time(), tzinfo=tz).timestamp()
    return (datetime.combine(day, time(), tzinfo=tz) + timedelta(seconds=seconds)).timestamp()


@dataclass(frozen=True)
class Calendar:
    """A business calendar; load one with ``collector.sla.calendar.load_calendar``."""

    name: str
    tz: tzinfo
    weekly: tuple[Spans, ...]  # Monday .. Sunday
    workday_spans: Spans  # hours of extra / make-up working days
    workday_seconds: float  # regular working-day length, the unit of ``Nwd``
    holidays: HolidaySource
    extra_holidays: frozenset[date] = frozenset()
    not_holidays: frozenset[date] = frozenset()
    extra_workdays: frozenset[date] = frozenset()
    not_workdays: frozenset[date] = frozenset()
    description: str = ""
    # Years whose official schedule the calendar file lists: year -> (holidays, make-up
    # working days). It replaces the holiday source for that year, estimate or not.
    official: Mapping[int, tuple[frozenset[date], frozenset[date]]] = field(
        default_factory=dict, compare=False, hash=False
    )
    _lock: threading.Lock = field(
        default_factory=threading.Lock, compare=False, repr=False, hash=False
    )
    # The materialised timeline, replaced (never mutated) as queries reach further years.
    _tl: _Timeline | None = field(default=None, compare=False, repr=False, hash=False)

    def _set_timeline(self, tl: _Timeline) -> _Timeline:
        object.__setattr__(self, "_tl", tl)  # a cache, not state: the calendar stays immutable
        return tl

    # -- what a day looks like ---------------------------------------------------------------

    def day_spans(self, day: date) -> Spans:
        """Open spans of a local date, as seconds since local midnight."""
        if day in self.extra_workdays:
            return self.workday_spans
        if day in self.extra_holidays:
            return ()
        year = self.official.get(day.year)
        if year is not None:
            holidays, workdays = year
            if day in holidays:
                return ()
            return self.workday_spans if day in workdays else self.weekly[day.weekday()]
        kind, _exact = self.holidays.day_kind(day)
        if kind is DayKind.HOLIDAY and day not in self.not_holidays:
            return ()
        if kind is DayKind.MAKEUP_WORKDAY and day not in self.not_workdays:
            return self.workday_spans
        return self.weekly[day.weekday()]

    def is_exact(self, day: date) -> bool:
        """False when the holiday source had to fall back for this date's year (a guess)."""
        if day in self.extra_workdays or day in self.extra_holidays or day.year in self.official:
            return True
        return self.holidays.day_kind(day)[1]

    def estimated_years(self, start: datetime, end: datetime) -> tuple[int, ...]:
        """Local years in [start, end] whose holidays are a fallback estimate (see
        ``holidaysource``): deadlines there may move once the official dates are listed."""
        first = start.astimezone(self.tz).year
        last = end.astimezone(self.tz).year
        return tuple(
            year
            for year in range(first, last + 1)
            if year not in self.official and not self.holidays.day_kind(date(year, 7, 1))[1]
        )

    def estimated_ahead(self, now: datetime, days: int = 366) -> tuple[int, ...]:
        """The estimated years among the next ``days`` (default: the coming 12 months)."""
        return self.estimated_years(now, now + timedelta(days=days))

    # -- the timeline cache ------------------------------------------------------------------

    def _build(self, first: date, last: date) -> _Timeline:
        starts: list[float] = []
        ends: list[float] = []
        day = first
        while day < last:
            for a, b in self.day_spans(day):
                s = _local_epoch(day, a, self.tz)
                e = _local_epoch(day, b, self.tz)
                if e <= s:
                    continue
                if ends and s <= ends[-1]:
                    ends[-1] = max(ends[-1], e)
                else:
                    starts.append(s)
                    ends.append(e)
            day += timedelta(days=1)
        cum_start: list[float] = []
        cum_end: list[float] = []
        total = 0.0
        for s, e in zip(starts, ends, strict=True):
            cum_start.append(total)
            total += e - s
            cum_end.append(total)
        return _Timeline(
            first,
            last,
            _local_epoch(first, 0, self.tz),
            _local_epoch(last, 0, self.tz),
            starts,
            ends,
            cum_start,
            cum_end,
        )

    def _covering(self, t: float) -> _Timeline:
        """A timeline whose [lo, hi) contains ``t``, extending the cache by whole years."""
        current = self._tl
        if current is not None and current.lo <= t < current.hi:
            return current
        with self._lock:
            current = self._tl
            if current is not None and current.lo <= t < current.hi:
                return current
            year = datetime.fromtimestamp(t, self.tz).year
            first = date(year, 1, 1)
            last = date(year + 2, 1, 1)
            if current is not None:
                first = min(first, current.first)
                last = max(last, current.last)
            return self._set_timeline(self._build(first, last))

    def _extended(self, tl: _Timeline) -> _Timeline:
        """The timeline one year longer (same origin, so cumulative values stay valid)."""
        with self._lock:
            current = self._tl or tl
            if current.first == tl.first and current.last > tl.last:
                return current
            return self._set_timeline(self._build(tl.first, date(tl.last.year + 1, 1, 1)))

    # -- queries --------------------------------------------------------------------------------

    def _epoch(self, at: datetime) -> float:
        if at.tzinfo is None:
            raise CalendarError(f"naive datetime {at.isoformat()}: a time zone is required")
        return at.timestamp()

    def _to_datetime(self, t: float) -> datetime:
        return datetime.fromtimestamp(t, self.tz)

    def is_open(self, at: datetime) -> bool:
        """Whether business time runs at ``at`` (spans are half-open: 18:00 is closed)."""
        t = self._epoch(at)
        tl = self._covering(t)
        i = bisect_right(tl.starts, t) - 1
        return i >= 0 and t < tl.ends[i]

    def _next_open(self, t: float) -> float:
        tl = self._covering(t)
        for _ in range(_MAX_YEARS_AHEAD):
            i = bisect_right(tl.starts, t) - 1
            if i >= 0 and t < tl.ends[i]:
                return t
            if i + 1 < len(tl.starts):
                return tl.starts[i + 1]
            tl = self._extended(tl)
        raise self._never_open()

    def _never_open(self) -> CalendarError:
        return CalendarError(
            f"calendar {self.name!r} has no working time within {_MAX_YEARS_AHEAD} years"
        )

    def next_open(self, at: datetime) -> datetime:
        """``at`` if open, else the next opening."""
        t = self._epoch(at)
        opened = self._next_open(t)
        return at if opened == t else self._to_datetime(opened)

    def _business(self, a: float, b: float) -> float:
        if b <= a:
            return 0.0
        tl = self._covering(a)
        if b > tl.hi:
            tl = self._covering(b)  # the union of the cached years and b's
        return tl.cum(b) - tl.cum(a)

    def business_seconds(self, start: datetime, end: datetime, pauses: Pauses = ()) -> float:
        """Business seconds in [start, end), not counting the (wall-clock) pauses."""
        a = self._epoch(start)
        b = self._epoch(end)
        total = self._business(a, b)
        for ps, pe in _merged(self._epoch_pauses(pauses), a):
            if ps >= b:
                break
            total -= self._business(max(ps, a), min(pe, b))
        return total

    def _add(self, t: float, seconds: float) -> float:
        """Earliest instant >= t where ``seconds`` (> 0) of business time have elapsed."""
        tl = self._covering(t)
        target = tl.cum(t) + seconds
        for _ in range(_MAX_YEARS_AHEAD):
            if tl.cum_end and target <= tl.cum_end[-1]:
                break
            tl = self._extended(tl)
        else:
            raise self._never_open()
        i = bisect_left(tl.cum_end, target)
        return tl.starts[i] + (target - tl.cum_start[i])

    def _epoch_pauses(self, pauses: Pauses) -> list[tuple[float, float]]:
        out = []
        for ps, pe in pauses:
            s, e = self._epoch(ps), self._epoch(pe)
            if e < s:
                raise CalendarError(
                    f"pause ends ({pe.isoformat()}) before it starts ({ps.isoformat()})"
                )
            out.append((s, e))
        return out

    def add(self, start: datetime, seconds: float, pauses: Pauses = ()) -> datetime:
        """The deadline: the earliest instant where ``seconds`` of business time have elapsed
        since ``start``, not counting pauses. ``seconds == 0``: the first instant the clock runs.
        """
        if start.tzinfo is None:
            raise CalendarError(f"naive datetime {start.isoformat()}: a time zone is required")
        t = start.timestamp()
        if not pauses and seconds > 0:
            # The hot path, inlined: one bisect to find where we are, one to find the target.
            tl = self._tl
            if tl is None or not tl.lo <= t < tl.hi:
                tl = self._covering(t)
            starts = tl.starts
            i = bisect_right(starts, t) - 1
            if i < 0:
                done = 0.0
            else:
                end = tl.ends[i]
                done = tl.cum_start[i] + ((t if t < end else end) - starts[i])
            target = done + seconds
            cum_end = tl.cum_end
            if cum_end and target <= cum_end[-1]:
                j = bisect_left(cum_end, target)
                return datetime.fromtimestamp(starts[j] + (target - tl.cum_start[j]), self.tz)
        if seconds < 0:
            raise CalendarError(f"negative business time {seconds}")
        merged = _merged(self._epoch_pauses(pauses), t) if pauses else []
        if seconds == 0:
            return self._to_datetime(self._first_running(t, merged))
        remaining = float(seconds)
        for ps, pe in merged:
            if ps > t:
                available = self._business(t, ps)
                if remaining <= available:
                    return self._to_datetime(self._add(t, remaining))
                remaining -= available
            t = max(t, pe)
        return self._to_datetime(self._add(t, remaining))

    def _first_running(self, t: float, merged: list[tuple[float, float]]) -> float:
        t = self._next_open(t)
        for ps, pe in merged:
            if ps <= t < pe:
                t = self._next_open(pe)
        return t


def _merged(pauses: Iterable[tuple[float, float]], after: float) -> list[tuple[float, float]]:
    """Pauses sorted and unioned, dropping those that end at or before ``after``."""
    out: list[tuple[float, float]] = []
    for s, e in sorted(p for p in pauses if p[1] > after and p[1] > p[0]):
        if out and s <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], e))
        else:
            out.append((s, e))
    return out
