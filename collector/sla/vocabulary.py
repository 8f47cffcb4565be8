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
# Why no SLA is owed, as the seeds name them; a policy lists the ones its contract names.
EXEMPTIONS: frozenset[str] = frozenset(
    {
        "power_outage",  # 000 (force majeure list); detected by the rules engine
        "maintenance",  # announced in advance and confirmed by the customer (000, 002)
        "force_majeure",  # natural disasters, fire, flood, lightning, earthquake (000, 002)
        "customer_accepted_risk",  # a risk notification the customer signed (000)
        "third_party_network",  # network, equipment, configuration not the vendor's (000, 002)
        "hacker_attack",  # hackers, viruses (000, 002)
        "customer_data_leak",  # passwords or data leaked through the user's own fault (000)
        "customer_operated_platform",  # users operating the platform servers themselves (000)
        "over_capacity",  # resource use beyond the contracted capacity (000)
        "customer_misoperation",  # negligence, warned high-risk operations, O&M misoperation (000)
        "misuse",  # installation or use not per the instructions, accident, damage (002, 004)
        "unauthorised_disassembly",  # disassembly, altered barcode or settings (002, 004)
        "transport_damage",  # damage on the customer's return shipment (002)
        "customer_equipment",  # the customer's own software or configuration (002)
    }
)
