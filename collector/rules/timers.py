"""A timer heap driven by the caller's clock: ``due(now)`` pops what has come due, in order.

Entries are never removed; the owner checks on pop whether a timer still applies (lazy
deletion), which keeps re-arming cheap: one push per state change, not per report.
"""

from __future__ import annotations

import enum
import heapq
from dataclasses import dataclass, field
from typing import Any


class TimerKind(enum.IntEnum):
    ABSENCE = 1  # a device's report is overdue: subject = device
    CLEAR_AFTER = 2  # an event-like fault times out: subject = device, key = rule instance
    MAINTENANCE_END = 3  # subject = window id
    FLAP_END = 4  # a flapping fault may end: subject = device, key = fault kind


@dataclass(order=True, slots=True)
class Timer:
    """Ordered by instant, then by what it is about (not by when it was set), so that a
    restored engine fires same-instant timers in the same order as one that never stopped."""

    due: float
    kind: TimerKind
    subject: str
    tiebreak: str
    seq: int
    key: Any = field(compare=False, default=None)


class TimerQueue:
    def __init__(self) -> None:
        self._heap: list[Timer] = []
        self._seq = 0

    def push(self, due: float, kind: TimerKind, subject: str, key: Any = None) -> None:
        self._seq += 1
        tiebreak = "" if key is None else str(key)
        heapq.heappush(self._heap, Timer(due, kind, subject, tiebreak, self._seq, key))

    def clear(self) -> None:
        self._heap.clear()

    def pop_due(self, now: float) -> Timer | None:
        """The earliest timer due at or before ``now``, removed; None if there is none."""
        if self._heap and self._heap[0].due <= now:
            return heapq.heappop(self._heap)
        return None

    def peek(self) -> Timer | None:
        return self._heap[0] if self._heap else None

    def __len__(self) -> int:
        return len(self._heap)
