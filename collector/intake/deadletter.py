"""Where rejected messages go: counted by reason, logged at a bounded rate, kept as dead letters.

Dead letters are JSON lines (``{"at", "topic", "reason", "detail", "payload"}``) appended to a
file and/or published (QoS 0) to a dead-letter topic, so an operator can see what a device sent.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO

from collector.metrics import Metrics

log = logging.getLogger("fleetdesk.collector.rejects")

MAX_KEPT_PAYLOAD = 4096  # characters of the payload kept in a dead letter


class RateLimit:
    """A token bucket: ``allow(now)`` is true at most ``per_minute`` times a minute."""

    def __init__(self, per_minute: int) -> None:
        self.capacity = float(per_minute)
        self.tokens = float(per_minute)
        self.rate = per_minute / 60.0
        self.last = 0.0
        self.suppressed = 0

    def allow(self, now: float) -> bool:
        self.tokens = min(self.capacity, self.tokens + (now - self.last) * self.rate)
        self.last = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        self.suppressed += 1
        return False


class Rejects:
    def __init__(
        self,
        metrics: Metrics,
        *,
        file: Path | None = None,
        topic: str | None = None,
        logs_per_minute: int = 30,
    ) -> None:
        self.metrics = metrics
        self.topic = topic
        self.limit = RateLimit(logs_per_minute)
        self.publish: Callable[[str, bytes], None] | None = None  # set by the MQTT intake
        self._file: IO[str] | None = None
        if file is not None:
            file.parent.mkdir(parents=True, exist_ok=True)
            self._file = file.open("a", encoding="utf-8")
        self._by_reason: dict[str, int] = {}

    def reject(self, topic: str, payload: bytes, at: float, reason: str, detail: str) -> None:
        self._by_reason[reason] = self._by_reason.get(reason, 0) + 1
        if self.limit.allow(time.monotonic()):
            suppressed, self.limit.suppressed = self.limit.suppressed, 0
            more = f" ({suppressed} more suppressed)" if suppressed else ""
            log.warning("rejected %s on %s: %s%s", reason, topic[:200], detail[:200], more)
        if self._file is None and (self.topic is None or self.publish is None):
            return
        text = payload[:MAX_KEPT_PAYLOAD].decode("utf-8", errors="replace")
        letter = json.dumps(
            {"at": at, "topic": topic, "reason": reason, "detail": detail, "payload": text}
        )
        try:
            if self._file is not None:
                self._file.write(letter + "\n")
            if self.topic is not None and self.publish is not None:
                self.publish(self.topic, letter.encode())
        except (OSError, ValueError):
            self.metrics.dead_letter_errors.inc()

    def count(self) -> None:
        """Fold the batch's counts into the metrics (once per batch, not per message)."""
        if not self._by_reason:
            return
        total = 0
        for reason, n in self._by_reason.items():
            self.metrics.rejects.labels(reason).inc(n)
            total += n
        self.metrics.rejected.inc(total)
        self._by_reason.clear()
        if self._file is not None:
            self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
