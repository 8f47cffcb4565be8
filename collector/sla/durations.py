"""SLA target durations: ``45m``, ``4h``, ``1h30m``, ``0``, ``5wd``, ``1d``.

A duration is business time. ``wd`` (working days) is not a fixed number of seconds: it means
that many times the calendar's regular working-day length, so it is resolved against a
calendar (``Duration.seconds_on``). ``d`` is 24 hours of business time.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_PART = re.compile(r"(\d+)(wd|d|h|m|s)")
_WHOLE = re.compile(r"(?:\d+(?:wd|d|h|m|s))+")


@dataclass(frozen=True, slots=True)
class Duration:
    """``seconds`` of fixed business time plus ``workdays`` regular working days."""

    seconds: int = 0
    workdays: int = 0

    def seconds_on(self, workday_seconds: float) -> float:
        """Business seconds on a calendar whose regular working day lasts ``workday_seconds``."""
        return self.seconds + self.workdays * workday_seconds

    @property
    def is_zero(self) -> bool:
        return self.seconds == 0 and self.workdays == 0

    def __str__(self) -> str:
        if self.is_zero:
            return "0"
        parts = [f"{self.workdays}wd"] if self.workdays else []
        rest = self.seconds
        for unit in ("d", "h", "m", "s"):
            size = _UNIT_SECONDS[unit]
            if rest >= size:
                parts.append(f"{rest // size}{unit}")
                rest %= size
        return "".join(parts)


def parse_duration(text: str | int) -> Duration:
    """Parse ``45m``, ``4h``, ``1h30m``, ``0``, ``5wd``, ``1d``, ``2wd4h``; ValueError if not."""
    raw = str(text).strip()
    if raw == "0":
        return Duration()
    if not raw or not _WHOLE.fullmatch(raw):
        raise ValueError(
            f"bad duration {str(text)!r}: expected a number and unit like 45m, 4h, 1h30m, "
            "5wd (working days), 1d or 0"
        )
    seconds = 0
    workdays = 0
    seen: set[str] = set()
    for number, unit in _PART.findall(raw):
        if unit in seen:
            raise ValueError(f"bad duration {raw!r}: unit {unit!r} given twice")
        seen.add(unit)
        if unit == "wd":
            workdays += int(number)
        else:
            seconds += int(number) * _UNIT_SECONDS[unit]
    return Duration(seconds=seconds, workdays=workdays)
