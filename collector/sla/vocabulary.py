"""The words a policy's classification table may use, shared with the rules engine."""

from __future__ import annotations

FAULT_KINDS: frozenset[str] = frozenset(
    {
        "device_offline",
        "site_outage",
        "serial_link_down",
        "interface_down",
        "temperature_high",
        "cpu_high",
        "memory_high",
        "disk_full",
        "cellular_signal_weak",
        "wan_loss",
        "reboot",
        "flapping",
    }
)
# How badly the customer's service is hit, worst first.
IMPACTS: tuple[str, ...] = ("outage", "at_risk", "degraded", "intermittent", "info")
# A fault on one device, or on a whole site (all of a site's devices unreachable).
SCOPES: tuple[str, ...] = ("device", "site")
# From the inventory: is the device one the customer uses every day?
CRITICALITIES: tuple[str, ...] = ("common", "uncommon")
