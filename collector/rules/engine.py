# ruff: noqa: PLR0917  # internal transition methods take positional arguments, for speed
"""The rules engine's dispatcher: inputs with their instant in, classified fault events out.

Two layers. Evaluation (``evaluators``) turns samples, events, traps and timers into condition
transitions of a device (``cond_up`` / ``cond_down``). The fault layer here aggregates them per
fault kind and decides, once per transition, what the outside sees: a fault opened, held back
(``holds``: maintenance, parent offline, site outage, flapping), absorbed into another fault
(``correlation``), exempt from the SLA, cleared. What it remembers is ``state``; time: ``at``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any, Final

from agent import wire
from collector.rules.classify import FaultMaker, PolicyBook, PolicyLoader, sla_loader
from collector.rules.correlation import Correlation
from collector.rules.evaluators import Plans
from collector.rules.faults import (
    EPS,
    EventType,
    Fault,
    FaultEvent,
    Hold,
    Outbox,
    Scope,
    utc,
    worse,
)
from collector.rules.flapping import FlapDamping
from collector.rules.holds import Holds, PowerLossExemption
from collector.rules.inputs import Input, Maintenance, Trap
from collector.rules.inventory import Device, Inventory, unassigned
from collector.rules.ruleset import Flapping, Offline, Rule, RuleSet, SiteOutage
from collector.rules.snapshot import export_state, load_state, rearm, rebase
from collector.rules.state import DeviceState, EngineState, KindState
from collector.rules.timers import Timer, TimerKind, TimerQueue

ABSENCE: Final = "absence"  # offline instance keys
STATE: Final = "state"


class Engine:
    """Pure and deterministic: the same inputs at the same instants give the same events."""

    def __init__(
        self,
        inventory: Inventory,
        rules: RuleSet,
        *,
        default_policy: str,
        rules_dir: Path | None = None,
        policies: PolicyLoader | None = None,
    ) -> None:
        self.inventory = inventory
        self.rules = rules
        self.default_policy = default_policy
        source = Path(inventory.source)
        base = source.parent if source.is_file() else None  # policy files sit beside it
        book = PolicyBook(policies or sla_loader(rules_dir, base=base), source=inventory.source)
        for ref in sorted(inventory.policies() | {default_policy}):
            book.get(ref)  # fail at start, naming the policy, not at the first fault
        self._maker = FaultMaker(book, default_policy)
        self._offline = rules.first_of_type(Offline)
        self._offline_kind = self._offline.fault if self._offline else None
        self._out = Outbox()
        self._timers = TimerQueue()  # cleared, never replaced: flap damping pushes to it too
        self._flap = FlapDamping(
            rules.first_of_type(Flapping),
            rules.kinds,
            maker=self._maker,
            outbox=self._out,
            timers=self._timers,
        )
        self._power = PowerLossExemption(rules.power)
        self._rules_by_name = {rule.name: rule for rule in rules.rules}
        self._plans = Plans(rules)
        self.state = EngineState()
        for dev in inventory:
            self.state.devices[dev.device] = self._new_device(dev)
        self._holds = Holds(self.state, inventory, self._offline_kind, self._flap)
        self._correlation = Correlation(
            inventory,
            self.state,
            offline_kind=self._offline_kind,
            site_rule=rules.first_of_type(SiteOutage),
            maker=self._maker,
            outbox=self._out,
            power=self._power,
            release=self._root_cause_gone,
        )
        for m in inventory.maintenance:  # windows announced in the inventory
            window = self.state.maintenance.add(m)
            self._timers.push(window.end, TimerKind.MAINTENANCE_END, window.id)
        self._deferred: list[tuple[DeviceState, KindState, str, float]] | None = None

    # ------------------------------------------------------------------ public API

    def process(self, msg: Input, at: datetime) -> list[FaultEvent]:
        """Handle one input arriving at ``at`` (timers due before it fire first)."""
        t = self._advance(at)
        match msg:
            case wire.Telemetry():
                self._telemetry(msg, t)
            case wire.State():
                self._state(msg, t)
            case wire.Event():
                st = self._device(msg.device)
                self._seen(st, t)
                if msg.event in self.rules.power.events:
                    st.gasp_at = t
                for ev in st.plan.events.get(msg.event, ()):
                    ev.signal(self, st, msg.event, msg.data, t)
            case wire.Birth():
                self._birth(msg, t)
            case Trap():
                self._trap(msg, t)
            case Maintenance():
                self._announce(msg, t)
            case wire.Reply():
                self._seen(self._device(msg.device), t)
            case wire.Command():
                pass  # our own downlink; says nothing about the device
        return self._out.drain()

    def tick(self, at: datetime) -> list[FaultEvent]:
        """Let time pass to ``at``: absence, clear-after, maintenance ends, flapping ends."""
        self._advance(at)
        return self._out.drain()

    def resume(self, at: datetime) -> None:
        """The collector was not listening from the engine's ``now`` to ``at`` (it was down, or
        the broker was): absence does not count that time (``snapshot.rebase``)."""
        rebase(self.state, at.timestamp())

    def open_faults(self) -> list[Fault]:
        return self.state.open_faults()

    def device(self, device: str) -> Device | None:
        return st.dev if (st := self.state.devices.get(device)) else None

    def holds(self) -> dict[str, dict[str, Hold]]:
        """Faults held back, by device and kind, with the reason (for the board)."""
        return self.state.held()

    @property
    def now(self) -> datetime | None:
        return utc(self.state.now) if self.state.now is not None else None

    def export_state(self) -> dict[str, Any]:
        """Everything needed to continue after a restart, as JSON-able data."""
        return export_state(self.state)

    @classmethod
    def restore(
        cls,
        inventory: Inventory,
        rules: RuleSet,
        state: Mapping[str, Any],
        *,
        default_policy: str,
        rules_dir: Path | None = None,
        policies: PolicyLoader | None = None,
    ) -> Engine:
        """An engine continuing from ``export_state`` output (the rules or the inventory may
        have changed: state of rules or devices that no longer exist is dropped)."""
        engine = cls(
            inventory, rules, default_policy=default_policy, rules_dir=rules_dir, policies=policies
        )
        known = load_state(engine.state, state, rules=rules, new_device=engine._new_device)
        engine._rearm(known)
        return engine

    def _rearm(self, known: frozenset[str]) -> None:
        """Timers from the restored state; devices the snapshot did not know (added to the
        inventory since) are watched from now on."""
        self._timers.clear()
        rearm(self.state, self.rules, self._timers)
        if self.state.now is not None:
            for name, st in self.state.devices.items():
                if name not in known:
                    self._seen(st, self.state.now, report=False)

    # ------------------------------------------------------------------ time

    def _advance(self, at: datetime) -> float:
        t = at.timestamp()
        state = self.state
        if state.now is None:
            state.now = t
            if self._offline is not None:  # the inventory is watched from the first input on
                for st in state.devices.values():
                    self._seen(st, t, report=False)
        t = max(t, state.now)  # late inputs are handled at the engine's time
        while (timer := self._timers.pop_due(t)) is not None:
            state.now = max(state.now, timer.due)
            if timer.kind is TimerKind.ABSENCE:
                self._absences(timer, t)
            else:
                self._fire(timer)
        state.now = t
        return t

    def _absences(self, first: Timer, limit: float) -> None:
        """Devices found absent at the same instant are all marked offline before any decision,
        so that a parent and its children, or a whole site, give one root-cause fault."""
        self._deferred = []
        timer: Timer | None = first
        while timer is not None:
            self._fire(timer)
            nxt = self._timers.peek()
            same = nxt is not None and nxt.kind is TimerKind.ABSENCE and nxt.due == first.due
            timer = self._timers.pop_due(limit) if same else None
        deferred, self._deferred = self._deferred, None
        for st, ks, kind, at in deferred:
            if st.kinds.get(kind) is ks and ks.active and ks.fault is None and ks.held is None:
                self._kind_up(st, ks, kind, at)

    def _fire(self, timer: Timer) -> None:
        if timer.kind is TimerKind.MAINTENANCE_END:
            self._maintenance_end(timer.subject, timer.due)
            return
        st = self.state.devices.get(timer.subject)
        if st is None:
            return
        if timer.kind is TimerKind.ABSENCE:
            self._absence_due(st, timer.due)
        elif timer.kind is TimerKind.CLEAR_AFTER:
            if st.expiry is not None and st.expiry.get(timer.key) == timer.due:
                del st.expiry[timer.key]
                kind = self._rule_of_key(timer.key)
                if kind is not None:
                    self.cond_down(st, kind, timer.key, timer.due)
        elif timer.kind is TimerKind.FLAP_END:
            self._flap_end(st, timer.key, timer.due)

    def _rule_of_key(self, key: str) -> str | None:
        """The fault kind of a condition instance key (``rule`` or ``rule|instance``)."""
        rule = self._rules_by_name.get(key.split("|", 1)[0])
        return rule.fault if rule is not None else None

    # ------------------------------------------------------------------ inputs

    def _device(
        self, name: str, model: str = "", labels: Mapping[str, str] | None = None
    ) -> DeviceState:
        st = self.state.devices.get(name)
        if st is None:  # not in the inventory: monitored as unassigned, default policy
            dev = unassigned(name, self.default_policy, model=model)
            if labels:
                dev = replace(dev, labels=dict(labels))
            st = self.state.devices[name] = self._new_device(dev)
        return st

    def _new_device(self, dev: Device) -> DeviceState:
        return DeviceState(dev, self._plans.of(dev))

    def _seen(self, st: DeviceState, t: float, *, report: bool = True, arm: bool = True) -> None:
        """A sign of life: re-arms the absence timer (``arm``: a device expected to report),
        clears offline, ends a power loss."""
        st.last_seen = t
        if self._offline is None:
            return
        if not st.armed and arm:
            assert isinstance(self._offline.condition, Offline)
            due = t + self._offline.condition.missed * st.interval
            self._timers.push(due, TimerKind.ABSENCE, st.dev.device)
            st.armed = True
        if report:
            st.gasp_at = None
            if self._offline_kind in st.kinds:
                self.cond_down(st, self._offline_kind, ABSENCE, t)
                self.cond_down(st, self._offline_kind, STATE, t)

    def _absence_due(self, st: DeviceState, due: float) -> None:
        assert self._offline is not None and isinstance(self._offline.condition, Offline)
        missed = self._offline.condition.missed
        expected = st.last_seen + missed * st.interval
        if expected > due + EPS:  # reports came since: wait for the new due instant
            self._timers.push(expected, TimerKind.ABSENCE, st.dev.device)
            return
        st.armed = False
        self.cond_up(st, self._offline, ABSENCE, st.last_seen + st.interval, due)

    def _telemetry(self, msg: wire.Telemetry, t: float) -> None:
        st = self._device(msg.device, labels=msg.labels)
        self._seen(st, t)
        ts = msg.ts.timestamp()
        if ts < st.last_ts:
            return  # older than what was evaluated (spool replay): evidence of life only
        st.last_ts = ts
        for_metric = st.plan.for_metric
        for name, value in msg.metrics.items():
            evals = for_metric(name)
            for ev in evals:
                ev.sample(self, st, name, value, ts, t)

    def _state(self, msg: wire.State, t: float) -> None:
        st = self._device(msg.device)
        if msg.state is wire.DeviceState.ONLINE:
            self._seen(st, t)
            return
        if msg.state is wire.DeviceState.DYING_GASP:
            st.gasp_at = t
        if self._offline is not None:
            self.cond_up(st, self._offline, STATE, t, t)

    def _birth(self, msg: wire.Birth, t: float) -> None:
        st = self._device(msg.device, model=msg.model, labels=msg.labels)
        dev = st.dev
        labels = {**dev.labels, **msg.labels}
        model = dev.model or msg.model
        if labels != dict(dev.labels) or model != dev.model:
            st.dev = replace(dev, labels=labels, model=model)
            st.plan = self._plans.of(st.dev)
        st.interval = float(msg.interval_s)
        self._seen(st, t)
        ts = msg.ts.timestamp()
        fields = {"firmware": msg.firmware, "serial": msg.serial, "model": msg.model}
        for name, value in fields.items():
            for ev in st.plan.for_metric(name):
                ev.sample(self, st, name, value, ts, t)

    def _trap(self, trap: Trap, t: float) -> None:
        st = self._device(trap.device)
        name = trap.name or (self.rules.traps.get(trap.oid, "") if trap.oid else "")
        self._seen(st, t, arm=st.dev.assigned)  # known from traps alone: not judged for absence
        if name in self.rules.power.traps:
            st.gasp_at = t
        for ev in st.plan.traps.get(name, ()):
            ev.signal(self, st, name, trap.varbinds, t)

    # ------------------------------------------------------------------ condition layer (Sink)

    def cond_up(
        self,
        st: DeviceState,
        rule: Rule,
        key: str,
        onset: float,
        at: float,
        detail: Mapping[str, Any] | None = None,
    ) -> None:
        ks = st.kinds.get(rule.fault)
        if ks is None:
            ks = st.kinds[rule.fault] = KindState(rule)
        if key in ks.active:
            return
        if ks.fault is not None:  # joining an open fault: its clock does not move back
            onset = max(onset, ks.fault.onset.timestamp())
        ks.active[key] = onset
        if len(ks.active) > 1 and worse(rule.impact, ks.rule.impact):
            self._escalate(st, ks, rule, at)
        if len(ks.active) == 1:
            ks.rule, ks.detail = rule, detail
            if self._deferred is not None:
                self._deferred.append((st, ks, rule.fault, at))
            else:
                self._kind_up(st, ks, rule.fault, at)

    def _escalate(self, st: DeviceState, ks: KindState, rule: Rule, at: float) -> None:
        """A rule with a worse impact joined an active fault: re-classify it, same onset."""
        ks.rule = rule
        if ks.fault is None:
            return  # held: it is raised with the worse impact when its hold ends
        old = ks.fault
        ks.fault = self._maker.make(
            old.kind,
            rule,
            Scope.DEVICE,
            st.dev.device,
            old.onset.timestamp(),
            st.dev,
            exempt=old.exempt,
            detail=ks.detail,
        )
        self._out.emit(EventType.ESCALATED, at, ks.fault, extra={"from_level": old.level})

    def cond_down(self, st: DeviceState, kind: str, key: str, at: float) -> None:
        ks = st.kinds.get(kind)
        if ks is None or ks.active.pop(key, None) is None or ks.active:
            return
        del st.kinds[kind]
        if ks.fault is not None:
            self._out.emit(EventType.CLEARED, at, ks.fault)
        if kind == self._offline_kind:
            self._correlation.offline_changed(st, at, up=False)

    def expire_after(self, st: DeviceState, key: str, due: float) -> None:
        if st.expiry is None:
            st.expiry = {}
        st.expiry[key] = due
        self._timers.push(due, TimerKind.CLEAR_AFTER, st.dev.device, key)

    # ------------------------------------------------------------------ fault layer

    def _kind_up(self, st: DeviceState, ks: KindState, kind: str, at: float) -> None:
        """A fault kind became active: decide, in order, maintenance, root cause (site outage,
        parent offline), flapping; raise it if nothing holds it."""
        holds = self._holds
        ks.held = holds.maintenance.holds(st, at)
        if ks.held is None and kind == self._offline_kind and st.dev.site is not None:
            # may form the site's outage and absorb this one
            self._correlation.site_update(st.dev.site, at)
        if ks.held is None:
            ks.held = holds.root_cause(st, kind)
        if ks.held is None and kind in self._flap.watched:  # only openings raised count
            ks.held = self._flap.attempt(st, kind, at)
        if ks.held is None:
            self._open(st, ks, kind, at)
        if kind == self._offline_kind:
            self._correlation.offline_changed(st, at, up=True)

    def _release(self, st: DeviceState, ks: KindState, kind: str, at: float) -> None:
        """A hold ended: the fault is raised now if nothing else holds it."""
        if ks.fault is not None or not ks.active:
            return
        ks.held = self._holds.holds(st, kind, at)
        if ks.held is None:
            self._open(st, ks, kind, at, not_before=at)

    def _open(
        self, st: DeviceState, ks: KindState, kind: str, at: float, not_before: float | None = None
    ) -> None:
        onset = ks.onset
        if not_before is not None:
            onset = max(onset, not_before)
        onset = self.state.maintenance.after_windows(st.dev.device, st.dev.site, onset, at)
        for key, value in ks.active.items():  # the condition's clock starts no earlier either
            if value < onset:
                ks.active[key] = onset
        exempt = self._power.exempts(st, onset) if kind == self._offline_kind else None
        ks.fault = self._maker.make(
            kind,
            ks.rule,
            Scope.DEVICE,
            st.dev.device,
            onset,
            st.dev,
            exempt=exempt,
            detail=ks.detail,
        )
        self._out.emit(EventType.OPENED, at, ks.fault)

    def _root_cause_gone(self, st: DeviceState, ks: KindState, at: float) -> None:
        """The parent or site outage that explained this device's absence is over: the device
        gets a fresh chance to report (its absence counts again from now); an offline state it
        announced itself still holds, and is raised now."""
        kind = self._offline_kind
        assert kind is not None
        if ks.active.pop(ABSENCE, None) is not None:
            st.last_seen = at
            if not st.armed:
                self._seen(st, at, report=False)
        if ks.active:
            self._release(st, ks, kind, at)
            return
        del st.kinds[kind]
        self._correlation.offline_changed(st, at, up=False)

    def _flap_end(self, st: DeviceState, kind: str, due: float) -> None:
        if not self._flap.end(st, kind, due):
            return
        ks = st.kinds.get(kind)
        if ks is not None and ks.held is Hold.FLAPPING:
            self._release(st, ks, kind, due)  # it settled in the failed state: a fault of its own

    # ------------------------------------------------------------------ maintenance

    def _announce(self, m: Maintenance, t: float) -> None:
        window = self.state.maintenance.add(m)
        self._timers.push(max(window.end, t), TimerKind.MAINTENANCE_END, window.id)
        if window.start < t:  # announced after the fact: open faults that began inside it
            now = self.state.now if self.state.now is not None else window.start
            for fault in self._holds.maintenance.exempt_late(window):
                self._out.emit(EventType.EXEMPTED, now, fault)

    def cancel_maintenance(self, window_id: str, at: datetime) -> list[FaultEvent]:
        """End a window now (cancelled): its held faults are raised. KeyError: unknown id."""
        window = self.state.maintenance.cancel(window_id, self._advance(at))
        self._timers.push(window.end, TimerKind.MAINTENANCE_END, window.id)
        return self.tick(at)

    def _maintenance_end(self, window_id: str, due: float) -> None:
        window = self.state.maintenance.windows.get(window_id)
        if window is None:
            return
        released = self._holds.maintenance.released(window, due)
        for site in sorted({st.dev.site for st, _, _ in released if st.dev.site}):
            self._correlation.site_update(site, due)
        for st, ks, kind in released:
            if ks.held is None:
                self._release(st, ks, kind, due)
        self.state.maintenance.prune(due)
