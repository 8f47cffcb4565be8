"""Calendar files (``rules/calendars/<name>.yaml``): parsed strictly into a ``Calendar``.

The business-time maths lives in ``collector.sla.businesstime``; its public names are
re-exported here, so ``from collector.sla.calendar import Calendar, load_calendar`` is the one
import callers need. See docs/sla.md for the file format.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from functools import lru_cache
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from collector.config.durations import parse_duration
from collector.config.errors import ConfigError
from collector.config.yamlfile import Node, read_yaml
from collector.preset_paths import find_preset, preset_names
from collector.sla.businesstime import Calendar, CalendarError, Pauses, Span, Spans
from collector.sla.holidaysource import HolidaySource, UnknownSubdivisionError, holiday_source

__all__ = [
    "DAY_NAMES",
    "Calendar",
    "CalendarError",
    "Pauses",
    "Span",
    "Spans",
    "calendar_from_node",
    "calendar_names",
    "check_spans",
    "estimated_calendars",
    "load_calendar",
    "parse_span",
    "regular_workday_seconds",
    "regular_workday_spans",
]

DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

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
        "official",
    }
)


def _official(node: Node) -> dict[int, tuple[frozenset[date], frozenset[date]]]:
    """``official: {2027: {holidays: [...], working_days: [...]}}``: a year's published
    schedule (public holidays, and the weekend days worked instead), replacing the estimate."""
    out: dict[int, tuple[frozenset[date], frozenset[date]]] = {}
    for year_text, year_node in node.mapping().items():
        if not year_text.isdigit() or not 1900 < int(year_text) < 2200:
            raise year_node.error(f"expected a year like 2027, got {year_text!r}")
        year = int(year_text)
        keys = year_node.mapping(frozenset({"holidays", "working_days", "source"}))
        if "holidays" not in keys:
            raise year_node.error("missing key 'holidays' (the year's public holidays)")
        holidays = _dates(keys["holidays"])
        workdays = _dates(keys["working_days"]) if "working_days" in keys else frozenset()
        for label, days, where in (
            ("holiday", holidays, keys["holidays"]),
            ("working day", workdays, keys.get("working_days")),
        ):
            stray = sorted(d for d in days if d.year != year)
            if stray and where is not None:
                raise where.error(f"{label} {stray[0]} is not in {year}")
        clash = holidays & workdays
        if clash:
            raise keys["working_days"].error(f"{min(clash)} is both a holiday and a working day")
        out[year] = (holidays, workdays)
    return out


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
            except UnknownSubdivisionError as exc:
                raise hol["subdivision"].error(str(exc)) from None
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
    official = _official(keys["official"]) if "official" in keys else {}
    has_makeup = extra_workdays or any(w for _, w in official.values())
    if (has_makeup or source.name == "cn") and not workday_spans:
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
        official=official,
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


def estimated_calendars(
    now: datetime, rules_dir: Path | None = None, names: Iterable[str] | None = None
) -> dict[str, tuple[int, ...]]:
    """Calendar name -> the years of the coming 12 months whose holidays are estimated (no
    official schedule known: the deadlines there may move). Only calendars with such years
    are listed; the board, ``/healthz`` and ``fleetdesk rules check`` all ask this."""
    out: dict[str, tuple[int, ...]] = {}
    for name in names if names is not None else calendar_names(rules_dir):
        years = load_calendar(name, rules_dir).estimated_ahead(now)
        if years:
            out[name] = years
    return out
