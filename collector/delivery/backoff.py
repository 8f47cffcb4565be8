"""When to try a failed delivery again: exponential backoff with jitter, honouring Retry-After.

Written once for every adapter. The schedule is stored in the outbox (``next_attempt_at``), so
it survives restarts; that is why it is a pure function here and not a retry loop around a call
(tenacity and friends keep their state in memory).
"""

from __future__ import annotations

import email.utils
import random
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Backoff:
    base_s: float = 1.0
    cap_s: float = 300.0

    def delay(self, attempts: int, rng: random.Random, retry_after_s: float | None = None) -> float:
        """Seconds to wait after the ``attempts``-th failure ("equal jitter": half fixed)."""
        ceiling = min(self.cap_s, self.base_s * 2.0 ** max(0, attempts - 1))
        wait = ceiling / 2 + rng.uniform(0, ceiling / 2)
        if retry_after_s is not None:
            wait = max(wait, retry_after_s)
        return float(wait)


def parse_retry_after(value: str | None, now: float) -> float | None:
    """``Retry-After`` as seconds from ``now``: delta-seconds or an HTTP date; None if unusable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - now)
