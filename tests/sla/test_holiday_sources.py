"""Holiday sources as a calendar names them: what each says of a day, and whether it knows it
exactly; unknown countries and subdivisions refused with the whole message."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from collector.config.errors import ConfigError
from collector.sla.calendar import load_calendar
from collector.sla.holidaysource import (
    ChinaHolidays,
    CountryHolidays,
    DayKind,
    NoHolidays,
    holiday_source,
)
from tests.support.sla import write_rules


def test_china_official_days_with_make_up_working_days() -> None:
    cn = holiday_source("cn")
    assert cn == ChinaHolidays()
    assert cn.day_kind(date(2026, 10, 1)) == (DayKind.HOLIDAY, True)  # National Day
    assert cn.day_kind(date(2026, 10, 10)) == (DayKind.MAKEUP_WORKDAY, True)  # a Saturday
    assert cn.day_kind(date(2026, 11, 23)) == (DayKind.REGULAR, True)  # a Monday
    assert cn.day_kind(date(2026, 11, 22)) == (DayKind.REGULAR, True)  # a plain Sunday


def test_china_beyond_the_published_years_is_not_exact() -> None:
    kind, exact = ChinaHolidays().day_kind(date(2200, 3, 3))
    assert (kind, exact) == (DayKind.REGULAR, False)


def test_a_country_with_its_subdivision() -> None:
    bavaria = holiday_source("de", "BY")
    assert bavaria == CountryHolidays("DE", "BY") and bavaria.name == "DE-BY"
    assert bavaria.day_kind(date(2026, 1, 6)) == (DayKind.HOLIDAY, True)  # Epiphany
    assert bavaria.day_kind(date(2026, 1, 7)) == (DayKind.REGULAR, True)
    assert holiday_source("DE", "Bayern").day_kind(date(2026, 1, 6)) == (DayKind.HOLIDAY, True)
    berlin = holiday_source("DE", "BE")
    assert berlin.day_kind(date(2026, 1, 6)) == (DayKind.REGULAR, True)  # not in Berlin
    assert holiday_source("none") == NoHolidays()
    assert holiday_source("none").day_kind(date(2026, 12, 25)) == (DayKind.REGULAR, True)


def test_an_unknown_country_or_subdivision_is_refused() -> None:
    with pytest.raises(ValueError) as info:
        holiday_source("xx")
    assert str(info.value) == "unknown holiday country 'XX'"
    with pytest.raises(ValueError) as info:
        holiday_source("DE", "ZZ")
    assert str(info.value).startswith(
        "unknown subdivision 'ZZ' of holiday country 'DE' (known: BB, BE, BW, BY, "
    )
    with pytest.raises(ValueError) as info:
        holiday_source("JP", "Kanto")
    assert str(info.value) == "unknown subdivision 'Kanto' of holiday country 'JP' (known: none)"


def test_a_calendar_file_with_an_unknown_subdivision_names_that_key(tmp_path: Path) -> None:
    write_rules(
        tmp_path,
        {
            "calendars/bad.yaml": (
                "timezone: Europe/Berlin\nhours: {mon-fri: '08:00-16:00'}\n"
                "holidays:\n  source: DE\n  subdivision: ZZ\n"
            )
        },
    )
    with pytest.raises(ConfigError) as info:
        load_calendar("bad", tmp_path)
    assert (info.value.line, info.value.key) == (5, "holidays.subdivision")
    assert info.value.problem.startswith("unknown subdivision 'ZZ' of holiday country 'DE'")
