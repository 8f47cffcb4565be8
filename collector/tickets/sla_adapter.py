"""The SLA engine (``collector.sla``) seen through the ticket book's small protocols.

Policies come from the SLA engine's ``load_policy`` (the one policy cache); every instant
(escalation, breach, deadline) is the SLA engine's ``SlaClock`` answer for the ticket's stored
target. Nothing here does calendar maths.
"""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from pathlib import Path

from collector.config.durations import Duration, parse_duration
from collector.sla.calendar import Calendar, load_calendar
from collector.sla.clock import SlaClock
from collector.sla.policy import EscalationAction, Policy, Target, load_policy
from collector.tickets.model import TargetClock
from collector.tickets.terms import BREACH, TargetSpec, TicketPolicy


@lru_cache(maxsize=256)
def _duration(text: str) -> Duration:
    return parse_duration(text)


def ticket_policy(policy: Policy, name: str) -> TicketPolicy:
    """The parts of a policy the ticket book needs; the escalation steps as they are."""
    levels = {
        level.name: {
            target.name: TargetSpec(str(target.duration), target.calendar.name, target.starts.value)
            for target in level.targets.values()
        }
        for level in policy.levels.values()
    }
    steps = policy.escalations
    if not any(step.action is EscalationAction.BREACH for step in steps):
        steps = (*steps, BREACH)  # a breach is always reported, even if the file names none
    by_release = frozenset(lv.name for lv in policy.levels.values() if lv.resolution_by_release)
    return TicketPolicy(
        name,
        levels,
        steps,
        policy.followup,
        policy.warranty,
        exemptions=policy.exemptions,
        by_release=by_release,
    )


class SlaEngine:
    """PolicySource and SlaMaths over the policy files of ``rules_dir`` (default: shipped)."""

    def __init__(self, rules_dir: Path | None = None) -> None:
        self._rules_dir = rules_dir
        # The ticket view of each policy ``load_policy`` handed out, rebuilt when it hands out
        # another object (after ``clear_policy_cache``): a translation, not a second cache.
        self._views: dict[str, tuple[Policy, TicketPolicy]] = {}
        # Calendars by name, as the policies served resolved them (a policy read by path
        # names calendars of its own folder, which ``rules_dir`` may not hold).
        self._calendars: dict[str, Calendar] = {}

    def ticket_policy(self, name: str) -> TicketPolicy:
        policy = load_policy(name, self._rules_dir)
        seen = self._views.get(name)
        if seen is not None and seen[0] is policy:
            return seen[1]
        for level in policy.levels.values():
            for target in level.targets.values():
                self._calendars.setdefault(target.calendar.name, target.calendar)
        view = ticket_policy(policy, name)
        self._views[name] = (policy, view)
        return view

    def instant_at(self, target: TargetClock, fraction: float) -> datetime | None:
        return self.clock(target).instant_at(fraction)

    def clock(self, target: TargetClock) -> SlaClock:
        """The SLA engine's clock for a stored target."""
        closed = tuple((a, b) for a, b in target.pauses if b is not None)
        open_since = target.pauses[-1][0] if target.paused else None
        spec = Target(target.name, _duration(target.duration), self._calendar(target.calendar))
        return SlaClock(
            target=spec,
            started=target.start,
            pauses=closed,
            paused_since=open_since,
            stopped_at=target.stopped_at,
        )

    def _calendar(self, name: str) -> Calendar:
        calendar = self._calendars.get(name)
        if calendar is None:
            calendar = self._calendars[name] = load_calendar(name, self._rules_dir)
        return calendar
