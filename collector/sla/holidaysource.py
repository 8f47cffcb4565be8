"""Where a calendar's public holidays and make-up working days come from.

- ``cn``: the ``chinese-calendar`` package, the State Council's published holidays *and* the
  make-up working days on weekends (调休), for the years it covers (2004 to its last release
  year). Beyond that range it raises NotImplementedError; we then fall back to the
  ``holidays`` package's CN holidays, which are computed from the lunar calendar but know no
  make-up days. Such days are flagged ``exact=False`` so callers can warn; a calendar file can
  list the real dates once they are published (``holidays.add`` / ``working_days.add``).
- a country code (``DE``, ``US``, optionally with a subdivision): the ``holidays`` package.
- ``none``: no public holidays.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from typing import Protocol


class DayKind(enum.Enum):
    REGULAR = "regular"  # the weekly hours apply
    HOLIDAY = "holiday"  # closed
    MAKEUP_WORKDAY = "makeup_workday"  # a weekend day worked instead of a holiday


class HolidaySource(Protocol):
    @property
    def name(self) -> str: ...

    def day_kind(self, day: date) -> tuple[DayKind, bool]:
        """The kind of ``day`` and whether the source knows it exactly (False = fallback)."""
        ...


@dataclass(frozen=True)
class NoHolidays:
    name: str = "none"

    def day_kind(self, day: date) -> tuple[DayKind, bool]:
        return DayKind.REGULAR, True


@lru_cache(maxsize=256)
def _country_year(code: str, subdivision: str | None, year: int) -> frozenset[date]:
    import holidays

    return frozenset(holidays.country_holidays(code, subdiv=subdivision, years=year).keys())


@dataclass(frozen=True)
class CountryHolidays:
    """Public holidays of one country (and subdivision) from the ``holidays`` package."""

    code: str
    subdivision: str | None = None

    @property
    def name(self) -> str:
        return f"{self.code}-{self.subdivision}" if self.subdivision else self.code

    def day_kind(self, day: date) -> tuple[DayKind, bool]:
        if day in _country_year(self.code, self.subdivision, day.year):
            return DayKind.HOLIDAY, True
        return DayKind.REGULAR, True


class UnknownSubdivisionError(ValueError):
    """The country is known, its subdivision is not."""


def check_country(code: str, subdivision: str | None) -> None:
    """ValueError naming the problem when the ``holidays`` package does not know the code, or
    ``UnknownSubdivisionError`` listing the subdivisions it does know."""
    import holidays

    try:
        country = holidays.country_holidays(code)
    except NotImplementedError:
        raise ValueError(f"unknown holiday country {code!r}") from None
    known_names = (*country.subdivisions, *country.subdivisions_aliases)  # BY or Bayern
    if subdivision is not None and subdivision not in known_names:
        known = ", ".join(country.subdivisions) or "none"
        raise UnknownSubdivisionError(
            f"unknown subdivision {subdivision!r} of holiday country {code!r} (known: {known})"
        )


@lru_cache(maxsize=64)
def _china_year(year: int) -> tuple[dict[date, DayKind], bool]:
    import chinese_calendar

    kinds: dict[date, DayKind] = {}
    try:
        chinese_calendar.is_workday(date(year, 1, 1))  # raises outside the covered years
    except NotImplementedError:
        for day in _country_year("CN", None, year):
            kinds[day] = DayKind.HOLIDAY
        return kinds, False
    for day in chinese_calendar.constants.holidays:
        if day.year == year:
            kinds[day] = DayKind.HOLIDAY
    for day in chinese_calendar.constants.workdays:
        if day.year == year and day.weekday() >= 5:
            kinds[day] = DayKind.MAKEUP_WORKDAY
    return kinds, True


@dataclass(frozen=True)
class ChinaHolidays:
    """China's official holidays and make-up working days (see the module docstring)."""

    name: str = "cn"

    def day_kind(self, day: date) -> tuple[DayKind, bool]:
        kinds, exact = _china_year(day.year)
        return kinds.get(day, DayKind.REGULAR), exact


def holiday_source(name: str, subdivision: str | None = None) -> HolidaySource:
    """``cn``, ``none`` or a country code known to the ``holidays`` package."""
    if name == "none":
        return NoHolidays()
    if name.lower() == "cn" and subdivision is None:
        return ChinaHolidays()
    check_country(name.upper(), subdivision)
    return CountryHolidays(name.upper(), subdivision)
