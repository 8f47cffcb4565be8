"""Pure operations on a ticket's stored targets: pause, resume, stop, reopen."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from collector.tickets.model import Outcome, TargetClock
from collector.tickets.terms import SlaMaths

#: Targets that a resolution meets; they run again if the ticket re-opens.
RESOLUTION_TARGETS = frozenset({"resolution", "plan", "repair"})
#: Targets that do not start at opening (the follow-up runs after resolution).
NOT_AT_OPENING = frozenset({"followup"})


def pause(target: TargetClock, at: datetime) -> TargetClock:
    if not target.running or target.paused:
        return target
    return replace(target, pauses=(*target.pauses, (at, None)))


def resume(target: TargetClock, at: datetime) -> TargetClock:
    if not target.paused:
        return target
    start, _ = target.pauses[-1]
    return replace(target, pauses=(*target.pauses[:-1], (start, max(start, at))))


def stop(
    target: TargetClock, at: datetime, sla: SlaMaths, outcome: Outcome | None = None
) -> TargetClock:
    """Stop a running target: met if stopped by its due instant, else missed."""
    if not target.running:
        return target
    target = resume(target, at)
    if outcome is None:
        due = sla.instant_at(target, 1.0)
        outcome = Outcome.MET if due is not None and at <= due else Outcome.MISSED
    return replace(target, stopped_at=at, outcome=outcome)


def restart(target: TargetClock, stopped_at: datetime, at: datetime) -> TargetClock:
    """Run a target stopped at ``stopped_at`` again from ``at``; the gap does not count."""
    return replace(
        target,
        pauses=(*target.pauses, (stopped_at, max(stopped_at, at))),
        stopped_at=None,
        outcome=None,
    )


def step_id(target: str, fraction: float) -> str:
    return f"{target}@{fraction:g}"
