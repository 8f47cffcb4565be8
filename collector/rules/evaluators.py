# ruff: noqa: PLR0917  # the per-sample hot path takes positional arguments, for speed
"""Rules compiled for evaluation, and each device's plan: metric name -> the rules reading it.

A sample only touches the rules that read its metric (one dict look-up per metric). Each
evaluator keeps its per-device state in ``Conditions.conds`` under a string key (the rule
name, plus ``|instance`` for glob metrics and keyed events), as a short list, and reports
transitions to a :class:`Sink` (the engine's fault layer).
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping
from typing import Any, Protocol, TypeVar

from collector.rules.inventory import Device
from collector.rules.ruleset import Change, Match, Rule, RuleSet, Threshold


class Conditions:
    """What the evaluators keep per device; the engine's ``DeviceState`` extends it."""

    __slots__ = ("conds", "expiry")

    def __init__(self) -> None:
        self.conds: dict[str, list[Any]] = {}
        self.expiry: dict[str, float] | None = None  # event-like instances timing out


S_contra = TypeVar("S_contra", bound=Conditions, contravariant=True)
C = TypeVar("C", bound=Conditions)


class Sink(Protocol[S_contra]):
    """Where condition transitions go (the engine's fault layer)."""

    def cond_up(
        self,
        st: S_contra,
        rule: Rule,
        key: str,
        onset: float,
        at: float,
        detail: Mapping[str, Any] | None = None,
    ) -> None: ...

    def cond_down(self, st: S_contra, kind: str, key: str, at: float) -> None: ...

    def expire_after(self, st: S_contra, key: str, due: float) -> None: ...


def _is_number(value: object) -> bool:
    return not isinstance(value, bool) and isinstance(value, int | float)


class ThresholdEval:
    __slots__ = ("breaches", "clears", "for_s", "glob", "name", "rule")

    def __init__(self, rule: Rule) -> None:
        cond = rule.condition
        assert isinstance(cond, Threshold)
        self.rule, self.name = rule, rule.name
        self.glob = cond.is_glob
        self.for_s = cond.for_s
        self.breaches, self.clears = _predicates(cond)

    def sample(self, sink: Sink[C], st: C, metric: str, value: Any, ts: float, at: float) -> None:
        key = f"{self.name}|{metric}" if self.glob else self.name
        state = st.conds.get(key)
        if state is None:
            if self.breaches(value):
                if self.for_s <= 0:
                    st.conds[key] = [ts, True]
                    sink.cond_up(st, self.rule, key, ts, at, {"metric": metric, "value": value})
                else:
                    st.conds[key] = [ts, False]
            return
        since, active = state
        if active:
            if self.clears(value):
                del st.conds[key]
                sink.cond_down(st, self.rule.fault, key, at)
        elif self.breaches(value):
            if ts - since >= self.for_s:
                state[1] = True
                sink.cond_up(st, self.rule, key, since, at, {"metric": metric, "value": value})
        else:
            del st.conds[key]


class RateEval:
    """A threshold on a counter's per-second increase; a counter that went down was reset."""

    __slots__ = ("breaches", "clears", "for_s", "name", "rule")

    def __init__(self, rule: Rule) -> None:
        cond = rule.condition
        assert isinstance(cond, Threshold)
        self.rule, self.name, self.for_s = rule, rule.name, cond.for_s
        self.breaches, self.clears = _predicates(cond)

    def sample(self, sink: Sink[C], st: C, metric: str, value: Any, ts: float, at: float) -> None:
        if not _is_number(value):
            return
        state = st.conds.get(self.name)
        if state is None:
            st.conds[self.name] = [value, ts, None, False]
            return
        prev, prev_ts, since, active = state
        state[0], state[1] = value, ts
        if ts <= prev_ts:
            return
        increase = value - prev if value >= prev else value  # reset: counted from zero
        rate = increase / (ts - prev_ts)
        detail = {"metric": metric, "rate": round(rate, 6)}
        if active:
            if self.clears(rate):
                state[2], state[3] = None, False
                sink.cond_down(st, self.rule.fault, self.name, at)
        elif self.breaches(rate):
            if since is None:
                state[2] = since = ts
            if ts - since >= self.for_s:
                state[3] = True
                sink.cond_up(st, self.rule, self.name, since, at, detail)
        else:
            state[2] = None


class ChangeEval:
    __slots__ = ("clear_after", "direction", "name", "rule")

    def __init__(self, rule: Rule) -> None:
        cond = rule.condition
        assert isinstance(cond, Change)
        self.rule, self.name = rule, rule.name
        self.direction, self.clear_after = cond.direction, cond.clear_after_s

    def sample(self, sink: Sink[C], st: C, metric: str, value: Any, ts: float, at: float) -> None:
        state = st.conds.get(self.name)
        if state is None:
            st.conds[self.name] = [value]
            return
        prev = state[0]
        state[0] = value
        if self.direction == "any":
            changed = value != prev
        elif not (_is_number(value) and _is_number(prev)):
            changed = False
        else:
            changed = value < prev if self.direction == "decrease" else value > prev
        if changed:
            sink.cond_up(
                st, self.rule, self.name, ts, at, {"metric": metric, "from": prev, "to": value}
            )
            sink.expire_after(st, self.name, at + self.clear_after)


