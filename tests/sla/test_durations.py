from __future__ import annotations

import pytest

from collector.config.durations import Duration, parse_duration


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0", Duration()),
        (0, Duration()),
        ("45m", Duration(seconds=2700)),
        ("4h", Duration(seconds=14400)),
        ("1h30m", Duration(seconds=5400)),
        ("5wd", Duration(workdays=5)),
        ("1d", Duration(seconds=86400)),
        ("2wd4h", Duration(seconds=14400, workdays=2)),
        ("90s", Duration(seconds=90)),
        (" 2h ", Duration(seconds=7200)),
    ],
)
def test_parse_duration(text: str | int, expected: Duration) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "h", "45", "4 h", "-1h", "1.5h", "4x", "1h1h", "wd", "5WD"])
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


def test_workdays_resolve_against_the_calendar_day() -> None:
    assert parse_duration("2wd30m").seconds_on(9 * 3600) == 2 * 9 * 3600 + 1800
    assert str(parse_duration("1h30m")) == "1h30m"
    assert str(parse_duration("5wd")) == "5wd"
    assert str(parse_duration("0")) == "0"
