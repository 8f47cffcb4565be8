"""A collector in a group: it takes its share of the partitions and serves them.

Between two runs of the service (``collector.service.app.run``) nothing is in flight, so that
is where partitions change hands: the supervisor gives back what is above its fair share (the
service was drained: its messages committed and acknowledged, its rules state saved per
partition, its MQTT sessions closed, so the broker queues for the next owner), takes free
partitions up to its share, takes the tickets lease if nobody holds it, and starts the service
for that scope. While it runs, a watcher checks every ``scale.lease_check_s`` whether the group
changed (a collector joined, left or died: its session ended and its locks with it); if so the
service drains and the loop goes round. A lost lease session stops the service at once: the
others are taking its partitions.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from collector.config.collector import CollectorConfig
from collector.pipeline.rules_stage import RulesSetup, load_setup
from collector.scale.leases import LeaseLost, Leases
from collector.scale.partitions import Partitioning, plan
from collector.scale.scope import Scope
from collector.service import app
from collector.service.tickets import TicketsSetup
from collector.store.retry import STORAGE_ERRORS, Backoff

log = logging.getLogger("fleetdesk.collector.scale")
LEASE_ERRORS: tuple[type[BaseException], ...] = (LeaseLost, *STORAGE_ERRORS)


class Membership:
    """This collector's leases: which partitions it owns, whether it runs the tickets."""

    def __init__(self, leases: Leases, partitions: int) -> None:
        self.leases = leases
        self.partitions = partitions
        self.owned: set[int] = set()
        self.tickets = False
        self.connected = False

    def lost(self) -> None:
        self.owned.clear()
        self.tickets = False
        self.connected = False
        self.leases.close()

    def wanted(self) -> tuple[list[int], list[int], bool]:
        """(to take, to give back, take the tickets lease): the group as it is now."""
        members = self.leases.members()
        free = sorted(set(range(self.partitions)) - self.leases.held())
        take, give = plan(sorted(self.owned), free, self.partitions, members)
        return take, give, not self.tickets and not self.leases.tickets_held()

    def rebalance(self) -> None:
        if not self.connected:
            slot = self.leases.connect()
            self.connected = True
            log.info("joined the collector group as member %d", slot)
        take, give, tickets = self.wanted()
        for part in give:
            self.leases.release(part)
            self.owned.discard(part)
        for part in take:
            if self.leases.take(part):
                self.owned.add(part)
        if tickets:
            self.tickets = self.leases.take_tickets()

    def changed(self) -> bool:
        take, give, tickets = self.wanted()
        return bool(take or give or tickets)


async def run_partitioned(
    cfg: CollectorConfig,
    stop: asyncio.Event,
    *,
    setup: RulesSetup | None = None,
    tickets: TicketsSetup | None = None,
    on_ready: Callable[[app.Service], None] | None = None,
) -> None:
    """Serve this collector's share of ``scale.partitions`` until ``stop``."""
    setup = setup if setup is not None else load_setup(cfg)
    if setup is None:  # the config check requires an inventory; a caller may not have one
        raise ValueError("scale.partitions needs rules.inventory")
    partitioning = Partitioning(setup.inventory, cfg.scale.partitions)
    member = Membership(Leases(cfg.store.url), cfg.scale.partitions)
    backoff = Backoff()
    try:
        while not stop.is_set():
            try:
                await asyncio.to_thread(member.rebalance)
            except LEASE_ERRORS as exc:
                log.error("partition leases unavailable: %s", exc)
                member.lost()
                await _wait(stop, backoff.take())
                continue
            backoff.reset()
            scope = Scope(partitioning, frozenset(member.owned), member.tickets)
            log.info(
                "serving %d of %d partitions %s%s",
                len(scope.parts),
                cfg.scale.partitions,
                sorted(scope.parts),
                " and the tickets" if scope.tickets else "",
            )
            run_stop = asyncio.Event()
            watcher = asyncio.create_task(_watch(member, cfg, stop, run_stop), name="leases")
            try:
                await app.run(
                    cfg, run_stop, setup=setup, tickets=tickets, on_ready=on_ready, scope=scope
                )
            finally:
                watcher.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await watcher
    finally:
        await asyncio.to_thread(member.leases.dispose)


async def _watch(
    member: Membership, cfg: CollectorConfig, stop: asyncio.Event, run_stop: asyncio.Event
) -> None:
    """Set ``run_stop`` when the service must drain: stopping, the group changed, or the lease
    session was lost."""
    while not run_stop.is_set():
        await _wait(stop, cfg.scale.lease_check_s)
        if stop.is_set():
            break
        try:
            if await asyncio.to_thread(member.changed):
                log.info("collector group changed: handing over partitions")
                break
        except LEASE_ERRORS as exc:
            log.error("partition lease session lost (%s): stopping its partitions", exc)
            await asyncio.to_thread(member.lost)
            break
    run_stop.set()


async def _wait(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)
