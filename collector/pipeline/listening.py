"""Absence is judged only on time the collector listened.

``ListeningClock`` is the service's rules clock (one call a second). While MQTT is down it stops
the engine's time (``RulesStage.pause``; the fault stages' own clocks, SLA deadlines, go on);
once connected again it waits for the first batch (the broker's queue for our persistent
session, applied before any timer, ``Pipeline.feed``) or ``grace_s``, whichever comes first,
and resumes with the absence timers rebased by the time not listened to. A collector restart is
the same: the restored engine starts paused and resumes at its first batch.
"""

from __future__ import annotations

from datetime import datetime
from typing import Final

from collector.pipeline.assembly import Pipeline

RESUME_GRACE_S: Final = 2.0  # connected, no batch yet: the broker had nothing queued for us


class ListeningClock:
    def __init__(self, pipeline: Pipeline, grace_s: float = RESUME_GRACE_S) -> None:
        self.pipeline = pipeline
        self.grace_s = grace_s
        self._up_since: datetime | None = None
        if pipeline.rules is not None:
            pipeline.rules.pause()  # until the first batch: queued reports before timers

    def __call__(self, now: datetime, connected: bool) -> None:
        rules = self.pipeline.rules
        if rules is None:
            self.pipeline.tick(now)
            return
        if not connected:
            rules.pause()
            self._up_since = None
        elif rules.paused:
            if self._up_since is None:
                self._up_since = now
            if (now - self._up_since).total_seconds() >= self.grace_s:
                rules.resume(self._up_since.timestamp())
        if rules.paused:
            self.pipeline.advance(now)
        else:
            self.pipeline.tick(now)
