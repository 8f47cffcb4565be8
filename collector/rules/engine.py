# ruff: noqa: PLR0917  # internal transition methods take positional arguments, for speed
"""The rules engine: inputs with their instant in, classified fault events out.

Two layers. Evaluation (``evaluators``) turns samples, events, traps and timers into condition
transitions of a device (``cond_up`` / ``cond_down``). The fault layer below aggregates them per
fault kind and decides, once per transition, what the outside sees: a fault opened, held back
(maintenance, parent offline, site outage, flapping: a :class:`Hold`), absorbed into another
fault, exempt from the SLA, cleared. Time only ever comes from the inputs (``at``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from agent import wire
from collector.rules.classify import PolicyBook, PolicyLoader, sla_loader
from collector.rules.evaluators import DeviceState, Plan
from collector.rules.faults import (
    Criticality,
    EventType,
    Exemption,
    Fault,
    FaultEvent,
    Impact,
    Scope,
)
from collector.rules.inputs import Input, Maintenance, Trap
from collector.rules.inventory import Device, Inventory, unassigned
from collector.rules.ruleset import Flapping, Offline, Rule, RuleSet, SiteOutage
from collector.rules.suppression import Hold, MaintenanceBook, Window
from collector.rules.timers import Timer, TimerKind, TimerQueue

ABSENCE: Final = "absence"  # offline instance keys
STATE: Final = "state"
_EPS: Final = 1e-6


def _dt(t: float) -> datetime:
    return datetime.fromtimestamp(t, UTC)


class KindState:
    """One fault kind on one device: its active condition instances and what was decided."""

    __slots__ = ("active", "detail", "fault", "held", "rule")

    def __init__(self, rule: Rule) -> None:
        self.rule = rule  # the rule that activated it first: name and impact
        self.active: dict[str, float] = {}  # instance key -> onset
        self.fault: Fault | None = None  # the open fault, once raised
        self.held: Hold | None = None  # why it is not raised (yet)
        self.detail: Mapping[str, Any] | None = None

    @property
    def onset(self) -> float:
        return min(self.active.values())


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
        self._book = PolicyBook(policies or sla_loader(rules_dir, base=base))
        for ref in sorted(inventory.policies() | {default_policy}):
            self._book.get(ref)  # fail at start, naming the policy, not at the first fault
        self._offline = _single(rules, Offline)
        self._site = _single(rules, SiteOutage)
        self._flap = _single(rules, Flapping)
        self._offline_kind = self._offline.fault if self._offline else None
        flap = self._flap.condition if self._flap else None
        self._flap_of: frozenset[str] = (
            (flap.of or (rules.kinds - {self._flap.fault if self._flap else ""}))
            if isinstance(flap, Flapping)
            else frozenset()
        )
        self._rules_by_name = {rule.name: rule for rule in rules.rules}
        self._plans: dict[tuple[Any, ...], Plan] = {}
        self._devices: dict[str, DeviceState] = {}
        for dev in inventory:
            self._devices[dev.device] = DeviceState(dev, self._plan(dev))
        self._descendants: dict[str, tuple[str, ...]] = {}
        self._timers = TimerQueue()
        self._maintenance = MaintenanceBook()
        for m in inventory.maintenance:  # windows announced in the inventory
            window = self._maintenance.add(m)
            self._timers.push(window.end, TimerKind.MAINTENANCE_END, window.id)
        self._site_faults: dict[str, Fault] = {}
        self._site_cleared: dict[str, float] = {}  # when each site's last outage ended
        self._now: float | None = None
        self._out: list[FaultEvent] = []
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
        return self._drain()

    def tick(self, at: datetime) -> list[FaultEvent]:
        """Let time pass to ``at``: absence, clear-after, maintenance ends, flapping ends."""
        self._advance(at)
        return self._drain()

    def open_faults(self) -> list[Fault]:
        faults: list[Fault] = []
        for st in self._devices.values():
            faults.extend(ks.fault for ks in st.kinds.values() if ks.fault is not None)
            if st.flapping:
                faults.extend(st.flapping.values())
        faults.extend(self._site_faults.values())
        return faults

    def device(self, device: str) -> Device | None:
        st = self._devices.get(device)
        return st.dev if st else None

    def holds(self) -> dict[str, dict[str, Hold]]:
        """Faults held back, by device and kind, with the reason (for the board)."""
        out: dict[str, dict[str, Hold]] = {}
        for name, st in self._devices.items():
            for kind, ks in st.kinds.items():
                if ks.held is not None and ks.active:
                    out.setdefault(name, {})[kind] = ks.held
        return out

    # ------------------------------------------------------------------ restart

    def export_state(self) -> dict[str, Any]:
        """Everything needed to continue after a restart, as JSON-able data."""
        from collector.rules.snapshot import export_state

        return export_state(self)

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
        from collector.rules.snapshot import load_state

        engine = cls(
            inventory, rules, default_policy=default_policy, rules_dir=rules_dir, policies=policies
        )
        load_state(engine, state)
        return engine

    @property
    def now(self) -> datetime | None:
        return _dt(self._now) if self._now is not None else None

    # ------------------------------------------------------------------ time

    def _advance(self, at: datetime) -> float:
        t = at.timestamp()
        if self._now is None:
            self._now = t
            if self._offline is not None:  # the inventory is watched from the first input on
                for st in self._devices.values():
                    self._seen(st, t, report=False)
        t = max(t, self._now)  # late inputs are handled at the engine's time
        while (timer := self._timers.pop_due(t)) is not None:
            self._now = max(self._now, timer.due)
            if timer.kind is TimerKind.ABSENCE:
                self._absences(timer, t)
            else:
                self._fire(timer)
        self._now = t
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
        st = self._devices.get(timer.subject)
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
        st = self._devices.get(name)
        if st is None:  # not in the inventory: monitored as unassigned, default policy
            dev = unassigned(name, self.default_policy, model=model)
            if labels:
                dev = replace(dev, labels=dict(labels))
            st = self._devices[name] = DeviceState(dev, self._plan(dev))
        return st

    def _plan(self, dev: Device) -> Plan:
        key = (dev.cls, dev.model, tuple(sorted(dev.labels.items())))
        plan = self._plans.get(key)
        if plan is None:
            plan = self._plans[key] = Plan(self.rules, dev)
        return plan

    def _seen(self, st: DeviceState, t: float, *, report: bool = True) -> None:
        """A sign of life: re-arms the absence timer, clears offline, ends a power loss."""
        st.last_seen = t
        if self._offline is None:
            return
        if not st.armed:
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
        if expected > due + _EPS:  # reports came since: wait for the new due instant
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
            st.plan = self._plan(st.dev)
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
        self._seen(st, t)
        if name in self.rules.power.traps:
            st.gasp_at = t
        for ev in st.plan.traps.get(name, ()):
            ev.signal(self, st, name, trap.varbinds, t)

    def _announce(self, m: Maintenance, t: float) -> None:
        window = self._maintenance.add(m)
        self._timers.push(max(window.end, t), TimerKind.MAINTENANCE_END, window.id)
        if window.start < t:  # announced after the fact: open faults that began inside it
            self._exempt_past(window)

    def _exempt_past(self, window: Window) -> None:
        now = self._now if self._now is not None else window.start
        names = (
            (window.device,) if window.device else self.inventory.sites.get(window.site or "", ())
        )
        for name in names:
            st = self._devices.get(name)
            if st is None:
                continue
            for ks in st.kinds.values():
                fault = ks.fault
                if (
                    fault is not None
                    and fault.exempt is None
                    and window.covers(name, st.dev.site, fault.onset.timestamp())
                ):
                    ks.fault = self._exempted(fault, now)
        site_fault = self._site_faults.get(window.site or "")
        if (
            site_fault is not None
            and site_fault.exempt is None
            and window.site is not None
            and window.start <= site_fault.onset.timestamp() < window.end
        ):
            self._site_faults[window.site] = self._exempted(site_fault, now)

    def _exempted(self, fault: Fault, at: float) -> Fault:
        fault = replace(fault, exempt=Exemption.MAINTENANCE, deadlines={})
        self._emit(EventType.EXEMPTED, at, fault)
        return fault

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
        if len(ks.active) > 1 and _worse(rule, ks.rule):
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
        ks.fault = self._fault(
            old.kind,
            rule,
            Scope.DEVICE,
            st.dev.device,
            old.onset.timestamp(),
            st.dev,
            exempt=old.exempt,
            detail=ks.detail,
        )
        self._emit(EventType.ESCALATED, at, ks.fault, extra={"from_level": old.level})

    def cond_down(self, st: DeviceState, kind: str, key: str, at: float) -> None:
        ks = st.kinds.get(kind)
        if ks is None or ks.active.pop(key, None) is None or ks.active:
            return
        del st.kinds[kind]
        if ks.fault is not None:
            self._emit(EventType.CLEARED, at, ks.fault)
        if kind == self._offline_kind:
            self._offline_changed(st, at, up=False)

    def expire_after(self, st: DeviceState, key: str, due: float) -> None:
        if st.expiry is None:
            st.expiry = {}
        st.expiry[key] = due
        self._timers.push(due, TimerKind.CLEAR_AFTER, st.dev.device, key)

    # ------------------------------------------------------------------ fault layer

    def _kind_up(self, st: DeviceState, ks: KindState, kind: str, at: float) -> None:
        """A fault kind became active: decide, in order, maintenance, root cause (site outage,
        parent offline), flapping; raise it if nothing holds it."""
        ks.held = self._maintenance.mutes(st.dev.device, st.dev.site, at)
        if ks.held is None and kind == self._offline_kind and st.dev.site is not None:
            self._site_update(st.dev.site, at)  # may form the site's outage and absorb this one
        if ks.held is None:
            ks.held = self._structural_hold(st, kind)
        if ks.held is None and kind in self._flap_of:  # only openings that would be raised count
            ks.held = self._flap_attempt(st, kind, at)
        if ks.held is None:
            self._open(st, ks, kind, at)
        if kind == self._offline_kind:
            self._offline_changed(st, at, up=True)

    def _structural_hold(self, st: DeviceState, kind: str) -> Hold | None:
        """Root cause only: a device's offline fault waits on its site's outage or its parent."""
        if kind != self._offline_kind:
            return None
        if st.dev.site is not None and st.dev.site in self._site_faults:
            return Hold.SITE_OUTAGE
        parent = st.dev.parent
        while parent is not None:
            pst = self._devices.get(parent)
            if pst is None:
                break
            if kind in pst.kinds:
                return Hold.PARENT_OFFLINE
            parent = pst.dev.parent
        return None

    def _hold_now(self, st: DeviceState, kind: str, at: float) -> Hold | None:
        """Whether a held-back fault must still wait (every hold, in order)."""
        hold = self._maintenance.mutes(st.dev.device, st.dev.site, at)
        if hold is None and st.flapping and kind in st.flapping:
            hold = Hold.FLAPPING
        return hold or self._structural_hold(st, kind)

    def _release(self, st: DeviceState, ks: KindState, kind: str, at: float) -> None:
        """A hold ended: the fault is raised now if nothing else holds it."""
        if ks.fault is not None or not ks.active:
            return
        ks.held = self._hold_now(st, kind, at)
        if ks.held is None:
            self._open(st, ks, kind, at, not_before=at)

    def _open(
        self, st: DeviceState, ks: KindState, kind: str, at: float, not_before: float | None = None
    ) -> None:
        onset = ks.onset
        if not_before is not None:
            onset = max(onset, not_before)
        onset = self._after_windows(st, onset, at)
        for key, value in ks.active.items():  # the condition's clock starts no earlier either
            if value < onset:
                ks.active[key] = onset
        exempt = None
        if kind == self._offline_kind and self._power_lost(st, onset):
            exempt = Exemption.POWER_OUTAGE
        ks.fault = self._fault(
            kind,
            ks.rule,
            Scope.DEVICE,
            st.dev.device,
            onset,
            st.dev,
            exempt=exempt,
            detail=ks.detail,
        )
        self._emit(EventType.OPENED, at, ks.fault)

    def _after_windows(self, st: DeviceState, onset: float, at: float) -> float:
        """An onset inside a maintenance window that has ended moves to the window's end."""
        for window in self._maintenance.windows.values():
            if window.end <= at and window.covers(st.dev.device, st.dev.site, onset):
                onset = max(onset, window.end)
        return onset

    def _power_lost(self, st: DeviceState, onset: float) -> bool:
        gasp = st.gasp_at
        return (
            gasp is not None and gasp <= onset + _EPS and onset - gasp <= self.rules.power.within_s
        )

    def _fault(
        self,
        kind: str,
        rule: Rule,
        scope: Scope,
        subject: str,
        onset: float,
        dev: Device,
        *,
        exempt: Exemption | None = None,
        detail: Mapping[str, Any] | None = None,
        devices: tuple[str, ...] = (),
        criticality: Criticality | None = None,
        key: str = "",
    ) -> Fault:
        policy = self._book.get(dev.policy or self.default_policy)
        crit = criticality or dev.criticality
        level = policy.classify(kind, rule.impact.value, scope.value, crit.value)
        onset_dt = _dt(onset)
        deadlines = (
            policy.deadlines(level, onset_dt) if level is not None and exempt is None else {}
        )
        return Fault(
            kind=kind,
            impact=rule.impact,
            scope=scope,
            subject=subject,
            onset=onset_dt,
            policy=policy.name,
            level=level,
            deadlines=dict(deadlines),
            exempt=exempt,
            devices=devices,
            rule=rule.name,
            key=key,
            detail=dict(detail) if detail else {},
        )

    def _emit(
        self,
        event: EventType,
        at: float,
        fault: Fault,
        into: str | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        self._out.append(FaultEvent(event, _dt(at), fault, into=into, extra=extra or {}))

    def _drain(self) -> list[FaultEvent]:
        out, self._out = self._out, []
        return out

    # ------------------------------------------------------------------ topology and sites

    def _offline_changed(self, st: DeviceState, at: float, *, up: bool) -> None:
        if st.dev.site is not None:
            self._site_update(st.dev.site, at)
        kind = self._offline_kind
        assert kind is not None
        ks = st.kinds.get(kind)
        for child in self._children_of(st.dev.device):
            cst = self._devices[child]
            cks = cst.kinds.get(kind)
            if cks is None:
                continue
            if up and cks.fault is not None and cks.onset >= st.last_seen - _EPS:
                into = ks.fault.id if ks is not None and ks.fault is not None else None
                self._emit(EventType.ABSORBED, at, cks.fault, into=into)
                cks.fault, cks.held = None, Hold.PARENT_OFFLINE
            elif not up and cks.held is Hold.PARENT_OFFLINE:
                self._root_cause_gone(cst, cks, at)

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
        self._offline_changed(st, at, up=False)

    def _children_of(self, device: str) -> tuple[str, ...]:
        found = self._descendants.get(device)
        if found is None:
            out: list[str] = []
            stack = list(self.inventory.children.get(device, ()))
            while stack:
                child = stack.pop(0)
                out.append(child)
                stack.extend(self.inventory.children.get(child, ()))
            found = self._descendants[device] = tuple(out)
        return found

    def _site_update(self, site: str, at: float) -> None:
        if self._site is None or self._offline_kind is None:
            return
        cond = self._site.condition
        assert isinstance(cond, SiteOutage)
        members = self.inventory.sites.get(site, ())
        offline: dict[str, float] = {}
        for name in members:
            st = self._devices[name]
            ks = st.kinds.get(self._offline_kind)
            if ks is not None and ks.active and not self._maintenance.mutes(name, site, at):
                offline[name] = self._after_windows(st, ks.onset, at)
        needed = cond.needed(len(members))
        current = self._site_faults.get(site)
        if current is not None:
            if len(offline) < needed:
                del self._site_faults[site]
                self._site_cleared[site] = at
                self._emit(EventType.CLEARED, at, current)
                for name in members:
                    st = self._devices[name]
                    ks = st.kinds.get(self._offline_kind)
                    if ks is not None and ks.held is Hold.SITE_OUTAGE:
                        self._root_cause_gone(st, ks, at)
                return
            new = tuple(n for n in offline if n not in current.devices)
            if new:
                current = replace(current, devices=tuple(sorted((*current.devices, *new))))
                self._site_faults[site] = current
                for name in new:
                    self._absorb(name, current, at)
            return
        if len(offline) < needed:
            return
        onset = _cluster_start(sorted(offline.values()), needed, cond.within_s)
        if onset is None:
            return
        onset = max(onset, self._site_cleared.get(site, onset))  # a new outage, a new clock
        devices = tuple(sorted(offline))
        first = self._devices[members[0]].dev
        crit = (
            Criticality.COMMON
            if any(self._devices[n].dev.criticality is Criticality.COMMON for n in devices)
            else Criticality.UNCOMMON
        )
        power = all(self._power_lost(self._devices[n], offline[n]) for n in devices)
        # (device onsets were moved past ended maintenance windows above)
        fault = self._fault(
            self._site.fault,
            self._site,
            Scope.SITE,
            site,
            onset,
            first,
            exempt=Exemption.POWER_OUTAGE if power else None,
            devices=devices,
            criticality=crit,
        )
        self._site_faults[site] = fault
        self._emit(EventType.OPENED, at, fault)
        for name in devices:
            self._absorb(name, fault, at)

    def _absorb(self, name: str, into: Fault, at: float) -> None:
        assert self._offline_kind is not None
        ks = self._devices[name].kinds.get(self._offline_kind)
        if ks is None:
            return
        if ks.fault is not None:
            self._emit(EventType.ABSORBED, at, ks.fault, into=into.id)
            ks.fault = None
        ks.held = Hold.SITE_OUTAGE

    # ------------------------------------------------------------------ flapping

    def _flap_attempt(self, st: DeviceState, kind: str, at: float) -> Hold | None:
        """Count this opening; the Nth within the window opens (or feeds) a flapping fault."""
        assert self._flap is not None and isinstance(self._flap.condition, Flapping)
        cond = self._flap.condition
        if st.flaps is None:
            st.flaps = {}
        recent = [t for t in st.flaps.get(kind, ()) if t > at - cond.within_s] + [at]
        st.flaps[kind] = recent
        if st.flapping and kind in st.flapping:
            self._timers.push(at + cond.within_s, TimerKind.FLAP_END, st.dev.device, kind)
            return Hold.FLAPPING
        if len(recent) < cond.opens:
            return None
        fault = self._fault(
            self._flap.fault,
            self._flap,
            Scope.DEVICE,
            st.dev.device,
            recent[0],
            st.dev,
            key=kind,
            detail={"of": kind, "opens": len(recent)},
        )
        if st.flapping is None:
            st.flapping = {}
        st.flapping[kind] = fault
        self._emit(EventType.OPENED, at, fault)
        self._timers.push(at + cond.within_s, TimerKind.FLAP_END, st.dev.device, kind)
        return Hold.FLAPPING

    def _flap_end(self, st: DeviceState, kind: str, due: float) -> None:
        assert self._flap is not None and isinstance(self._flap.condition, Flapping)
        if not st.flapping or kind not in st.flapping or st.flaps is None:
            return
        last = st.flaps.get(kind, [float("-inf")])[-1]
        if last + self._flap.condition.within_s > due + _EPS:
            return  # a later opening pushed the end further
        fault = st.flapping.pop(kind)
        st.flaps.pop(kind, None)
        self._emit(EventType.CLEARED, due, fault)
        ks = st.kinds.get(kind)
        if ks is not None and ks.held is Hold.FLAPPING:
            self._release(st, ks, kind, due)  # it settled in the failed state: a fault of its own

    # ------------------------------------------------------------------ maintenance

    def _maintenance_end(self, window_id: str, due: float) -> None:
        window = self._maintenance.windows.get(window_id)
        if window is None:
            return
        if window.device is not None:
            names: Iterable[str] = (window.device,)
        else:
            names = self.inventory.sites.get(window.site or "", ())
        released = []
        for name in names:
            st = self._devices.get(name)
            if st is None:
                continue
            for kind, ks in st.kinds.items():
                if ks.held is Hold.MAINTENANCE and not self._maintenance.mutes(
                    name, st.dev.site, due
                ):
                    ks.held = None
                    released.append((st, ks, kind))
        for site in sorted({st.dev.site for st, _, _ in released if st.dev.site}):
            self._site_update(site, due)
        for st, ks, kind in released:
            if ks.held is None:
                self._release(st, ks, kind, due)
        self._maintenance.prune(due)


_SEVERITY: Final = {impact: rank for rank, impact in enumerate(Impact)}  # outage first


def _worse(a: Rule, b: Rule) -> bool:
    return _SEVERITY[a.impact] < _SEVERITY[b.impact]


def _single(rules: RuleSet, kind: type[Any]) -> Rule | None:
    found = rules.of_type(kind)
    return found[0] if found else None


def _cluster_start(onsets: list[float], needed: int, within: float) -> float | None:
    """The first onset of the earliest ``needed`` onsets lying within ``within`` seconds."""
    for i in range(len(onsets) - needed + 1):
        if onsets[i + needed - 1] - onsets[i] <= within + _EPS:
            return onsets[i]
    return None
