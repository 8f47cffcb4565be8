"""Why a fault is not raised now, or owes no SLA: each question answered by one small object,
with a named reason (``Hold``, ``Exemption``) the board can show.

A *hold* keeps a fault from being raised while it lasts; a fault still active when its hold
ends is raised then, its clock starting at that instant. An *exemption* raises and records the
fault with no SLA clock. Maintenance windows live in ``maintenance``, flap damping in
``flapping``; ``Holds`` asks every hold in the engine's order.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

from collector.rules.faults import EPS, Exemption, Fault, Hold
from collector.rules.flapping import FlapDamping
from collector.rules.inventory import Inventory
from collector.rules.maintenance import Window
from collector.rules.ruleset import PowerLoss
from collector.rules.state import DeviceState, EngineState, KindState

__all__ = [
    "EPS",
    "FlapDamping",
    "Hold",
    "Holds",
    "MaintenanceHold",
    "ParentOffline",
    "PowerLossExemption",
    "SiteOutageHold",
]


class SiteOutageHold:
    """Is this device's offline fault part of its site's open outage? (root cause only)"""

    __slots__ = ("_kind", "_state")

    def __init__(self, state: EngineState, offline_kind: str | None) -> None:
        self._state, self._kind = state, offline_kind

    def holds(self, st: DeviceState, kind: str) -> Hold | None:
        site = st.dev.site
        if kind != self._kind or site is None or site not in self._state.site_faults:
            return None
        return Hold.SITE_OUTAGE


class ParentOffline:
    """Is a device this one sits behind (its parent, or any ancestor) offline? (root cause)"""

    __slots__ = ("_kind", "_state")

    def __init__(self, state: EngineState, offline_kind: str | None) -> None:
        self._state, self._kind = state, offline_kind

    def holds(self, st: DeviceState, kind: str) -> Hold | None:
        if kind != self._kind:
            return None
        devices = self._state.devices
        parent = st.dev.parent
        while parent is not None:
            pst = devices.get(parent)
            if pst is None:
                break
            if kind in pst.kinds:
                return Hold.PARENT_OFFLINE
            parent = pst.dev.parent
        return None


class PowerLossExemption:
    """Did the device announce a power loss shortly before it went offline? Its offline fault
    (or a site outage all of whose devices lost power) then owes no SLA."""

    __slots__ = ("_within",)

    def __init__(self, power: PowerLoss) -> None:
        self._within = power.within_s

    def lost(self, st: DeviceState, onset: float) -> bool:
        gasp = st.gasp_at
        return gasp is not None and gasp <= onset + EPS and onset - gasp <= self._within

    def exempts(self, st: DeviceState, onset: float) -> Exemption | None:
        return Exemption.POWER_OUTAGE if self.lost(st, onset) else None


class MaintenanceHold:
    """Is the device inside an announced maintenance window? And, for one window, which held
    faults its end releases and which open faults it exempts when announced late."""

    __slots__ = ("_sites", "_state")

    def __init__(self, state: EngineState, inventory: Inventory) -> None:
        self._state, self._sites = state, inventory.sites

    def holds(self, st: DeviceState, at: float) -> Hold | None:
        return self._state.maintenance.holds(st.dev.device, st.dev.site, at)

    def devices(self, window: Window) -> Iterable[str]:
        if window.device is not None:
            return (window.device,)
        return self._sites.get(window.site or "", ())

    def released(self, window: Window, due: float) -> list[tuple[DeviceState, KindState, str]]:
        """The faults this window held that no window holds any more at ``due`` (now unheld)."""
        book, devices = self._state.maintenance, self._state.devices
        out = []
        for name in self.devices(window):
            st = devices.get(name)
            if st is None:
                continue
            for kind, ks in st.kinds.items():
                if ks.held is Hold.MAINTENANCE and not book.holds(name, st.dev.site, due):
                    ks.held = None
                    out.append((st, ks, kind))
        return out

    def exempt_late(self, window: Window) -> list[Fault]:
        """A window announced after it began exempts the open faults whose onset lies inside
        it: they are replaced in the state and returned (for ``exempted`` events), in order."""
        state = self._state
        out: list[Fault] = []
        for name in self.devices(window):
            st = state.devices.get(name)
            if st is None:
                continue
            for ks in st.kinds.values():
                if ks.fault is None:
                    continue
                reason = window.exempts(ks.fault, st.dev.site)
                if reason is not None:
                    ks.fault = replace(ks.fault, exempt=reason, deadlines={})
                    out.append(ks.fault)
        site = window.site
        fault = state.site_faults.get(site) if site is not None else None
        if site is not None and fault is not None and (reason := window.exempts(fault)):
            state.site_faults[site] = fault = replace(fault, exempt=reason, deadlines={})
            out.append(fault)
        return out


class Holds:
    """Every hold, asked in the engine's order: maintenance, flapping, then root cause (site
    outage, parent offline)."""

    __slots__ = ("flap", "maintenance", "parent", "site")

    def __init__(
        self,
        state: EngineState,
        inventory: Inventory,
        offline_kind: str | None,
        flap: FlapDamping,
    ) -> None:
        self.maintenance = MaintenanceHold(state, inventory)
        self.site = SiteOutageHold(state, offline_kind)
        self.parent = ParentOffline(state, offline_kind)
        self.flap = flap

    def root_cause(self, st: DeviceState, kind: str) -> Hold | None:
        return self.site.holds(st, kind) or self.parent.holds(st, kind)

    def holds(self, st: DeviceState, kind: str, at: float) -> Hold | None:
        """Whether a fault of ``kind`` on this device must wait at ``at``, and why."""
        return (
            self.maintenance.holds(st, at) or self.flap.holds(st, kind) or self.root_cause(st, kind)
        )
