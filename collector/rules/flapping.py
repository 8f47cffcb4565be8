"""Flap damping: the same fault opening ``opens`` times within ``within`` becomes one flapping
fault, and its further openings are held in it (``Hold.FLAPPING``) until it settles."""

from __future__ import annotations

from collector.rules.classify import FaultMaker
from collector.rules.faults import EPS, EventType, Hold, Outbox, Scope
from collector.rules.ruleset import Flapping, Rule
from collector.rules.state import DeviceState
from collector.rules.timers import TimerKind, TimerQueue


class FlapDamping:
    __slots__ = ("_maker", "_out", "_timers", "cond", "rule", "watched")

    def __init__(
        self,
        rule: Rule | None,
        kinds: frozenset[str],
        *,
        maker: FaultMaker,
        outbox: Outbox,
        timers: TimerQueue,
    ) -> None:
        self.rule = rule
        cond = rule.condition if rule is not None else None
        self.cond = cond if isinstance(cond, Flapping) else None
        # the kinds whose openings count: the rule's list, else every kind but its own
        self.watched: frozenset[str] = (
            (self.cond.of or (kinds - {rule.fault}))
            if self.cond is not None and rule is not None
            else frozenset()
        )
        self._maker, self._out, self._timers = maker, outbox, timers

    def holds(self, st: DeviceState, kind: str) -> Hold | None:
        """Is this fault kind part of an open flapping fault on the device?"""
        return Hold.FLAPPING if st.flapping and kind in st.flapping else None

    def attempt(self, st: DeviceState, kind: str, at: float) -> Hold | None:
        """Count an opening of ``kind`` that would be raised; the Nth within the window opens
        (or feeds) a flapping fault, which holds it."""
        assert self.rule is not None and self.cond is not None
        if st.flaps is None:
            st.flaps = {}
        recent = [t for t in st.flaps.get(kind, ()) if t > at - self.cond.within_s] + [at]
        st.flaps[kind] = recent
        end = at + self.cond.within_s
        if self.holds(st, kind):
            self._timers.push(end, TimerKind.FLAP_END, st.dev.device, kind)
            return Hold.FLAPPING
        if len(recent) < self.cond.opens:
            return None
        fault = self._maker.make(
            self.rule.fault,
            self.rule,
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
        self._out.emit(EventType.OPENED, at, fault)
        self._timers.push(end, TimerKind.FLAP_END, st.dev.device, kind)
        return Hold.FLAPPING

    def end(self, st: DeviceState, kind: str, due: float) -> bool:
        """The flapping fault of ``kind`` clears at ``due`` unless a later opening pushed its
        end further; True if it cleared (the kind, if still active, may then be raised)."""
        assert self.cond is not None
        if not st.flapping or kind not in st.flapping or st.flaps is None:
            return False
        last = st.flaps.get(kind, [float("-inf")])[-1]
        if last + self.cond.within_s > due + EPS:
            return False
        fault = st.flapping.pop(kind)
        st.flaps.pop(kind, None)
        self._out.emit(EventType.CLEARED, due, fault)
        return True
