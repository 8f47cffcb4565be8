"""Which partition each device belongs to (pure: no I/O, no clock).

A partition is a set of *units*; a unit is what the rules engine must see in one process: the
devices of one site (a site outage counts them together) and every parent/child chain (a child
behind an offline parent is not a fault of its own). Units are the connected components of the
inventory's ``site`` and ``parent`` links, each named by its smallest device id; a unit's
partition is a stable hash of that name (CRC-32, the same in every process and release), so
every collector computes the same map from the same inventory without talking to the others.

Each partition's devices are reached over MQTT through the partition's own persistent session
(``topics``): whoever owns the partition connects with its client id and receives what the
broker queued for it while nobody did.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from agent import wire
from collector.rules.inputs import Maintenance
from collector.rules.inventory import Inventory


def partition_of(unit: str, partitions: int) -> int:
    return zlib.crc32(unit.encode()) % partitions


def units(inventory: Inventory) -> dict[str, str]:
    """device -> its unit's name (union-find over sites and parents)."""
    parent: dict[str, str] = {d.device: d.device for d in inventory}

    def root(x: str) -> str:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    def union(a: str, b: str) -> None:
        ra, rb = root(a), root(b)
        if ra != rb:  # the smaller name is the root: the unit's name is its smallest device
            parent[max(ra, rb)] = min(ra, rb)

    for dev in inventory:
        if dev.parent is not None and dev.parent in parent:
            union(dev.device, dev.parent)
    for members in inventory.sites.values():
        for other in members[1:]:
            union(members[0], other)
    return {device: root(device) for device in parent}


@dataclass(frozen=True)
class Partitioning:
    """The fleet in ``count`` partitions, from the inventory."""

    inventory: Inventory
    count: int
    _device: Mapping[str, int] = field(init=False, repr=False)
    _site: Mapping[str, int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if self.count < 1:
            raise ValueError("at least one partition")
        device = {d: partition_of(u, self.count) for d, u in units(self.inventory).items()}
        site = {s: device[members[0]] for s, members in self.inventory.sites.items()}
        object.__setattr__(self, "_device", device)
        object.__setattr__(self, "_site", site)

    def of_device(self, device: str) -> int | None:
        """The device's partition; None for a device not in the inventory."""
        return self._device.get(device)

    def of_subject(self, subject: str) -> int | None:
        """The partition of a fault's subject: a device, or a site (site outages)."""
        found = self._device.get(subject)
        return found if found is not None else self._site.get(subject)

    def devices(self, parts: Iterable[int]) -> list[str]:
        wanted = set(parts)
        return sorted(d for d, p in self._device.items() if p in wanted)

    def restrict(self, parts: Iterable[int]) -> Inventory:
        """The inventory of these partitions only (what one collector's engine judges)."""
        keep = set(self.devices(parts))
        windows = tuple(
            w for w in self.inventory.maintenance if _window_kept(w, keep, self.inventory)
        )
        return Inventory(
            {d: dev for d, dev in self.inventory.devices.items() if d in keep},
            source=self.inventory.source,
            maintenance=windows,
        )

    def topics(self, part: int) -> list[str]:
        """The MQTT subscriptions of one partition's session: each of its devices' topics."""
        out = []
        for device in self.devices([part]):
            tenant = self.inventory.devices[device].tenant or "+"
            out.append(f"{wire.TOPIC_PREFIX}/{tenant}/{device}/#")
        return out

    def sizes(self) -> list[int]:
        counts = [0] * self.count
        for p in self._device.values():
            counts[p] += 1
        return counts


def _window_kept(window: Maintenance, keep: set[str], inventory: Inventory) -> bool:
    if window.device is not None:
        return window.device in keep
    return any(d in keep for d in inventory.sites.get(window.site or "", ()))


def fair_share(partitions: int, members: int) -> int:
    """How many partitions one of ``members`` collectors should own at most."""
    return math.ceil(partitions / max(1, members))


def plan(
    owned: Sequence[int], free: Sequence[int], partitions: int, members: int
) -> tuple[list[int], list[int]]:
    """(partitions to take, partitions to give back) so this collector moves toward its fair
    share: take free ones up to the share, give back what is above it (the highest first, so
    every collector agrees which go). ``free``: partitions nobody holds now."""
    share = fair_share(partitions, members)
    have = sorted(owned)
    if len(have) > share:
        return [], have[share:]
    room = share - len(have)
    return sorted(free)[:room], []
