"""The demo's fleet: customers on the five presets, sites, devices and their topology.

Deterministic for a given size (a seeded generator), so a fault script can name its victims
by role. Every device is in the inventory written for the collector (YAML, with the
maintenance window of the script); SNMP-only devices have no agent.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import yaml


@dataclass(frozen=True, slots=True)
class Customer:
    name: str
    tenant: str
    policy: str  # a preset of rules/policies/
    site_prefix: str
    child_class: str  # what sits behind each site's router
    child_model: str


CUSTOMERS = (
    Customer("acme-water", "acme", "xian-integrator", "pump", "dtu", "WD150"),
    Customer("east-grid", "grid", "shanghai-energy", "sub", "dtu", "WD150"),
    Customer("survey-nj", "survey", "nanjing-instruments", "mon", "instrument", "GNSS-R2"),
    Customer("mt-cloud", "mtc", "mtbox", "plant", "cloudbox", "MT-BOX"),
    Customer("wthink-retail", "retail", "wthink", "shop", "dtu", "WD150"),
)


@dataclass(slots=True)
class Device:
    id: str
    customer: Customer
    site: str
    cls: str  # router, dtu, cloudbox, instrument
    model: str
    parent: str | None
    warranty_start: date
    warranty_months: int
    criticality: str = "common"
    snmp: bool = False  # polled over SNMP, no agent
    cellular: bool = False
    tech: str = "lte"

    @property
    def tenant(self) -> str:
        return self.customer.tenant


@dataclass
class Fleet:
    devices: list[Device]
    sites: dict[str, list[Device]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for dev in self.devices:
            self.sites.setdefault(dev.site, []).append(dev)

    @property
    def agents(self) -> list[Device]:
        return [d for d in self.devices if not d.snmp]

    def of(self, customer: str, cls: str | None = None) -> list[Device]:
        return [
            d for d in self.agents if d.customer.name == customer and (cls is None or d.cls == cls)
        ]

    def by_id(self, device: str) -> Device:
        return next(d for d in self.devices if d.id == device)


def build_fleet(count: int, today: date, *, snmp_devices: int = 0, seed: int = 15) -> Fleet:
    """``count`` devices in all (SNMP ones included), spread over the five customers.

    Sites are a router and two to four devices behind it; warranties started between four
    years ago and last month, so some have run out and some are new.
    """
    rng = random.Random(seed)
    devices: list[Device] = []
    site_no = [0] * len(CUSTOMERS)
    agents = max(count - snmp_devices, len(CUSTOMERS) * 2)
    turn = 0
    while len(devices) < agents:
        index = turn % len(CUSTOMERS)
        customer = CUSTOMERS[index]
        turn += 1
        site_no[index] += 1
        site = f"{customer.site_prefix}-{site_no[index]}"
        size = min(rng.randint(3, 5), agents - len(devices))
        if size < 2:
            size = 2 if agents - len(devices) >= 2 else 1
        fiveg = rng.random() < 0.4
        started = today - timedelta(days=rng.randint(30, 4 * 365))
        months = rng.choice((12, 24, 36))
        gw = f"{site}-gw"
        devices.append(
            Device(
                gw, customer, site, "router", "WR5120" if fiveg else "WR920", None,
                started, months, cellular=True, tech="nr5g-nsa" if fiveg else "lte",
            )
        )  # fmt: skip
        for child in range(1, size):
            devices.append(
                Device(
                    f"{site}-{customer.child_class[:3]}{child}",
                    customer,
                    site,
                    customer.child_class,
                    customer.child_model,
                    gw,
                    started + timedelta(days=rng.randint(0, 20)),
                    months,
                    criticality="uncommon" if child == size - 1 and size > 3 else "common",
                )
            )
    hq = CUSTOMERS[0]
    for n in range(1, snmp_devices + 1):
        devices.append(
            Device(
                f"core-sw-{n}", hq, "acme-hq", "router", "S5735", None,
                today - timedelta(days=200), 36, snmp=True,
            )
        )  # fmt: skip
    return Fleet(devices)


def inventory(fleet: Fleet, intervals: dict[str, float], maintenance: list[dict[str, str]]) -> str:
    """The collector's inventory (docs/inventory.md, YAML form) with maintenance windows."""
    rows: list[dict[str, Any]] = [
        {
            "device": d.id,
            "tenant": d.tenant,
            "model": d.model,
            "class": d.cls,
            "site": d.site,
            "parent": d.parent,
            "criticality": d.criticality,
            "customer": d.customer.name,
            "policy": d.customer.policy,
            "warranty_start": d.warranty_start.isoformat(),
            "warranty_months": d.warranty_months,
            "interval_s": max(1, round(intervals[d.id])),
        }
        for d in fleet.devices
    ]
    return yaml.safe_dump({"devices": rows, "maintenance": maintenance}, sort_keys=False)


def write_inventory(
    path: Path, fleet: Fleet, intervals: dict[str, float], maint: list[dict[str, str]]
) -> None:
    path.write_text(inventory(fleet, intervals, maint), encoding="utf-8")
