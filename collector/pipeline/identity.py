"""Who a report is from: each device is bound to one tenant, and only devices we expect are judged.

The tenant of an MQTT report comes from its topic (``fleet/v1/<tenant>/<device>/...``), which
anyone allowed to publish can choose. A device is bound to the tenant of its inventory entry
or, when the entry names none (or the device is not in the inventory), to the tenant it was first
registered under; a report whose topic tenant differs is refused as ``tenant_mismatch`` (a dead
letter, counted) before it reaches the registry or the rules, so it can neither open a fault
under another customer's contract nor rewrite the device's tenant.

Devices not in the inventory (nor polled over SNMP by the config) are *unassigned*: the registry
lists them (state ``unassigned``: unknown, reporting) for an operator to adopt, and the rules do
not judge them, so they get no fault and no ticket, unless their tenant is in
``rules.adopt_tenants`` (``*``: every tenant), whose unknown devices are monitored with
``rules.default_policy``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Final

from collector.intake.deadletter import Rejects
from collector.intake.envelope import Envelope
from collector.rules.inventory import Inventory

TENANT_MISMATCH: Final = "tenant_mismatch"
UNASSIGNED_STATE: Final = "unassigned"  # the registry state of a device nobody adopted yet
EVERY_TENANT: Final = "*"


class Identity:
    """The inventory's view of a device id (pure: lookups only)."""

    def __init__(
        self,
        lookup: Callable[[str], str | None] | None = None,
        *,
        configured: Iterable[str] = (),
        adopt: Iterable[str] = (),
    ) -> None:
        """``lookup(device)``: the inventory tenant ("" when the entry names none), None when the
        device is not in the inventory; ``configured``: devices the config polls (known too)."""
        self.lookup = lookup
        self.configured = frozenset(configured)
        self.adopt = frozenset(adopt)

    def known(self, device: str) -> bool:
        if self.lookup is None:  # no inventory: nothing is unassigned
            return True
        return self.lookup(device) is not None or device in self.configured

    def tenant(self, device: str) -> str | None:
        """The inventory's tenant of the device, None when it names none."""
        return (self.lookup(device) or None) if self.lookup is not None else None

    def judged(self, device: str, tenant: str) -> bool:
        """Whether the rules judge the device: known, or its tenant adopts unknown devices."""
        return self.known(device) or EVERY_TENANT in self.adopt or tenant in self.adopt


def from_inventory(
    inventory: Inventory, *, configured: Iterable[str] = (), adopt: Iterable[str] = ()
) -> Identity:
    """Tenants from the inventory (the live service and replay alike)."""

    def lookup(device: str) -> str | None:
        dev = inventory.get(device)
        return dev.tenant if dev is not None else None

    return Identity(lookup, configured=configured, adopt=adopt)


class IdentityStage:
    """Refuses MQTT reports whose topic tenant is not the device's (``tenant_mismatch``)."""

    def __init__(
        self, identity: Identity, bound: Callable[[str], str | None], rejects: Rejects
    ) -> None:
        """``bound(device)``: the tenant the registry holds for it (None: not registered)."""
        self.identity = identity
        self.bound = bound
        self.rejects = rejects

    def __call__(self, batch: list[Envelope]) -> list[Envelope]:
        out: list[Envelope] = []
        tenant_of, bound = self.identity.tenant, self.bound
        for env in batch:
            device = getattr(env.msg, "device", None)  # every decoded wire message has one
            if env.source != "mqtt" or device is None:
                out.append(env)
                continue
            expected = tenant_of(device) or bound(device)
            if expected is not None and expected != env.tenant:
                self.rejects.reject(
                    env.topic,
                    env.payload,
                    env.at,
                    TENANT_MISMATCH,
                    f"device {device} is not registered under tenant {env.tenant[:64]!r}",
                )
                continue
            out.append(env)
        self.rejects.count()
        return out
