"""Topology and site correlation: one root-cause fault for what went offline together.

A parent's offline fault absorbs its children's (``Hold.PARENT_OFFLINE``); enough devices of a
site offline within a while form one site outage fault that absorbs theirs
(``Hold.SITE_OUTAGE``). When the root cause clears, the devices it explained are handed back
to the engine (``release``) to get a fresh chance to report.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from collector.rules.classify import FaultMaker
from collector.rules.faults import (
    EPS,
    Criticality,
    EventType,
    Exemption,
    Fault,
    Hold,
    Outbox,
    Scope,
)
from collector.rules.holds import PowerLossExemption
from collector.rules.inventory import Inventory
from collector.rules.ruleset import Rule, SiteOutage
from collector.rules.state import DeviceState, EngineState, KindState

Release = Callable[[DeviceState, KindState, float], None]


class Correlation:
    __slots__ = (
        "_descendants",
        "_inventory",
        "_kind",
        "_maker",
        "_out",
        "_power",
        "_release",
        "_site",
        "_state",
    )

    def __init__(
        self,
        inventory: Inventory,
        state: EngineState,
        *,
        offline_kind: str | None,
        site_rule: Rule | None,
        maker: FaultMaker,
        outbox: Outbox,
        power: PowerLossExemption,
        release: Release,
    ) -> None:
        self._inventory, self._state = inventory, state
        self._kind, self._site = offline_kind, site_rule
        self._maker, self._out, self._power = maker, outbox, power
        self._release = release  # the engine's "root cause gone" for one device
        self._descendants: dict[str, tuple[str, ...]] = {}

    def children_of(self, device: str) -> tuple[str, ...]:
        """Every device behind ``device``, nearest first."""
        found = self._descendants.get(device)
        if found is None:
            children = self._inventory.children
            out: list[str] = []
            stack = list(children.get(device, ()))
            while stack:
                child = stack.pop(0)
                out.append(child)
                stack.extend(children.get(child, ()))
            found = self._descendants[device] = tuple(out)
        return found

    def offline_changed(self, st: DeviceState, at: float, *, up: bool) -> None:
        """A device's offline fault kind became active (``up``) or ended: its site is looked at
        again, and the devices behind it are absorbed or released."""
        if st.dev.site is not None:
            self.site_update(st.dev.site, at)
        kind = self._kind
        assert kind is not None
        ks = st.kinds.get(kind)
        devices = self._state.devices
        for child in self.children_of(st.dev.device):
            cst = devices[child]
            cks = cst.kinds.get(kind)
            if cks is None:
                continue
            if up and cks.fault is not None and cks.onset >= st.last_seen - EPS:
                into = ks.fault.id if ks is not None and ks.fault is not None else None
                self._out.emit(EventType.ABSORBED, at, cks.fault, into=into)
                cks.fault, cks.held = None, Hold.PARENT_OFFLINE
            elif not up and cks.held is Hold.PARENT_OFFLINE:
                self._release(cst, cks, at)

    def site_update(self, site: str, at: float) -> None:
        """Open, grow or clear the site's outage fault from its members' offline faults."""
        if self._site is None or self._kind is None:
            return
        cond = self._site.condition
        assert isinstance(cond, SiteOutage)
        state = self._state
        members = self._inventory.sites.get(site, ())
        offline: dict[str, float] = {}
        for name in members:  # devices in maintenance do not count
            st = state.devices[name]
            ks = st.kinds.get(self._kind)
            if ks is not None and ks.active and not state.maintenance.holds(name, site, at):
                offline[name] = state.maintenance.after_windows(name, site, ks.onset, at)
        needed = cond.needed(len(members))
        current = state.site_faults.get(site)
        if current is not None:
            if len(offline) < needed:
                del state.site_faults[site]
                state.site_cleared[site] = at
                self._out.emit(EventType.CLEARED, at, current)
                for name in members:
                    st = state.devices[name]
                    ks = st.kinds.get(self._kind)
                    if ks is not None and ks.held is Hold.SITE_OUTAGE:
                        self._release(st, ks, at)
                return
            new = tuple(n for n in offline if n not in current.devices)
            if new:
                current = replace(current, devices=tuple(sorted((*current.devices, *new))))
                state.site_faults[site] = current
                for name in new:
                    self._absorb(name, current, at)
            return
        if len(offline) < needed:
            return
        onset = cluster_start(sorted(offline.values()), needed, cond.within_s)
        if onset is None:
            return
        onset = max(onset, state.site_cleared.get(site, onset))  # a new outage, a new clock
        self._open(site, members, offline, onset, at)

    def _open(
        self,
        site: str,
        members: tuple[str, ...],
        offline: dict[str, float],
        onset: float,
        at: float,
    ) -> None:
        assert self._site is not None
        devices_state = self._state.devices
        devices = tuple(sorted(offline))
        first = devices_state[members[0]].dev
        crit = (
            Criticality.COMMON
            if any(devices_state[n].dev.criticality is Criticality.COMMON for n in devices)
            else Criticality.UNCOMMON
        )
        # (device onsets were moved past ended maintenance windows already)
        power = all(self._power.lost(devices_state[n], offline[n]) for n in devices)
        fault = self._maker.make(
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
        self._state.site_faults[site] = fault
        self._out.emit(EventType.OPENED, at, fault)
        for name in devices:
            self._absorb(name, fault, at)

    def _absorb(self, name: str, into: Fault, at: float) -> None:
        assert self._kind is not None
        ks = self._state.devices[name].kinds.get(self._kind)
        if ks is None:
            return
        if ks.fault is not None:
            self._out.emit(EventType.ABSORBED, at, ks.fault, into=into.id)
            ks.fault = None
        ks.held = Hold.SITE_OUTAGE


def cluster_start(onsets: list[float], needed: int, within: float) -> float | None:
    """The first onset of the earliest ``needed`` onsets lying within ``within`` seconds."""
    for i in range(len(onsets) - needed + 1):
        if onsets[i + needed - 1] - onsets[i] <= within + EPS:
            return onsets[i]
    return None
