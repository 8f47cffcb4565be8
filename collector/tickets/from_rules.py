"""The rules engine's fault events and inventory, as the ticket book's inputs."""

from __future__ import annotations

from collections.abc import Callable

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
        rule=fault.rule,
        metric=str(fault.detail.get("metric", "")),
        value=_value(fault.detail.get("value")),
        devices=fault.devices,
    )


def _value(value: object) -> float | str | None:
    if value is None or isinstance(value, bool):
        return None
    return value if isinstance(value, int | float | str) else str(value)


class InventoryWarranty:
    """DeviceSource over the rules engine's inventory (warranty, customer, tenant, model);
    ``serials`` answers a device's serial number where the registry knows it."""

    def __init__(self, inventory: Inventory, serials: Callable[[str], str] | None = None) -> None:
        self._inventory = inventory
        self._serials = serials

    def warranty(self, device: str) -> DeviceWarranty:
        serial = self._serials(device) if self._serials is not None else ""
        found = self._inventory.get(device)
        if found is None:
            return DeviceWarranty(start=None, serial=serial)
        return DeviceWarranty(
            start=found.warranty_start,
            months=found.warranty_months,
            customer=found.customer,
            tenant=found.tenant,
            model=found.model,
            serial=serial,
            site=found.site,
        )

    def site_devices(self, site: str) -> tuple[str, ...]:
        return tuple(sorted(d.device for d in self._inventory if d.site == site))
