"""Business calendars and business-time arithmetic.

A ``Calendar`` is a time zone, weekly working hours (several spans a day allowed), public
holidays from a ``HolidaySource`` plus the file's own additions and removals, and extra working
days (China's make-up working days). All instants are tz-aware datetimes; business time is real
elapsed seconds while the calendar is open, so DST changes are handled by the time zone.

Speed: the calendar's open intervals are materialised per year as epoch-second lists with
cumulative business seconds at each interval's start (a ``_Timeline``). "How much business
time between a and b" is then two binary searches, and "when has ``n`` seconds of business time
elapsed" is one binary search over the cumulative sums: the cost does not depend on how many
minutes or days are crossed.
"""

from __future__ import annotations

import itertools
import re
import threading
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, tzinfo
from functools import lru_cache
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from collector.config.durations import parse_duration
from collector.config.errors import ConfigError
from collector.config.yamlfile import Node, read_yaml
from collector.presets import find_preset, preset_names
from collector.sla.holidaysource import DayKind, HolidaySource, holiday_source

Span = tuple[int, int]  # seconds since local midnight, start < end <= 86400
Spans = tuple[Span, ...]
Pauses = Sequence[tuple[datetime, datetime]]

DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_MAX_YEARS_AHEAD = 50  # a calendar with no working time in 50 years is an error, not a hang


class CalendarError(ValueError):
    """A query the calendar cannot answer (naive datetime, no working time ahead)."""


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
    """A business calendar; load one with ``load_calendar`` (or ``calendar_from_node``)."""

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
        kind, _exact = self.holidays.day_kind(day)
        if kind is DayKind.HOLIDAY and day not in self.not_holidays:
            return ()
        if kind is DayKind.MAKEUP_WORKDAY and day not in self.not_workdays:
            return self.workday_spans
        return self.weekly[day.weekday()]

    def is_exact(self, day: date) -> bool:
        """False when the holiday source had to fall back for this date's year (a guess)."""
        if day in self.extra_workdays or day in self.extra_holidays:
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
            if not self.holidays.day_kind(date(year, 7, 1))[1]
        )

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


# -- building and loading -----------------------------------------------------------------------

_SPAN = re.compile(r"(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})")


def parse_span(text: str) -> Span:
    """``09:00-18:00`` -> (32400, 64800); ``00:00-24:00`` is the whole day."""
    match = _SPAN.fullmatch(text.strip())
    if not match:
        raise ValueError(f"bad time span {text!r}: expected HH:MM-HH:MM, like 09:00-18:00")
    h1, m1, h2, m2 = (int(g) for g in match.groups())
    for h, m in ((h1, m1), (h2, m2)):
        if m > 59 or h > 24 or (h == 24 and m != 0):
            raise ValueError(f"bad time span {text!r}: {h:02d}:{m:02d} is not a time of day")
    start, end = h1 * 3600 + m1 * 60, h2 * 3600 + m2 * 60
    if end <= start:
        raise ValueError(f"bad time span {text!r}: ends before it starts")
    return start, end


def check_spans(spans: Iterable[Span]) -> Spans:
    """Sorted spans; overlapping spans are an error."""
    ordered = tuple(sorted(spans))
    for (_, e1), (s2, _) in itertools.pairwise(ordered):
        if s2 < e1:
            raise ValueError("time spans overlap")
    return ordered


def _day_indexes(key: str) -> list[int]:
    """``mon``, ``mon-fri``, ``sat-sun``, ``daily`` -> weekday indexes."""
    k = key.strip().lower()
    if k in ("daily", "every_day", "mon-sun"):
        return list(range(7))
    if "-" in k:
        first, _, last = k.partition("-")
        if first in DAY_NAMES and last in DAY_NAMES:
            a, b = DAY_NAMES.index(first), DAY_NAMES.index(last)
            if a <= b:
                return list(range(a, b + 1))
    if k in DAY_NAMES:
        return [DAY_NAMES.index(k)]
    raise ValueError(f"unknown day {key!r}: expected mon..sun, a range like mon-fri, or daily")


def regular_workday_seconds(weekly: Sequence[Spans]) -> float:
    """The most common non-empty day length of the week (ties: the longest)."""
    lengths = [sum(e - s for s, e in spans) for spans in weekly if spans]
    if not lengths:
        return 0.0
    return float(max(lengths, key=lambda n: (lengths.count(n), n)))


def regular_workday_spans(weekly: Sequence[Spans]) -> Spans:
    """The spans of the first weekday having the regular working-day length."""
    target = regular_workday_seconds(weekly)
    for spans in weekly:
        if spans and sum(e - s for s, e in spans) == target:
            return spans
    return ()


_CALENDAR_KEYS = frozenset(
    {
        "name",
        "description",
        "timezone",
        "hours",
        "workday_hours",
        "workday_length",
        "holidays",
        "working_days",
    }
)


def _dates(node: Node) -> frozenset[date]:
    out: set[date] = set()
    for item in node.items():
        value = item.value
        if isinstance(value, datetime) or not isinstance(value, date):
            try:
                value = date.fromisoformat(str(value))
            except ValueError:
                raise item.error(f"expected a date like 2026-10-01, got {value!r}") from None
        out.add(value)
    return frozenset(out)


