"""An SLA clock for one target, as an immutable value.

``SlaClock.start(target, onset)`` returns a clock; ``pause``/``resume``/``stop`` return a new
clock (the old one is unchanged), so the ticket engine can keep, compare and replay them. Every
question takes the instant it is asked at: nothing here reads the system clock.

Rules (docs/sla.md):
- The start may lie in the past (the fault's onset); a clock started outside working time
  runs from the next opening.
- Pauses are wall-clock intervals during which business time does not count. Pausing a paused
  clock or resuming a running one changes nothing (duplicate events are harmless); events must
  not go back in time (ValueError). A pause that begins before the start counts from the start.
- ``stop`` freezes the clock: it was *met* when it stopped no later than its deadline (the
  earliest instant at which the business time used reached the target).
- While paused, business time does not run, so no escalation can come due: ``next_escalation``
  answers None until the clock is resumed; ``due(at)`` answers as if resumed at ``at``.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from collector.sla.businesstime import Calendar
from collector.sla.policy import EscalationStep, Target


class ClockState(enum.Enum):
    RUNNING = "running"  # counting (or waiting for the calendar to open)
    PAUSED = "paused"
    MET = "met"  # stopped no later than its deadline
    BREACHED = "breached"  # stopped after its deadline


@dataclass(frozen=True)
class ClockResult:
    """How a stopped clock ended."""

    met: bool
    stopped_at: datetime
    due: datetime
    used_seconds: float  # business seconds used
    target_seconds: float


@dataclass(frozen=True)
class SlaClock:
    target: Target
    started: datetime
    pauses: tuple[tuple[datetime, datetime], ...] = ()  # closed pauses, in order
    paused_since: datetime | None = None
    stopped_at: datetime | None = None
    last_event: datetime | None = None

    # -- events -----------------------------------------------------------------------------------

    @classmethod
    def start(cls, target: Target, at: datetime) -> SlaClock:
        if at.tzinfo is None:
            raise ValueError(f"clock start {at.isoformat()} needs a time zone")
        return cls(target=target, started=at, last_event=at)

    def _checked(self, at: datetime, event: str) -> datetime:
        if at.tzinfo is None:
            raise ValueError(f"{event} at {at.isoformat()} needs a time zone")
        at = max(at, self.started)  # e.g. a maintenance window that began before the onset
        if self.last_event is not None and at < self.last_event:
            raise ValueError(
                f"{event} at {at.isoformat()} is before the clock's last event "
                f"({self.last_event.isoformat()}): events must come in time order"
            )
        return at

    def pause(self, at: datetime) -> SlaClock:
        if self.stopped_at is not None or self.paused_since is not None:
            return self
        at = self._checked(at, "pause")
        return replace(self, paused_since=at, last_event=at)

    def resume(self, at: datetime) -> SlaClock:
        if self.stopped_at is not None or self.paused_since is None:
            return self
        at = max(self._checked(at, "resume"), self.paused_since)
        return replace(
            self,
            pauses=(*self.pauses, (self.paused_since, at)),
            paused_since=None,
            last_event=at,
        )

    def stop(self, at: datetime) -> SlaClock:
        if self.stopped_at is not None:
            return self
        at = self._checked(at, "stop")
        clock = self.resume(at) if self.paused_since is not None else self
        return replace(clock, stopped_at=at, last_event=at)

    # -- questions --------------------------------------------------------------------------------

    @property
    def calendar(self) -> Calendar:
        return self.target.calendar

    @property
    def target_seconds(self) -> float:
        return self.target.seconds

    def _pauses_at(self, at: datetime) -> tuple[tuple[datetime, datetime], ...]:
        """Closed pauses plus the ongoing one as if it ended at ``at``."""
        if self.paused_since is not None and at > self.paused_since:
            return (*self.pauses, (self.paused_since, at))
        return self.pauses

    def _until(self, at: datetime) -> datetime:
        return at if self.stopped_at is None or at < self.stopped_at else self.stopped_at

    def elapsed(self, at: datetime) -> float:
        """Business seconds counted from the start up to ``at`` (up to the stop, if earlier)."""
        until = self._until(at)
        return self.calendar.business_seconds(self.started, until, self._pauses_at(until))

    def remaining(self, at: datetime) -> float:
        """Business seconds left before the target is used up; negative once overdue."""
        return self.target_seconds - self.elapsed(at)

    def fraction(self, at: datetime) -> float:
        """Elapsed over target (1.0 = due). A target of 0 is 0.0 before its deadline, then 1.0."""
        if self.target_seconds > 0:
            return self.elapsed(at) / self.target_seconds
        due = self.due(at)
        return 1.0 if due is not None and self._until(at) >= due else 0.0

    def instant_at(self, fraction: float, at: datetime | None = None) -> datetime | None:
        """When ``fraction`` of the target is used, given the pauses known so far.

        While paused: None without ``at``, else as if resumed at ``at``.
        """
        if self.paused_since is not None and self.stopped_at is None:
            if at is None:
                return None
            pauses = self._pauses_at(max(at, self.paused_since))
        else:
            pauses = self.pauses
        return self.calendar.add(self.started, fraction * self.target_seconds, pauses)

    def due(self, at: datetime | None = None) -> datetime | None:
        """The deadline given the pauses so far (see ``instant_at`` while paused)."""
        return self.instant_at(1.0, at)

    def state(self, at: datetime) -> ClockState:
        if self.stopped_at is not None and at >= self.stopped_at:
            result = self.result
            assert result is not None
            return ClockState.MET if result.met else ClockState.BREACHED
        if self.paused_since is not None:
            return ClockState.PAUSED
        return ClockState.RUNNING

    @property
    def result(self) -> ClockResult | None:
        """How the clock ended; None while it runs."""
        if self.stopped_at is None:
            return None
        due = self.calendar.add(self.started, self.target_seconds, self.pauses)
        return ClockResult(
            met=self.stopped_at <= due,
            stopped_at=self.stopped_at,
            due=due,
            used_seconds=self.elapsed(self.stopped_at),
            target_seconds=self.target_seconds,
        )

    def escalations_between(
        self, after: datetime | None, until: datetime, steps: Sequence[EscalationStep]
    ) -> list[tuple[datetime, EscalationStep]]:
        """Steps whose instant falls in (after, until] (after None: from the start), in order.

        Use it right after ``start`` (``after=None``) to catch steps due at once, e.g. every
        step of a zero target that is already running.
        """
        end = self._until(until)
        hits: list[tuple[datetime, EscalationStep]] = []
        for step in steps:
            instant = self.calendar.add(
                self.started, step.at * self.target_seconds, self._pauses_at(end)
            )
            if (after is None or instant > after) and instant <= end:
                if self.paused_since is not None and instant > self.paused_since:
                    continue
                hits.append((instant, step))
        return sorted(hits, key=lambda hit: (hit[0], hit[1].at))

    def next_escalation(
        self, at: datetime, steps: Sequence[EscalationStep]
    ) -> tuple[datetime, EscalationStep] | None:
        """The first step coming due strictly after ``at``; None when stopped, paused or done."""
        if self.stopped_at is not None or self.paused_since is not None:
            return None
        best: tuple[datetime, EscalationStep] | None = None
        for step in steps:
            instant = self.calendar.add(self.started, step.at * self.target_seconds, self.pauses)
            if instant > at and (best is None or instant < best[0]):
                best = (instant, step)
        return best
