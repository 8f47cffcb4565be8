"""Durations in every file fleetdesk reads: ``30s``, ``0.5s``, ``5m``, ``1h30m``, ``1d2h``, ``0``,
and, for SLA targets, ``5wd`` (working days).

One grammar for rules, policies, calendars, sinks and the collector's config. A duration is a
sum of ``<number><unit>`` parts, each unit at most once, largest first is not required:
``d`` (24 h), ``h``, ``m``, ``s`` (the only unit that takes a fraction) and ``wd``.

``wd`` is not a fixed number of seconds: it means that many times a calendar's regular
working-day length, so it is resolved against a calendar (``Duration.seconds_on``). Only SLA
targets accept it; everything else asks for ``parse_seconds``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_PART = re.compile(r"(\d+(?:\.\d+)?)(wd|d|h|m|s)")
_WHOLE = re.compile(r"(?:\d+(?:\.\d+)?(?:wd|d|h|m|s))+")
_EXPECTED = "expected a number and unit like 30s, 5m, 1h30m, 1d, 5wd (working days) or 0"


@dataclass(frozen=True, slots=True)
class Duration:
    """``seconds`` of fixed (business) time plus ``workdays`` regular working days."""

    seconds: float = 0
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
        for unit in ("d", "h", "m"):
            size = _UNIT_SECONDS[unit]
            if rest >= size:
                parts.append(f"{int(rest // size)}{unit}")
                rest %= size
        if rest:
            parts.append(f"{int(rest) if rest == int(rest) else rest}s")
        return "".join(parts)


def parse_duration(text: str | int | float) -> Duration:
    """Parse a duration, working days allowed; ValueError naming the bad value if not one."""
    raw = str(text).strip()
    if raw == "0":
        return Duration()
    if not raw or not _WHOLE.fullmatch(raw):
        raise ValueError(f"bad duration {str(text)!r}: {_EXPECTED}")
    seconds: float = 0
    workdays = 0
    seen: set[str] = set()
    for number, unit in _PART.findall(raw):
        if unit in seen:
            raise ValueError(f"bad duration {raw!r}: unit {unit!r} given twice")
        seen.add(unit)
        if "." in number and unit != "s":
            raise ValueError(f"bad duration {raw!r}: only seconds take a fraction")
        if unit == "wd":
            workdays += int(number)
        else:
            seconds += (float(number) if "." in number else int(number)) * _UNIT_SECONDS[unit]
    return Duration(seconds=seconds, workdays=workdays)


def parse_seconds(text: object) -> float:
    """A fixed duration in seconds (no working days); ValueError naming the bad value."""
    if not isinstance(text, str | int) or isinstance(text, bool):
        raise ValueError(f"bad duration {text!r}: {_EXPECTED}")
    duration = parse_duration(text)
    if duration.workdays:
        raise ValueError(f"bad duration {text!r}: working days (wd) need a calendar here")
    return float(duration.seconds)
