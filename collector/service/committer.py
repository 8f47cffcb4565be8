"""The intake committer: what the pipeline produced is made durable, then acknowledged.

One task. Each pass takes, at one instant on the event loop (so they match): the message ids
of the batches processed so far, the dirty registry rows, the new fault events (each with its
ticket input) and the telemetry lines. Then, in a worker thread: the lines are appended to the
TSDB disk buffer, and the rows and events are committed in one database transaction. Only then
are the messages acknowledged and the ticket runtime woken. Batches arriving meanwhile wait for
the next pass (group commit: one transaction for many batches); passes are at least
``store.commit_interval_s`` apart.

A failed pass (database locked or down, disk buffer full or its disk full) is kept and retried
with backoff; it is counted, ``/healthz`` shows the part as degraded, and nothing more is
acknowledged, so the broker keeps the backlog (bounded by ``mqtt.max_unacked``). Lines already
on disk are not appended twice on a retry.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from collector.intake.group import IntakeGroup
from collector.intake.mqtt import Acks
from collector.metrics import Metrics
from collector.pipeline.dedup import Registry
from collector.pipeline.rules_stage import FaultLog
from collector.pipeline.ticket_runtime import TicketsRefused, nothing_applied
from collector.store import DeviceRow, Store
from collector.store.retry import STORAGE_ERRORS, Backoff, Health
from collector.store.store import FaultRecord, FaultScope, OpenSet
from collector.store.tsdb_buffer import BufferFull, DiskBuffer

log = logging.getLogger("fleetdesk.collector.commit")

PART = "intake-commit"
BUFFER_PART = "tsdb-buffer"
RETRIED: tuple[type[BaseException], ...] = (BufferFull, *STORAGE_ERRORS)


@dataclass
class Pass:
    """What one commit makes durable, and the acknowledgements that wait for it."""

    acks: list[Acks]  # per MQTT session of the intake group
    rows: list[DeviceRow]
    events: list[FaultRecord]
    open_now: OpenSet | None
    states: dict[str, dict[str, Any]] = field(default_factory=dict)
    lines: list[str] = field(default_factory=list)
    lines_on_disk: bool = False
    stored: bool = False
    tickets_applied: bool = False  # its fault events made their tickets in its transaction

    @property
    def faults(self) -> bool:
        return bool(self.events)

    @property
    def empty(self) -> bool:
        acked = any(mids for _, mids in self.acks)
        return not (acked or self.rows or self.events or self.lines) and self.open_now is None


class Committer:
    def __init__(
        self,
        *,
        store: Store,
        registry: Registry,
        faults: FaultLog | None,
        buffer: DiskBuffer | None,
        intake: IntakeGroup,
        metrics: Metrics,
        health: Health,
        commit_interval_s: float,
        idle_interval_s: float,
        scope: FaultScope | None = None,
        states_of: Callable[[list[FaultRecord]], dict[str, dict[str, Any]]] | None = None,
    ) -> None:
        """``scope``: the partitions whose open faults this collector replaces (scale-out);
        ``states_of``: state blobs to commit with every pass that holds fault events (the rules
        state of the partitions they are in, so a next owner starts from exactly these faults)."""
        self.store = store
        self.registry = registry
        self.faults = faults
        self.buffer = buffer
        self.intake = intake
        self.metrics = metrics
        self.health = health
        self.commit_interval_s = commit_interval_s
        self.idle_interval_s = idle_interval_s
        self.scope = scope
        self.states_of = states_of
        self.on_faults: list[Callable[[], None]] = []  # after a commit that stored fault events
        # the tickets of a pass's fault events, applied in its own transaction (TicketRuntime
        # .in_commit): returns done(committed)
        self.tickets_in_commit: Callable[[sa.Connection], Callable[[bool], None]] | None = None
        self._wake = asyncio.Event()
        self._urgent = asyncio.Event()  # a fault event waits: no group-commit delay
        self._lock = asyncio.Lock()
        self._held: Pass | None = None

    def notify(self) -> None:
        """A batch went down the pipeline (event loop thread)."""
        self._wake.set()
        if self.faults is not None and self.faults.changed:
            self._urgent.set()

    async def run(self, stop: asyncio.Event) -> None:
        last = 0.0
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self.idle_interval_s)
            # group commit: batches join this pass until the interval is up; a fault event
            # meanwhile is committed at once in a pass of its own (faults only: no rows, no
            # acknowledgements, no telemetry, so its transaction is small), its ticket with it
            while not stop.is_set():
                if self._urgent.is_set():
                    self._urgent.clear()
                    await self.commit(stop, faults_only=True)
                wait = self.commit_interval_s - (time.monotonic() - last)
                if wait <= 0:
                    break
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._first(stop, self._urgent), timeout=wait)
            if stop.is_set():
                break
            self._wake.clear()
            self._urgent.clear()
            last = time.monotonic()
            await self.commit(stop)

    @staticmethod
    async def _first(*events: asyncio.Event) -> None:
        waiters = [asyncio.ensure_future(e.wait()) for e in events]
        try:
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()

    async def commit(
        self,
        give_up: asyncio.Event | None = None,
        deadline: float = 0.0,
        *,
        faults_only: bool = False,
    ) -> bool:
        """One pass (and its retries). False if it was given up (``give_up`` set and, if given,
        ``deadline`` passed): then nothing was acknowledged and the broker redelivers."""
        async with self._lock:
            backoff = Backoff()
            while True:
                work = self._held or self._take(faults_only)
                if work.empty:
                    return True
                try:
                    await asyncio.to_thread(self._write, work)
                except RETRIED as exc:
                    self._held = work
                    part = BUFFER_PART if isinstance(exc, BufferFull | OSError) else PART
                    if isinstance(exc, BufferFull):
                        self.health.failed(part, str(exc))
                    else:
                        self.health.failed(part, exc)
                    if give_up is not None and give_up.is_set() and time.monotonic() >= deadline:
                        log.error("intake commit given up at shutdown: %s", exc)
                        return False
                    await asyncio.sleep(backoff.take())
                    continue
                self._held = None
                self.health.recovered(PART)
                self.health.recovered(BUFFER_PART)
                self.intake.ack(work.acks)
                self.metrics.commits.inc()
                if work.faults and not work.tickets_applied:  # else the consumer has nothing to do
                    for wake in self.on_faults:
                        wake()
                return True

    def _take(self, faults_only: bool = False) -> Pass:
        """What the pipeline produced since the last pass (``faults_only``: only the fault
        events and the open-fault change; rows, acknowledgements and lines wait for the next
        full pass, so nothing is acknowledged that is not stored)."""
        acks = [] if faults_only else self.intake.take_acks()
        rows = [] if faults_only else self.registry.take_dirty()
        events: list[FaultRecord] = []
        open_now = None
        states: dict[str, dict[str, Any]] = {}
        if self.faults is not None and faults_only and self.faults.changed:
            events = self.faults.take_events()  # the open-fault change goes with the full pass
        elif self.faults is not None and (self.faults.changed or self.faults.open_set_changed):
            events, open_now = self.faults.take()
        if events and self.states_of is not None:
            states = self.states_of(events)
        lines = self.buffer.take() if self.buffer is not None and not faults_only else []
        return Pass(acks, rows, events, open_now, states, lines)

    def _write(self, work: Pass) -> None:
        """Worker thread: lines to the disk buffer first, then the database transaction.

        A crash between the two leaves the batch unacknowledged: it is redelivered and its
        lines written again, which the TSDB stores once per series and timestamp."""
        if work.lines and not work.lines_on_disk:
            assert self.buffer is not None
            self.buffer.append(work.lines)
            work.lines_on_disk = True
        if not work.stored:
            done: list[Callable[[bool], None]] = []
            join = self.tickets_in_commit if work.events else None

            def tickets(conn: sa.Connection) -> None:
                assert join is not None
                done.append(finish := join(conn))
                work.tickets_applied = finish is not nothing_applied

            try:
                self._commit(work, tickets if join is not None else None)
            except TicketsRefused:  # rolled back whole: commit without them (the consumer's)
                work.tickets_applied = False
                self._commit(work, None)
            except BaseException:
                for finish in done:
                    finish(False)
                raise
            work.stored = True
            for finish in done:
                finish(True)

    def _commit(self, work: Pass, then: Callable[[sa.Connection], None] | None) -> None:
        self.store.commit_intake(
            work.rows, work.events, work.open_now, scope=self.scope, states=work.states, then=then
        )
