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
    due: float
    seq: int
    kind: TimerKind = field(compare=False)
    subject: str = field(compare=False)
    key: Any = field(compare=False, default=None)


class TimerQueue:
    def __init__(self) -> None:
        self._heap: list[Timer] = []
        self._seq = 0

    def push(self, due: float, kind: TimerKind, subject: str, key: Any = None) -> None:
        self._seq += 1
        heapq.heappush(self._heap, Timer(due, self._seq, kind, subject, key))

    def pop_due(self, now: float) -> Timer | None:
        """The earliest timer due at or before ``now``, removed; None if there is none."""
        if self._heap and self._heap[0].due <= now:
            return heapq.heappop(self._heap)
        return None

    def peek(self) -> Timer | None:
        return self._heap[0] if self._heap else None

    def __len__(self) -> int:
        return len(self._heap)
