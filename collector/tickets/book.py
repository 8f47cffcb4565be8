"""The ticket book: every live ticket and its pure lifecycle.

Inputs are fault signals, desk commands and ``tick(at)``; outputs are ``TicketEvent`` lists in
time order. Every input first ticks to its own instant, so escalations and follow-up closes that
fall before it are emitted first, each at its exact instant. All state lives in the tickets
(frozen data), so a book rebuilt from stored tickets after a restart emits the same events.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from collector.tickets import contract_actions as ca
from collector.tickets import targets as tg
from collector.tickets.coverage import ticket_coverage
from collector.tickets.inputs import (
    DeskAction,
    DeskCommand,
    DeskOutcome,
    FaultSignal,
    ManualReport,
    Verdict,
    ticket_key,
)
from collector.tickets.model import (
    LIVE_STATES,
    WORKING_STATES,
    EventKind,
    Outcome,
    RepairRecord,
    State,
    Subject,
    TargetClock,
    Ticket,
    TicketEvent,
)
from collector.tickets.numbers import format_number
from collector.tickets.terms import (
    DeviceSource,
    DeviceWarranty,
    FixedFollowup,
    FollowupRule,
    NumberAllocator,
    PolicySource,
    SlaMaths,
    TicketPolicy,
)

DEFAULT_FOLLOWUP = timedelta(hours=1)
_NO_DEVICE_WARRANTY = DeviceWarranty(start=None)


@dataclass(frozen=True, slots=True, order=True)
class _Timer:
    at: datetime
    order: float  # escalation fraction; the follow-up end sorts after steps of the same instant
    target: str
    action: str  # an EscalationAction's value (printed in events), or "followup_end"


class TicketBook:
    def __init__(
        self,
        *,
        policies: PolicySource,
        devices: DeviceSource,
        sla: SlaMaths,
        default_followup: timedelta = DEFAULT_FOLLOWUP,
    ) -> None:
        self._policies = policies
        self._devices = devices
        self._sla = sla
        self._default_followup = default_followup
        self._tickets: dict[str, Ticket] = {}
        self._by_key: dict[str, str] = {}
        self._ended: set[str] = set()
        self._repairs: dict[str, RepairRecord] = {}
        self._timers: dict[str, tuple[_Timer, ...]] = {}
        # (first timer, ticket number) per live ticket; entries go stale when a ticket changes
        # and are dropped when they reach the top. Keeps tick() O(log n) per fired timer.
        self._heap: list[tuple[_Timer, str]] = []
        self._now: datetime | None = None

    # -- state -------------------------------------------------------------------------------
    def load(self, tickets: Iterable[Ticket], repairs: Mapping[str, RepairRecord] = {}) -> None:
        """Restore live tickets and device repair dates (after a restart)."""
        for ticket in tickets:
            if ticket.state in LIVE_STATES:
                self._put(ticket)
        self._repairs.update(repairs)

    def get(self, number: str) -> Ticket | None:
        return self._tickets.get(number)

    def live(self) -> list[Ticket]:
        return list(self._tickets.values())

    @property
    def repairs(self) -> Mapping[str, RepairRecord]:
        return dict(self._repairs)

    def next_wakeup(self) -> datetime | None:
        """The earliest instant at which ``tick`` has something to emit."""
        top = self._top()
        return top[0].at if top is not None else None

    # -- inputs ------------------------------------------------------------------------------
    def on_fault(self, signal: FaultSignal, numbers: NumberAllocator) -> list[TicketEvent]:
        events = self.tick(signal.at)
        number = self._by_key.get(signal.key)
        ticket = self._tickets.get(number) if number else None
        if signal.event == "opened":
            if ticket is None:
                events.append(self._open(signal, numbers))
            elif ticket.state is State.RESOLVED:
                events.append(self._reopen(ticket, signal.at, "fault_returned", signal.fault_id))
            else:
                self._put(replace(ticket, fault_id=signal.fault_id, fault_active=True))
        elif signal.event == "cleared" and ticket is not None:
            if ticket.state in WORKING_STATES:
                events.append(self._resolve(ticket, signal.at, "fault_cleared", active=False))
            else:
                self._put(replace(ticket, fault_active=False))
        elif signal.event == "absorbed" and ticket is not None:
            events.append(self._cancel(ticket, signal.at, "absorbed"))
        elif signal.event == "exempted" and ticket is not None:
            if signal.exempt in self._policy(ticket.policy).exemptions:
                # e.g. maintenance announced after the fact: no SLA was owed, the ticket is void
                events.append(self._cancel(ticket, signal.at, f"exempt_{signal.exempt}"))
            elif ticket.claimed_exemption != signal.exempt:  # the contract does not name it
                noted = replace(ticket, claimed_exemption=signal.exempt)
                detail = {"reason": "exemption_not_in_policy", "exemption": signal.exempt}
                events.append(self._emit(noted, EventKind.COMMENTED, signal.at, detail))
        elif (
            signal.event == "escalated"
            and ticket is not None
            and ticket.state in WORKING_STATES
            and ticket.exempt is None
            and signal.level is not None
            and signal.level != ticket.level
        ):
            events.append(self._relevel(ticket, signal.at, signal.level, signal.impact))
        events.extend(self.tick(signal.at))
        return events

    def _relevel(self, ticket: Ticket, at: datetime, level: str, impact: str) -> TicketEvent:
        """The fault's impact rose and the policy gives it another level: its targets apply,
        each clock kept where both levels have it (``contract_actions.relevel``)."""
        policy = self._policy(ticket.policy)
        if level not in policy.levels:
            raise ValueError(f"policy {ticket.policy!r} has no level {level!r}")
        changed = replace(ca.relevel(ticket, level, policy, at, self._sla), impact=impact)
        detail = {"reason": "fault_escalated", "previous_level": ticket.level}
        return self._emit(changed, EventKind.LEVEL_CHANGED, at, detail)

    def mark_unrouted(self, number: str, at: datetime) -> TicketEvent | None:
        """No sink is configured for this ticket: say so on the ticket (once)."""
        ticket = self._tickets.get(number)
        if ticket is None or ticket.routed is False:
            return None
        return self._emit(replace(ticket, routed=False), EventKind.UNROUTED, at, {})

    def on_desk(self, command: DeskCommand) -> DeskOutcome:
        events = self.tick(command.at)
        outcome = self._desk(command)
        return replace(outcome, events=(*events, *outcome.events))

    def tick(self, at: datetime) -> list[TicketEvent]:
        """Emit every escalation, breach and follow-up end due at or before ``at``."""
        if self._now is None or at > self._now:
            self._now = at
        events: list[TicketEvent] = []
        while (top := self._top()) is not None and top[0].at <= at:
            heapq.heappop(self._heap)
            timer, number = top
            events.append(self._fire(self._tickets[number], timer))
        return events

    # -- transitions -------------------------------------------------------------------------
    def _open(self, signal: FaultSignal, numbers: NumberAllocator) -> TicketEvent:
        policy = self._policy(signal.policy)
        specs = policy.levels.get(signal.level) if signal.level is not None else {}
        if specs is None:
            raise ValueError(f"policy {policy.name!r} has no level {signal.level!r}")
        # Only the exemptions the contract names exempt; another is noted, and the SLA is owed.
        exempt = signal.exempt if signal.exempt in policy.exemptions else None
        claimed = signal.exempt if exempt is None else None
        facts = self._devices.warranty(signal.device) if signal.device else _NO_DEVICE_WARRANTY
        decision = ticket_coverage(
            signal,
            terms=policy.warranty,
            exempt=exempt,
            facts=facts,
            devices=self._devices,
            repairs=self._repairs,
        )
        clocks = ca.opening_clocks(specs, signal.onset, signal.at) if exempt is None else ()
        day = signal.at.date()
        members = signal.devices
        if signal.site is not None and not members and signal.manual:
            members = self._devices.site_devices(signal.site)
        first = self._devices.warranty(members[0]) if members and not signal.device else facts
        subject = Subject(
            customer=facts.customer or first.customer,
            tenant=facts.tenant or first.tenant,
            model=facts.model,
            serial=facts.serial,
            rule=signal.rule,
            metric=signal.metric,
            value=signal.value,
            devices=members,
        )
        ticket = Ticket(
            number=format_number(day, numbers.next_number(day)),
            key=signal.key,
            device=signal.device,
            site=signal.site or facts.site,
            kind=signal.kind,
            impact=signal.impact,
            fault_id=signal.fault_id,
            policy=signal.policy,
            level=signal.level or "",
            coverage=decision.coverage,
            coverage_reason=decision.reason,
            exempt=exempt,
            state=State.OPEN,
            onset=signal.onset,
            opened_at=signal.at,
            targets=clocks,
            subject=subject,
            charge=decision.charge.value,
            claimed_exemption=claimed,
            deferred_to_release=(signal.level or "") in policy.by_release,
            part_warranty_until=decision.part_warranty_until,
            manual=signal.manual,
        )
        detail = {"claimed_exemption": claimed, "in_policy": False} if claimed else {}
        return self._emit(ticket, EventKind.OPENED, signal.at, detail)

    def open_manual(self, report: ManualReport, numbers: NumberAllocator) -> list[TicketEvent]:
        """A fault a person reported (by phone): a ticket with the same clocks as a detected
        one, from ``report.onset``. Refused (ValueError) when that device or site already has
        a live ticket of that kind, or the policy has no such level."""
        key = ticket_key(report.device, report.site, report.kind)
        if key in self._by_key:
            raise ValueError(f"{key} already has ticket {self._by_key[key]}")
        if report.level not in self._policy(report.policy).levels:
            raise ValueError(f"policy {report.policy!r} has no level {report.level!r}")
        members = self._devices.site_devices(report.site) if report.site else ()
        subject = report.device or report.site
        signal = FaultSignal(
            event="opened",
            at=report.at,
            fault_id=f"manual/{subject}/{report.kind}@{report.onset.isoformat()}",
            kind=report.kind,
            impact=report.impact,
            device=report.device,
            site=report.site if report.device is None else None,
            onset=report.onset,
            policy=report.policy,
            level=report.level,
            devices=members if report.device is None else (),
            manual=True,
        )
        events = self.tick(report.at)
        opened = self._open(signal, numbers)
        detail = {"reported_by": report.actor, "comment": report.comment}
        events.append(replace(opened, detail={**opened.detail, **detail}))
        events.extend(self.tick(report.at))
        return events

    def _reopen(self, ticket: Ticket, at: datetime, reason: str, fault_id: str) -> TicketEvent:
        resolved_at = ticket.resolved_at or at
        clocks = tuple(
            tg.restart(t, resolved_at, at) if _stopped_by_resolution(t, resolved_at) else t
            for t in ticket.targets
        )
        state = State.ONSITE if ticket.onsite_at is not None else State.REOPENED
        reopened = replace(
            ticket,
            state=state,
            targets=clocks,
            fault_id=fault_id,
            fault_active=True,
            resolved_at=None,
            resolved_by=None,
            closes_at=None,
            reopen_count=ticket.reopen_count + 1,
        )
        return self._emit(reopened, EventKind.REOPENED, at, {"reason": reason})

    def _resolve(self, ticket: Ticket, at: datetime, by: str, *, active: bool) -> TicketEvent:
        clocks = tuple(_stop_at_resolution(t, at, self._sla) for t in ticket.targets)
        resolved = replace(
            ticket,
            state=State.RESOLVED,
            targets=clocks,
            paused=False,
            fault_active=active,
            resolved_at=at,
            resolved_by=by,
            closes_at=self._followup(ticket).due(at),
        )
        return self._emit(resolved, EventKind.RESOLVED, at, {"reason": by})

    def _cancel(self, ticket: Ticket, at: datetime, reason: str) -> TicketEvent:
        clocks = tuple(tg.stop(t, at, self._sla, Outcome.NOT_NEEDED) for t in ticket.targets)
        cancelled = replace(ticket, state=State.CANCELLED, targets=clocks, closed_at=at)
        return self._emit(cancelled, EventKind.CANCELLED, at, {"reason": reason})

    def _fire(self, ticket: Ticket, timer: _Timer) -> TicketEvent:
        if timer.action == "followup_end":
            if ticket.fault_active:
                return self._reopen(ticket, timer.at, "fault_persisted", ticket.fault_id)
            closed = replace(ticket, state=State.CLOSED, closed_at=timer.at)
            return self._emit(closed, EventKind.CLOSED, timer.at, {"reason": "followup_done"})
        fired = replace(ticket, fired=ticket.fired | {tg.step_id(timer.target, timer.order)})
        kind = EventKind.BREACHED if timer.order >= 1.0 else EventKind.ESCALATED
        # A step that fell due before the ticket existed (onset in the past) is emitted at opening.
        at = max(timer.at, ticket.opened_at)
        detail = {
            "target": timer.target,
            "fraction": timer.order,
            "action": timer.action,
            "due": timer.at,
        }
        return self._emit(fired, kind, at, detail)

    # -- desk --------------------------------------------------------------------------------
    def _desk(self, command: DeskCommand) -> DeskOutcome:
        ticket = self._tickets.get(command.number)
        if ticket is None:
            if command.number in self._ended:
                return DeskOutcome(Verdict.TICKET_ENDED, f"ticket {command.number} has ended")
            return DeskOutcome(Verdict.UNKNOWN_NUMBER, f"no ticket numbered {command.number}")
        at, action = command.at, command.action
        actor = {"actor": command.actor}
        if action is DeskAction.COMMENT:
            detail = {**actor, "comment": command.comment or ""}
            return _applied(self._emit(ticket, EventKind.COMMENTED, at, detail))
        if action is DeskAction.CANCEL:
            return _applied(self._cancel(ticket, at, f"cancelled by {command.actor}"))
        if action in _CONTRACT_ACTIONS:
            result = ca.apply(ticket, command, self._policy(ticket.policy), self._sla)
            if isinstance(result, ca.Refused):
                return DeskOutcome(result.verdict, result.reason)
            return _applied(self._emit(result.ticket, result.kind, at, result.detail))
        if ticket.state is State.RESOLVED:
            if action is DeskAction.RESOLVE:
                return DeskOutcome(Verdict.ALREADY_DONE, "ticket is already resolved")
            return DeskOutcome(Verdict.NOT_ALLOWED, f"ticket is resolved; cannot {action}")
        if action is DeskAction.ACK:
            if ticket.acknowledged_at is not None:
                return DeskOutcome(Verdict.ALREADY_DONE, "ticket is already acknowledged")
            acked = replace(
                ticket,
                state=State.ACKNOWLEDGED if ticket.state is not State.ONSITE else ticket.state,
                acknowledged_at=at,
                targets=_stop_named(ticket.targets, {"response"}, at, self._sla),
            )
            return _applied(self._emit(acked, EventKind.ACKNOWLEDGED, at, actor))
        if action is DeskAction.ONSITE:
            if ticket.onsite_at is not None:
                return DeskOutcome(Verdict.ALREADY_DONE, "engineer is already on site")
            onsite = replace(
                ticket,
                state=State.ONSITE,
                onsite_at=at,
                acknowledged_at=ticket.acknowledged_at or at,
                targets=_stop_named(ticket.targets, {"response", "onsite"}, at, self._sla),
            )
            return _applied(self._emit(onsite, EventKind.ONSITE, at, actor))
        if action is DeskAction.RESOLVE:
            # A manual ticket has no telemetry to clear it: the desk's word ends the fault.
            active = ticket.fault_active and not ticket.manual
            resolved = self._resolve(ticket, at, "desk", active=active)
            if command.repaired and ticket.device is not None:
                self._record_repair(ticket.device, at, at - ticket.opened_at)
            return _applied(resolved)
        if action is DeskAction.PAUSE:
            if ticket.paused:
                return DeskOutcome(Verdict.ALREADY_DONE, "ticket is already paused")
            clocks = tuple(tg.pause(t, at) for t in ticket.targets)
            paused = replace(ticket, paused=True, targets=clocks)
            return _applied(self._emit(paused, EventKind.PAUSED, at, actor))
        if action is DeskAction.RESUME:
            if not ticket.paused:
                return DeskOutcome(Verdict.ALREADY_DONE, "ticket is not paused")
            clocks = tuple(tg.resume(t, at) for t in ticket.targets)
            resumed = replace(ticket, paused=False, targets=clocks)
            return _applied(self._emit(resumed, EventKind.RESUMED, at, actor))
        raise AssertionError(f"unhandled desk action {action}")  # pragma: no cover

    # -- helpers -----------------------------------------------------------------------------
    def _emit(
        self, ticket: Ticket, kind: EventKind, at: datetime, detail: Mapping[str, Any]
    ) -> TicketEvent:
        ticket = replace(ticket, seq=ticket.seq + 1)
        self._put(ticket)
        return TicketEvent(kind, at, ticket, dict(detail))

    def _put(self, ticket: Ticket) -> None:
        self._timers.pop(ticket.number, None)
        if ticket.state in LIVE_STATES:
            self._tickets[ticket.number] = ticket
            self._by_key[ticket.key] = ticket.number
            timers = tuple(sorted(self._pending(ticket)))
            self._timers[ticket.number] = timers
            if timers:
                heapq.heappush(self._heap, (timers[0], ticket.number))
        else:
            self._tickets.pop(ticket.number, None)
            if self._by_key.get(ticket.key) == ticket.number:
                del self._by_key[ticket.key]
            self._ended.add(ticket.number)

    def _top(self) -> tuple[_Timer, str] | None:
        """The earliest live timer, dropping stale heap entries on the way."""
        while self._heap:
            timer, number = self._heap[0]
            timers = self._timers.get(number)
            if timers and timers[0] == timer:
                return self._heap[0]
            heapq.heappop(self._heap)
        return None

    def _pending(self, ticket: Ticket) -> Iterable[_Timer]:
        if ticket.state is State.RESOLVED and ticket.closes_at is not None:
            yield _Timer(ticket.closes_at, 2.0, "", "followup_end")
        if ticket.state not in WORKING_STATES:
            return
        steps = self._policy(ticket.policy).steps
        for target in ticket.targets:
            if not target.running or target.paused:
                continue
            for step in (s for s in steps if s.applies(ticket.level, target.name)):
                if tg.step_id(target.name, step.at) in ticket.fired:
                    continue
                instant = self._sla.instant_at(target, step.at)
                if instant is not None:
                    yield _Timer(instant, step.at, target.name, step.action.value)

    def _record_repair(self, device: str, at: datetime, took: timedelta) -> None:
        before = self._repairs.get(device)
        total = took + (before.repair_time if before else timedelta(0))
        self._repairs[device] = RepairRecord(at.date(), total)

    def _policy(self, name: str) -> TicketPolicy:
        return self._policies.ticket_policy(name)

    def _followup(self, ticket: Ticket) -> FollowupRule:
        followup = self._policy(ticket.policy).followup
        return followup if followup is not None else FixedFollowup(self._default_followup)


def _stop_named(
    clocks: tuple[TargetClock, ...], names: set[str], at: datetime, sla: SlaMaths
) -> tuple[TargetClock, ...]:
    return tuple(tg.stop(t, at, sla) if t.name in names else t for t in clocks)


def _stop_at_resolution(target: TargetClock, at: datetime, sla: SlaMaths) -> TargetClock:
    # Resolved without a visit: the on-site target was not needed; everything else is judged.
    outcome = Outcome.NOT_NEEDED if target.name == "onsite" else None
    return tg.stop(target, at, sla, outcome)


def _stopped_by_resolution(target: TargetClock, resolved_at: datetime) -> bool:
    if target.stopped_at != resolved_at:
        return False
    return target.name in tg.RESOLUTION_TARGETS or target.outcome is Outcome.NOT_NEEDED


_CONTRACT_ACTIONS = frozenset(
    {
        DeskAction.RECEIVED,
        DeskAction.START,
        DeskAction.SET_LEVEL,
        DeskAction.EXEMPT,
        DeskAction.COVERAGE,
        DeskAction.DEFER,
    }
)


def _applied(event: TicketEvent) -> DeskOutcome:
    return DeskOutcome(Verdict.APPLIED, event.kind.value, (event,))
