"""The rules engine's fault events and inventory, as the ticket book's inputs."""

from __future__ import annotations

from collector.rules.faults import FaultEvent
from collector.rules.inventory import Inventory
from collector.tickets.inputs import FaultSignal
from collector.tickets.terms import DeviceWarranty


def signal_of(event: FaultEvent) -> FaultSignal:
    fault = event.fault
    return FaultSignal(
        event=event.event.value,
        at=event.at,
        fault_id=fault.id,
        kind=fault.kind,
        impact=fault.impact.value,
        device=fault.device,
        site=fault.site,
        onset=fault.onset,
        policy=fault.policy,
        level=fault.level,
        exempt=fault.exempt.value if fault.exempt is not None else None,
    )


class InventoryWarranty:
    """DeviceSource over the rules engine's inventory (warranty_start, warranty_months)."""

    def __init__(self, inventory: Inventory) -> None:
        self._inventory = inventory

    def warranty(self, device: str) -> DeviceWarranty:
        found = self._inventory.get(device)
        if found is None:
            return DeviceWarranty(start=None)
        return DeviceWarranty(start=found.warranty_start, months=found.warranty_months)
