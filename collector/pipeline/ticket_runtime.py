"""The ticket service inside an asyncio process (the collector): one task, three parts.

Fault events from the rules engine are queued by ``submit`` (cheap, from the event loop) and
applied in order by a consumer that runs each database transaction in a thread; the ticket
clock ticks at the next escalation or follow-up end; the delivery worker (when sinks are
configured) is woken after every commit. ``run`` is one task of the service's TaskGroup.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any

from collector.delivery.worker import DeliveryWorker
from collector.pipeline.ticket_clock import run_ticket_clock
from collector.pipeline.ticket_service import TicketService
from collector.rules.faults import FaultEvent
from collector.tickets.from_rules import signal_of
from collector.tickets.model import TicketEvent

log = logging.getLogger("fleetdesk.tickets")
MAX_BATCH = 256


class TicketRuntime:
    def __init__(self, service: TicketService, worker: DeliveryWorker | None = None) -> None:
        self.service = service
        self.worker = worker
        self._queue: asyncio.Queue[FaultEvent] = asyncio.Queue()
        self._clock_wake = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self.opened = 0
        # called on the event loop with every commit's events (the API's live event stream)
        self.listeners: list[Callable[[Sequence[TicketEvent]], None]] = []

    def on_fault(self, event: FaultEvent) -> None:
        """A fault stage: queue the event (from the event loop's thread) for the ticket book."""
        self._queue.put_nowait(event)

    def submit(self, events: Iterable[FaultEvent]) -> None:
        for event in events:
            self._queue.put_nowait(event)

    def advance(self, now: datetime) -> None:
        """Nothing to do: the ticket clock task wakes itself at the next exact deadline."""

    def committed(self, events: Sequence[TicketEvent]) -> None:
        """Ticket changes were committed: wake the worker and the clock (from any thread)."""
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._wake, events)
        else:
            self._wake(events)

    def _wake(self, events: Sequence[TicketEvent]) -> None:
        self.opened += sum(1 for e in events if e.kind.value == "ticket_opened")
        for listener in self.listeners:
            try:
                listener(events)
            except Exception:
                log.exception("ticket listener failed")
        if self.worker is not None:
            self.worker.notify()
        self._clock_wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        self._loop = asyncio.get_running_loop()
        async with asyncio.TaskGroup() as group:
            group.create_task(self._consume(stop), name="tickets-faults")
            group.create_task(
                run_ticket_clock(
                    self.service, stop, wake=self._clock_wake, on_events=self.committed
                ),
                name="tickets-clock",
            )
            if self.worker is not None:
                group.create_task(self._deliver(self.worker, stop), name="tickets-delivery")

    async def _deliver(self, worker: DeliveryWorker, stop: asyncio.Event) -> None:
        """The worker on its own thread and event loop: a busy intake loop (large batches run
        synchronously) would otherwise hold every webhook back by a batch's time."""
        loop = asyncio.get_running_loop()
        ready: asyncio.Future[tuple[asyncio.AbstractEventLoop, asyncio.Event]]
        ready = loop.create_future()
        done: asyncio.Future[None] = loop.create_future()

        async def main() -> None:
            own_stop = asyncio.Event()
            loop.call_soon_threadsafe(ready.set_result, (asyncio.get_running_loop(), own_stop))
            await worker.run(own_stop)

        def thread_main() -> None:
            try:
                asyncio.run(main())
            except BaseException as exc:  # handed to the service's TaskGroup
                loop.call_soon_threadsafe(done.set_exception, exc)
            else:
                loop.call_soon_threadsafe(done.set_result, None)

        threading.Thread(target=thread_main, name="tickets-delivery", daemon=True).start()
        first: set[asyncio.Future[Any]] = {ready, done}
        await asyncio.wait(first, return_when=asyncio.FIRST_COMPLETED)
        if ready.done():
            worker_loop, own_stop = ready.result()
            stopped = asyncio.ensure_future(stop.wait())
            second: set[asyncio.Future[Any]] = {stopped, done}
            await asyncio.wait(second, return_when=asyncio.FIRST_COMPLETED)
            stopped.cancel()
            if not done.done():
                worker_loop.call_soon_threadsafe(own_stop.set)
        await done

    async def drain(self) -> None:
        """Apply what is queued (on shutdown, after intake stopped)."""
        while not self._queue.empty():
            await self._apply(self._take())

    def _take(self, first: FaultEvent | None = None) -> list[FaultEvent]:
        """Everything queued now (up to a bound): one transaction for a burst of faults."""
        batch = [first] if first is not None else []
        while not self._queue.empty() and len(batch) < MAX_BATCH:
            batch.append(self._queue.get_nowait())
        return batch

    async def _consume(self, stop: asyncio.Event) -> None:
        stopped = asyncio.ensure_future(stop.wait())
        try:
            while not stop.is_set():
                getter = asyncio.ensure_future(self._queue.get())
                await asyncio.wait({getter, stopped}, return_when=asyncio.FIRST_COMPLETED)
                if not getter.done():
                    getter.cancel()
                    break
                await self._apply(self._take(getter.result()))
            await self.drain()
        finally:
            stopped.cancel()

    async def _apply(self, batch: list[FaultEvent]) -> None:
        signals = [signal_of(event) for event in batch]
        try:
            events = await asyncio.to_thread(self.service.on_faults, signals)
        except Exception:
            # The transaction rolled back and the book was reloaded; apply the batch one by one
            # so that one bad fault does not cost the others their tickets.
            events = []
            for signal in signals:
                try:
                    events += await asyncio.to_thread(self.service.on_fault, signal)
                except Exception:
                    log.exception("ticket for fault %s failed", signal.fault_id)
        if events:
            self.committed(events)
