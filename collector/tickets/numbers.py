"""Fault numbers people can read out on the phone: ``FD-20251009-0042``."""

from __future__ import annotations

import re
from datetime import date

PREFIX = "FD"
_PATTERN = re.compile(r"^FD-(\d{8})-(\d{4,})$")


def format_number(day: date, n: int) -> str:
    if n < 1:
        raise ValueError(f"fault number counter must be >= 1: {n}")
    return f"{PREFIX}-{day:%Y%m%d}-{n:04d}"


def is_fault_number(text: str) -> bool:
    return _PATTERN.match(text) is not None


class MemoryNumbers:
    """A per-day counter in memory: for replays, where no database is involved."""

    def __init__(self) -> None:
        self._counters: dict[date, int] = {}

    def next_number(self, day: date) -> int:
        n = self._counters.get(day, 0) + 1
        self._counters[day] = n
        return n
