"""The partition map and the rebalancing plan (pure, property-tested)."""

from __future__ import annotations

import json
import os

from hypothesis import given, settings
from hypothesis import strategies as st

from collector.rules.inventory import Device, Inventory
from collector.scale.partitions import Partitioning, fair_share, partition_of, plan, units


def inventory_of(sites: list[int], parents: list[int | None]) -> Inventory:
    devices = {}
    for i, (site, parent) in enumerate(zip(sites, parents, strict=True)):
        name = f"d{i:03d}"
        devices[name] = Device(
            name,
            tenant=f"t{i % 3}",
            site=f"s{site}" if site >= 0 else None,
            parent=f"d{parent:03d}" if parent is not None and parent < i else None,
        )
    return Inventory(devices)


fleets = st.integers(1, 60).flatmap(
    lambda n: st.tuples(
        st.lists(st.integers(-1, 8), min_size=n, max_size=n),
        st.lists(st.one_of(st.none(), st.integers(0, n)), min_size=n, max_size=n),
    )
)


@settings(max_examples=200, deadline=None)
@given(fleets, st.integers(1, 16))
def test_a_site_and_a_parent_chain_stay_in_one_partition(fleet: tuple, count: int) -> None:
    sites, parents = fleet
    inventory = inventory_of(sites, parents)
    parts = Partitioning(inventory, count)
    for dev in inventory:
        p = parts.of_device(dev.device)
        assert p is not None and 0 <= p < count
        if dev.parent is not None:
            assert parts.of_device(dev.parent) == p
        if dev.site is not None:
            assert parts.of_subject(dev.site) == p
            assert {parts.of_device(d) for d in inventory.sites[dev.site]} == {p}
    # every device in exactly one partition, the restricted inventories partition the fleet
    split = [set(parts.restrict([p]).devices) for p in range(count)]
    assert sum(len(s) for s in split) == len(inventory)
    assert set().union(*split) == set(inventory.devices)
    assert sum(parts.sizes()) == len(inventory)


def test_the_map_is_the_same_in_every_process() -> None:
    """Not Python's salted hash(): processes with other hash seeds compute the same map."""
    import subprocess
    import sys

    code = (
        "from collector.scale.partitions import partition_of;"
        "print([partition_of(f'gw-{i}', 12) for i in range(200)])"
    )
    maps = {
        subprocess.run(
            [sys.executable, "-c", code],
            env={**os.environ, "PYTHONHASHSEED": seed},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for seed in ("1", "2", "3")
    }
    assert maps == {str([partition_of(f"gw-{i}", 12) for i in range(200)]) + "\n"}
    assert len(set(json.loads(maps.pop()))) == 12  # every partition used


def test_a_unit_is_named_by_its_smallest_device() -> None:
    inventory = inventory_of([0, 0, -1, -1], [None, None, None, 2])
    assert units(inventory) == {"d000": "d000", "d001": "d000", "d002": "d002", "d003": "d002"}


def test_a_partition_subscribes_to_each_of_its_devices_topics() -> None:
    inventory = Inventory({"gw-1": Device("gw-1", tenant="acme"), "gw-2": Device("gw-2")})
    parts = Partitioning(inventory, 1)
    assert parts.topics(0) == ["fleet/v1/acme/gw-1/#", "fleet/v1/+/gw-2/#"]
    assert parts.of_device("unknown") is None and parts.of_subject("unknown") is None


def test_fair_share_and_plan() -> None:
    assert [fair_share(12, m) for m in (0, 1, 2, 3, 5, 12, 13)] == [12, 12, 6, 4, 3, 1, 1]
    assert plan([], list(range(12)), 12, 3) == ([0, 1, 2, 3], [])
    assert plan(list(range(12)), [], 12, 3) == ([], [4, 5, 6, 7, 8, 9, 10, 11])
    assert plan([0, 1, 2, 3], [8, 9], 12, 2) == ([8, 9], [])  # a survivor takes the dead's
    assert plan([0, 1, 2, 3], [], 12, 3) == ([], [])


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 40), st.integers(1, 8), st.randoms(use_true_random=False))
def test_rebalancing_converges_to_every_partition_owned_once(
    count: int, members: int, rng: object
) -> None:
    """Collectors each running plan() once a round (as each checks its leases every
    lease_check_s), in any order within a round, against what the others hold: within a few
    rounds every partition is owned by exactly one of them and nobody is above the fair share."""
    import random

    assert isinstance(rng, random.Random)
    owned: list[set[int]] = [set() for _ in range(members)]
    owned[0] = set(range(count))  # the first to start took everything
    for _ in range(3):
        order = list(range(members))
        rng.shuffle(order)
        for n in order:
            held = set().union(*owned)
            take, give = plan(sorted(owned[n]), sorted(set(range(count)) - held), count, members)
            owned[n] -= set(give)
            owned[n] |= set(take)
    held_lists = [p for o in owned for p in o]
    assert sorted(held_lists) == list(range(count))  # no partition twice, none unowned
    assert all(len(o) <= fair_share(count, members) for o in owned)