class MatchEval:
    """Events or traps by name; ``signal`` is called with the event's data or the varbinds."""

    __slots__ = ("clear_after", "clear_on", "key", "name", "names", "rule")

    def __init__(self, rule: Rule) -> None:
        cond = rule.condition
        assert isinstance(cond, Match)
        self.rule, self.name = rule, rule.name
        self.names, self.clear_on, self.key = cond.names, cond.clear_on, cond.key
        self.clear_after = cond.clear_after_s

    def signal(self, sink: Sink[C], st: C, name: str, fields: Mapping[str, Any], at: float) -> None:
        instance = str(fields.get(self.key, "")) if self.key else ""
        key = f"{self.name}|{instance}" if self.key else self.name
        if name in self.clear_on:
            if st.expiry is not None:
                st.expiry.pop(key, None)
            sink.cond_down(st, self.rule.fault, key, at)
        elif name in self.names:
            detail = {self.key: instance} if self.key else {"signal": name}
            sink.cond_up(st, self.rule, key, at, at, detail)
            if self.clear_after is not None:
                sink.expire_after(st, key, at + self.clear_after)


SampleEval = ThresholdEval | RateEval | ChangeEval


def _predicates(cond: Threshold) -> tuple[Any, Any]:
    """Fast predicates for the hot path (plain closures, no attribute look-ups)."""
    limit = cond.value
    if cond.op in ("above", "below"):
        assert isinstance(limit, int | float)
        back = cond.clear if cond.clear is not None else limit
        if cond.op == "above":
            return (
                lambda v: _is_number(v) and v > limit,
                lambda v: _is_number(v) and v < back,
            )
        return (
            lambda v: _is_number(v) and v < limit,
            lambda v: _is_number(v) and v > back,
        )

    def same(v: object) -> bool:
        if _is_number(limit) and _is_number(v):
            return bool(v == limit)
        return type(v) is type(limit) and v == limit

    if cond.op == "equals":
        return same, lambda v: not same(v)
    return (lambda v: not same(v)), same


class Plan:
    """The compiled rules that apply to one kind of device (same class, model and labels)."""

    __slots__ = ("_globs", "events", "metrics", "traps")

    def __init__(self, rules: RuleSet, device: Device) -> None:
        self.metrics: dict[str, tuple[SampleEval, ...]] = {}
        self._globs: list[tuple[str, SampleEval]] = []
        self.events: dict[str, tuple[MatchEval, ...]] = {}
        self.traps: dict[str, tuple[MatchEval, ...]] = {}
        exact: dict[str, list[SampleEval]] = {}
        for rule in rules.rules:
            if not rule.selector.matches(device):
                continue
            cond = rule.condition
            if isinstance(cond, Threshold):
                ev: SampleEval = RateEval(rule) if cond.rate else ThresholdEval(rule)
                if cond.is_glob:
                    self._globs.append((cond.metric, ev))
                else:
                    exact.setdefault(cond.metric, []).append(ev)
            elif isinstance(cond, Change):
                exact.setdefault(cond.metric, []).append(ChangeEval(rule))
            elif isinstance(cond, Match):
                match = MatchEval(rule)
                table = self.events if cond.source == "event" else self.traps
                for name in cond.names | cond.clear_on:
                    table[name] = (*table.get(name, ()), match)
        self.metrics = {name: tuple(evs) for name, evs in exact.items()}

    def for_metric(self, name: str) -> tuple[SampleEval, ...]:
        """The evaluators reading ``name`` (glob rules resolved once per name, then cached)."""
        found = self.metrics.get(name)
        if found is None:
            found = tuple(ev for pattern, ev in self._globs if fnmatch.fnmatchcase(name, pattern))
            if len(self.metrics) < 4096:  # bounded: a device cannot grow it without limit
                self.metrics[name] = found
        return found


class Plans:
    """One plan per kind of device (class, model and labels), compiled on first use."""

    __slots__ = ("_plans", "_rules")

    def __init__(self, rules: RuleSet) -> None:
        self._rules = rules
        self._plans: dict[tuple[Any, ...], Plan] = {}

    def of(self, dev: Device) -> Plan:
        key = (dev.cls, dev.model, tuple(sorted(dev.labels.items())))
        plan = self._plans.get(key)
        if plan is None:
            plan = self._plans[key] = Plan(self._rules, dev)
        return plan
