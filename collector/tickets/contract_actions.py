"""The contract's desk actions as pure functions on a ticket: start a target on a desk
action (unit received, on site on request), set the level (a person's decision), mark exempt
or change coverage, note the release that fixes it. Each returns the changed ticket and the
event's detail, or a refusal; the book emits the event (``book.TicketBook._contract``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from collector.sla.contract import Charge, TargetStart
from collector.sla.vocabulary import EXEMPTIONS
from collector.tickets import targets as tg
from collector.tickets.inputs import DeskAction, DeskCommand, Verdict
from collector.tickets.model import (
    WORKING_STATES,
    Coverage,
    CoverageReason,
    EventKind,
    Outcome,
    TargetClock,
    Ticket,
)
from collector.tickets.terms import SlaMaths, TargetSpec, TicketPolicy

ONSET = TargetStart.ONSET.value
DETECTION = TargetStart.DETECTION.value
AT_OPENING = frozenset({ONSET, DETECTION})


@dataclass(frozen=True, slots=True)
class Changed:
    ticket: Ticket
    kind: EventKind
    detail: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Refused:
    verdict: Verdict
    reason: str


Result = Changed | Refused


def opening_clocks(
    specs: Mapping[str, TargetSpec], onset: datetime, detected: datetime
) -> tuple[TargetClock, ...]:
    """The targets that run from the onset or the detection (not the follow-up, not those a
    desk action starts)."""
    return tuple(
        TargetClock(name, spec.duration, spec.calendar, onset if spec.starts == ONSET else detected)
        for name, spec in specs.items()
        if name not in tg.NOT_AT_OPENING and spec.starts in AT_OPENING
    )


def apply(ticket: Ticket, command: DeskCommand, policy: TicketPolicy, sla: SlaMaths) -> Result:
    action = command.action
    clock_actions = (DeskAction.RECEIVED, DeskAction.START, DeskAction.SET_LEVEL)
    if action in clock_actions and ticket.state not in WORKING_STATES:
        return Refused(Verdict.NOT_ALLOWED, f"ticket is {ticket.state.value}; cannot {action}")
    if action in (DeskAction.RECEIVED, DeskAction.START):
        return _start(ticket, command, policy)
    if action is DeskAction.DEFER:
        if not command.release:
            return Refused(Verdict.NOT_ALLOWED, "defer needs 'release' (the target release)")
        deferred = replace(ticket, deferred_to_release=True, target_release=command.release)
        detail = {"actor": command.actor, "release": command.release}
        return Changed(deferred, EventKind.DEFERRED, detail)
    if not command.comment:
        return Refused(Verdict.NOT_ALLOWED, f"{action.value} needs a reason ('comment')")
    if action is DeskAction.SET_LEVEL:
        return _set_level(ticket, command, policy, sla)
    if action is DeskAction.EXEMPT:
        return _exempt(ticket, command, policy, sla)
    return _coverage(ticket, command, policy)


def _start(ticket: Ticket, command: DeskCommand, policy: TicketPolicy) -> Result:
    specs = policy.levels.get(ticket.level, {})
    if command.action is DeskAction.RECEIVED:
        names = [n for n, s in specs.items() if s.starts == TargetStart.RECEIVED.value]
        what = "the unit's receipt"
    else:
        if not command.target:
            return Refused(Verdict.NOT_ALLOWED, "start needs 'target' (e.g. onsite, diagnosis)")
        names = [command.target] if command.target in specs else []
        what = f"target {command.target!r}"
    if not names:
        return Refused(
            Verdict.NOT_ALLOWED,
            f"policy {ticket.policy!r} level {ticket.level!r} has no target started by {what}",
        )
    present = {t.name for t in ticket.targets}
    new = [n for n in names if n not in present]
    if not new:
        return Refused(Verdict.ALREADY_DONE, f"{', '.join(names)} already started")
    clocks = [t for t in ticket.targets if t.name not in new]
    for name in new:
        clock = TargetClock(name, specs[name].duration, specs[name].calendar, command.at)
        clocks.append(tg.pause(clock, command.at) if ticket.paused else clock)
    detail = {"actor": command.actor, "targets": new, "action": command.action.value}
    return Changed(replace(ticket, targets=tuple(clocks)), EventKind.TARGET_STARTED, detail)


def relevel(
    ticket: Ticket, level: str, policy: TicketPolicy, at: datetime, sla: SlaMaths
) -> Ticket:
    """The level's targets, their clocks from the onset: a target both levels have keeps its
    pauses (and, if stopped, is judged again against the new duration); a target a desk
    started keeps its start; one the new level lacks ends ``not_needed``."""
    specs = policy.levels[level]
    kept = {t.name: t for t in ticket.targets}
    clocks: list[TargetClock] = []
    for name, spec in specs.items():
        if name in tg.NOT_AT_OPENING:
            continue
        old = kept.pop(name, None)
        first = ticket.onset if spec.starts == ONSET else ticket.opened_at
        if old is None:
            if spec.starts not in AT_OPENING:
                continue  # starts when the desk says so
            new = TargetClock(name, spec.duration, spec.calendar, first)
            clocks.append(tg.pause(new, at) if ticket.paused else new)
            continue
        start = first if spec.starts in AT_OPENING else old.start
        moved = replace(old, duration=spec.duration, calendar=spec.calendar, start=start)
        if not moved.running and moved.outcome is not Outcome.NOT_NEEDED:
            due = sla.instant_at(replace(moved, stopped_at=None), 1.0)
            met = due is not None and moved.stopped_at is not None and moved.stopped_at <= due
            moved = replace(moved, outcome=Outcome.MET if met else Outcome.MISSED)
        clocks.append(moved)
    clocks += [tg.stop(t, at, sla, Outcome.NOT_NEEDED) for t in kept.values()]
    return replace(
        ticket,
        level=level,
        targets=tuple(clocks),
        deferred_to_release=level in policy.by_release or ticket.target_release is not None,
    )


def _set_level(ticket: Ticket, command: DeskCommand, policy: TicketPolicy, sla: SlaMaths) -> Result:
    level = command.level
    if not level or level not in policy.levels:
        known = ", ".join(policy.levels)
        return Refused(
            Verdict.NOT_ALLOWED,
            f"policy {ticket.policy!r} has no level {level!r} (levels: {known})",
        )
    if level == ticket.level:
        return Refused(Verdict.ALREADY_DONE, f"level is already {level!r}")
    changed = ticket if ticket.exempt else relevel(ticket, level, policy, command.at, sla)
    detail = {
        "reason": "set_by_desk",
        "actor": command.actor,
        "why": command.comment,
        "previous_level": ticket.level,
    }
    return Changed(replace(changed, level=level), EventKind.LEVEL_CHANGED, detail)


def _exempt(ticket: Ticket, command: DeskCommand, policy: TicketPolicy, sla: SlaMaths) -> Result:
    word = command.exemption
    if word not in EXEMPTIONS:
        known = ", ".join(sorted(EXEMPTIONS))
        return Refused(Verdict.NOT_ALLOWED, f"unknown exemption {word!r} (known: {known})")
    if ticket.exempt == word:
        return Refused(Verdict.ALREADY_DONE, f"ticket is already exempt ({word})")
    clocks = tuple(tg.stop(t, command.at, sla, Outcome.NOT_NEEDED) for t in ticket.targets)
    scope = policy.warranty.out_of_scope if policy.warranty else Charge.PARTS_AND_LABOUR
    charge = scope.value if ticket.coverage is Coverage.WARRANTY else ticket.charge
    exempt = replace(
        ticket,
        exempt=word,
        coverage=Coverage.EXEMPT,
        coverage_reason=CoverageReason.EXEMPT_BY_DESK,
        charge=charge,
        claimed_exemption=None,
        targets=clocks,
    )
    detail = {
        "actor": command.actor,
        "why": command.comment,
        "exemption": word,
        "in_policy": word in policy.exemptions,
        "previous_coverage": ticket.coverage.value,
    }
    return Changed(exempt, EventKind.COVERAGE_CHANGED, detail)


def _coverage(ticket: Ticket, command: DeskCommand, policy: TicketPolicy) -> Result:
    try:
        coverage = Coverage(command.coverage or "")
    except ValueError:
        coverage = Coverage.EXEMPT
    if coverage is Coverage.EXEMPT:
        return Refused(
            Verdict.NOT_ALLOWED,
            "coverage must be warranty or billable (exempt: the 'exempt' action)",
        )
    after = policy.warranty.after_warranty if policy.warranty else Charge.PARTS_AND_LABOUR
    default = Charge.FREE if coverage is Coverage.WARRANTY else after
    try:
        charge = Charge(command.charge) if command.charge else default
    except ValueError:
        tiers = ", ".join(c.value for c in Charge)
        return Refused(Verdict.NOT_ALLOWED, f"charge must be one of {tiers}")
    changed = replace(
        ticket,
        coverage=coverage,
        coverage_reason=CoverageReason.SET_BY_DESK,
        charge=charge.value,
        exempt=None,
    )
    if ticket.exempt is not None:  # the SLA is owed after all: the clocks run from the onset
        specs = policy.levels.get(ticket.level, {})
        running = opening_clocks(specs, ticket.onset, ticket.opened_at)
        changed = replace(changed, targets=running)
    detail = {
        "actor": command.actor,
        "why": command.comment,
        "coverage": coverage.value,
        "charge": charge.value,
        "previous_coverage": ticket.coverage.value,
    }
    return Changed(changed, EventKind.COVERAGE_CHANGED, detail)