def _spans_of(node: Node) -> Spans:
    if node.is_null():
        return ()
    spans: list[Span] = []
    for item, text in node.walk_texts():
        if text.lower() == "closed":
            continue
        try:
            spans.append(parse_span(text))
        except ValueError as exc:
            raise item.error(str(exc)) from None
    try:
        return check_spans(spans)
    except ValueError as exc:
        raise node.error(str(exc)) from None


def calendar_from_node(root: Node, default_name: str) -> Calendar:
    """Build a Calendar from a parsed file; ConfigError names the key and line."""
    keys = root.mapping(_CALENDAR_KEYS)
    name = keys["name"].text() if "name" in keys else default_name
    if name != default_name:
        raise keys["name"].error(f"name {name!r} differs from the file name {default_name!r}")
    if "timezone" not in keys:
        raise root.error("missing key 'timezone' (an IANA name like Asia/Shanghai)")
    tz_name = keys["timezone"].text()
    try:
        tz = ZoneInfo(tz_name)
    except (ZoneInfoNotFoundError, ValueError):
        raise keys["timezone"].error(f"unknown time zone {tz_name!r}") from None
    if "hours" not in keys:
        raise root.error("missing key 'hours' (weekly working hours, e.g. mon-fri: 09:00-18:00)")
    weekly: list[Spans | None] = [None] * 7
    for day_key, spans_node in keys["hours"].mapping().items():
        try:
            indexes = _day_indexes(day_key)
        except ValueError as exc:
            raise spans_node.error(str(exc)) from None
        spans = _spans_of(spans_node)
        for i in indexes:
            if weekly[i] is not None:
                raise spans_node.error(f"{DAY_NAMES[i]} is given twice")
            weekly[i] = spans
    week = tuple(s or () for s in weekly)
    if not any(week):
        raise keys["hours"].error("no working hours on any day of the week")
    workday_spans = (
        _spans_of(keys["workday_hours"]) if "workday_hours" in keys else regular_workday_spans(week)
    )
    if "workday_length" in keys:
        node = keys["workday_length"]
        try:
            length = parse_duration(node.text())
        except ValueError as exc:
            raise node.error(str(exc)) from None
        if length.workdays or length.is_zero:
            raise node.error("must be a positive fixed duration like 8h")
        workday_seconds = float(length.seconds)
    else:
        workday_seconds = regular_workday_seconds(week)

    source: HolidaySource = holiday_source("none")
    extra_holidays: frozenset[date] = frozenset()
    not_holidays: frozenset[date] = frozenset()
    if "holidays" in keys:
        hol = keys["holidays"].mapping(frozenset({"source", "subdivision", "add", "remove"}))
        sub = hol["subdivision"].text() if "subdivision" in hol else None
        if "source" in hol:
            try:
                source = holiday_source(hol["source"].text(), sub)
            except ValueError as exc:
                raise hol["source"].error(str(exc)) from None
        extra_holidays = _dates(hol["add"]) if "add" in hol else frozenset()
        not_holidays = _dates(hol["remove"]) if "remove" in hol else frozenset()
    extra_workdays: frozenset[date] = frozenset()
    not_workdays: frozenset[date] = frozenset()
    if "working_days" in keys:
        wd = keys["working_days"].mapping(frozenset({"add", "remove"}))
        extra_workdays = _dates(wd["add"]) if "add" in wd else frozenset()
        not_workdays = _dates(wd["remove"]) if "remove" in wd else frozenset()
        clash = extra_workdays & extra_holidays
        if clash:
            raise wd["add"].error(f"{min(clash)} is both a holiday and a working day")
    if (extra_workdays or source.name == "cn") and not workday_spans:
        raise root.error("working days without hours: set 'workday_hours'")
    return Calendar(
        name=name,
        tz=tz,
        weekly=week,
        workday_spans=workday_spans,
        workday_seconds=workday_seconds,
        holidays=source,
        extra_holidays=extra_holidays,
        not_holidays=not_holidays,
        extra_workdays=extra_workdays,
        not_workdays=not_workdays,
        description=keys["description"].text() if "description" in keys else "",
    )


@lru_cache(maxsize=128)
def _load_file(path: str, mtime_ns: int) -> Calendar:
    file = Path(path)
    return calendar_from_node(read_yaml(file), file.stem)


def calendar_names(rules_dir: Path | None = None) -> list[str]:
    """Calendar names available in ``rules_dir`` (default: the shipped rules)."""
    return preset_names("calendars", rules_dir)


def load_calendar(name_or_path: str | Path, rules_dir: Path | None = None) -> Calendar:
    """A preset by name (``rules_dir/calendars/<name>.yaml``, falling back to the shipped
    presets) or a calendar file by path. Unknown names and bad files raise ValueError
    (``ConfigError`` for file problems) with a one-line message."""
    path = find_preset("calendars", name_or_path, rules_dir)
    try:
        stat = path.stat()
    except OSError as exc:
        raise ConfigError(str(path), "", f"cannot read: {exc.strerror or exc}") from None
    return _load_file(str(path.resolve()), stat.st_mtime_ns)
