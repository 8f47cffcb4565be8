"""What one collector serves: all devices (one collector), or the partitions it owns.

The service is built for a scope: its rules engine judges only the scope's devices (so it arms
absence timers only for them), its MQTT sessions are the scope's partitions, its open-fault set
and rules state are saved per partition, and the ticket book, ticket clock and delivery run in
the one collector that holds the tickets lease (``tickets``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from collector.rules.inventory import Inventory
from collector.rules.snapshot import export_state
from collector.rules.state import EngineState
from collector.scale import engine_state
from collector.scale.partitions import Partitioning
from collector.store.store import DeviceRow, FaultScope


@dataclass(frozen=True)
class Scope:
    partitioning: Partitioning
    parts: frozenset[int]
    tickets: bool  # holds the tickets lease: the book, its clock and delivery run here

    def inventory(self) -> Inventory:
        return self.partitioning.restrict(self.parts)

    def fault_scope(self) -> FaultScope:
        return FaultScope(self.parts, self.partitioning.of_subject)

    def state_names(self) -> list[str]:
        return [engine_state.state_name(p) for p in sorted(self.parts)]

    def split(self, state: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
        return engine_state.split(state, self.partitioning, self.parts)

    def states_for(self, state: EngineState, subjects: Iterable[str]) -> dict[str, dict[str, Any]]:
        """The blobs of the partitions these fault subjects are in, exported from a view of
        only their devices and sites (a fault pass costs its partitions, not the collector's
        whole fleet)."""
        parts = {p for s in subjects if (p := self.partitioning.of_subject(s)) is not None}
        parts &= self.parts
        if not parts:
            return {}
        of = self.partitioning.of_subject
        view = EngineState()
        view.devices = {d: st for d, st in state.devices.items() if of(d) in parts}
        view.site_faults = {s: f for s, f in state.site_faults.items() if of(s) in parts}
        view.site_cleared = {s: t for s, t in state.site_cleared.items() if of(s) in parts}
        view.maintenance = state.maintenance
        view.now = state.now
        return engine_state.split(export_state(view), self.partitioning, parts)

    def restored(
        self, blobs: Iterable[Mapping[str, Any] | None], rows: Iterable[DeviceRow]
    ) -> dict[str, Any] | None:
        """The engine state to start from: the partitions' blobs, each device's last sign of
        life moved up to what the registry committed (messages acknowledged after the blob
        was saved are not sent again, but they were seen)."""
        merged = engine_state.merge(blobs)
        if merged is None:
            return None
        latest = max((merged["now"] or 0.0), 0.0)
        for row in rows:
            entry = merged["devices"].get(row.id)
            if entry is not None and row.last_seen is not None:
                if entry["last_seen"] is None or row.last_seen > entry["last_seen"]:
                    entry["last_seen"] = row.last_seen
                latest = max(latest, row.last_seen)
        if merged["now"] is not None:
            merged["now"] = latest
        return merged


def tenant_inventory(inventory: Inventory, tenants: tuple[str, ...]) -> Inventory:
    """The devices of these tenants (a collector subscribed to some tenants judges only them);
    ``+`` among them: all."""
    if "+" in tenants:
        return inventory
    keep = set(tenants)
    devices = {d: dev for d, dev in inventory.devices.items() if dev.tenant in keep}
    windows = tuple(
        w
        for w in inventory.maintenance
        if (w.device in devices) or any(d in devices for d in inventory.sites.get(w.site or "", ()))
    )
    return replace(inventory, devices=devices, maintenance=windows)
