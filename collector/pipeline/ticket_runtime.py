"""The ticket service inside an asyncio process (the collector): one task, three parts.

Fault events reach the tickets through the store, not memory: the intake commit writes each
event with its ticket input (``fault_events.signal``), and the consumer here applies the events
after its cursor in id order, committing the tickets, their outbox rows and the new cursor in one
transaction, so each stored fault event is applied exactly once, even across a crash. The ticket
clock ticks at the next escalation or follow-up end; the delivery worker (when sinks are
configured) is woken after every commit. Storage errors are retried with backoff and shown in
``/healthz``; ``run`` is one task of the service's TaskGroup.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any, Protocol

import sqlalchemy as sa

from collector.delivery.worker import DeliveryWorker
from collector.pipeline import fault_handoff
from collector.pipeline.ticket_clock import run_ticket_clock
from collector.pipeline.ticket_service import TicketService
from collector.store.retry import STORAGE_ERRORS, Health, retrying
from collector.store.tickets import TicketTx
from collector.tickets.inputs import FaultSignal
from collector.tickets.model import TicketEvent

log = logging.getLogger("fleetdesk.tickets")


class TicketsRefused(Exception):
    """The book refused a fault inside the intake commit's transaction (``in_commit``)."""


def nothing_applied(_committed: bool) -> None:
    """What ``in_commit`` returns when it applied no fault event (the consumer will)."""


MAX_BATCH = 256
POLL_S = 1.0
PART = "tickets"


class FaultSource(Protocol):
    """The stored fault events (collector.store.Store)."""

    def fault_events_after(
        self, cursor: int, limit: int, conn: sa.Connection | None = None
    ) -> list[tuple[int, str | None]]: ...

    def ticket_cursor(self) -> int: ...


class TicketRuntime:
    def __init__(
        self,
        service: TicketService,
        source: FaultSource,
        worker: DeliveryWorker | None = None,
        health: Health | None = None,
    ) -> None:
        self.service = service
        self.source = source
        self.worker = worker
        self.health = health or Health()
        self._new_faults = asyncio.Event()
        self._clock_wake = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._cursor: int | None = None
        # _step runs in worker threads (the consumer's hop, and the intake commit's own thread
        # through apply_now): one at a time, each reading and advancing the cursor under it
        self._step_lock = threading.Lock()
        self._slow = False  # the consumer is applying a refused batch one by one
        self.opened = 0
        # called on the event loop with every commit's events (the API's live event stream)
        self.listeners: list[Callable[[Sequence[TicketEvent]], None]] = []

    def notify(self) -> None:
        """Fault events were committed to the store (from the event loop's thread)."""
        self._new_faults.set()

    def committed(self, events: Sequence[TicketEvent]) -> None:
        """Ticket changes were committed: wake the worker and the clock (from any thread).

        The worker first and straight from here (its notify is thread-safe, onto its own
        loop): going through this loop first would hold the webhook behind whatever batch the
        loop is running."""
        if self.worker is not None:
            self.worker.notify()
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
        self._clock_wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        self._loop = asyncio.get_running_loop()
        async with asyncio.TaskGroup() as group:
            group.create_task(self._consume(stop), name="tickets-faults")
            group.create_task(
                run_ticket_clock(
                    self.service,
                    stop,
                    wake=self._clock_wake,
                    on_events=self.committed,
                    health=self.health,
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

    async def drain(self, give_up: asyncio.Event | None = None) -> None:
        """Apply every stored event after the cursor (on shutdown, after the last commit)."""
        while await self._apply_next(give_up):
            pass

    async def _consume(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            self._new_faults.clear()  # before looking: a notify during the pass is kept
            try:
                if await self._apply_next(stop):
                    continue
            except STORAGE_ERRORS:
                if stop.is_set():
                    return  # the drain tries once more; what stays is applied on the next start
                raise
            waiters = [asyncio.ensure_future(self._new_faults.wait())]
            waiters.append(asyncio.ensure_future(stop.wait()))
            try:
                await asyncio.wait(waiters, timeout=POLL_S, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for waiter in waiters:
                    waiter.cancel()

    async def _apply_next(self, give_up: asyncio.Event | None) -> bool:
        """Apply the next stored events (up to MAX_BATCH); False when there were none.

        Reading them and applying them is one hop to a worker thread, not two: on a busy
        process each hop waits for the interpreter lock, and a fault's webhook waits on it."""
        if self._cursor is None:
            self._cursor = await retrying(
                PART,
                lambda: asyncio.to_thread(self.source.ticket_cursor),
                self.health,
                give_up=give_up,
            )
        step = await retrying(
            PART, lambda: asyncio.to_thread(self._step), self.health, give_up=give_up
        )
        if step is None:
            return False
        last, items, events = step
        if events is None:
            # Not the database: the book refused one of them. Apply them one by one so one bad
            # fault does not cost the others their tickets; the bad one is logged and passed.
            try:
                events = await self._one_by_one(items, last, give_up)
                with self._step_lock:
                    self._cursor = last
            finally:
                self._slow = False
        if events:
            self.committed(events)
        return True

    def in_commit(self, conn: sa.Connection) -> Callable[[bool], None]:
        """Inside the intake commit's transaction, in its worker thread, after it wrote fault
        events: apply them in that same transaction (one commit, one fsync, no hop back to the
        event loop and out to another thread). Returns ``done(committed)``: the cursor moves and
        the worker wakes, or (rolled back) the book forgets. The step lock is held until then,
        so the consumer never reads a cursor this transaction is about to move.

        Raises ``TicketsRefused`` when the book refused one of the faults (nothing of the
        tickets may stay in the transaction: the committer commits again without them, and the
        consumer goes one by one); a database error fails the whole commit, which is retried."""
        self._step_lock.acquire()
        try:
            pending = self._pending(conn)
            if pending is None:
                self._step_lock.release()
                return nothing_applied
            last, items = pending
            try:
                events = self.service.on_faults([s for _, s in items], last, tx=TicketTx(conn))
            except STORAGE_ERRORS:
                raise
            except Exception:
                raise TicketsRefused from None
        except BaseException:
            self._step_lock.release()
            raise

        def done(committed: bool) -> None:
            try:
                if committed:
                    self._cursor = last
                else:
                    self.service.rebuild()
            finally:
                self._step_lock.release()
            if committed and events:
                self.committed(events)

        return done

    def _pending(
        self, conn: sa.Connection | None = None
    ) -> tuple[int, list[tuple[int, FaultSignal]]] | None:
        """Under the step lock: the id of the last stored event after the cursor and the
        decoded ones (None: none, or the consumer is going one by one)."""
        if self._slow or self._cursor is None:
            return None
        rows = self.source.fault_events_after(self._cursor, MAX_BATCH, conn)
        if not rows:
            return None
        items = [(i, fault_handoff.decode(text)) for i, text in rows if text is not None]
        return rows[-1][0], items

    def _step(self) -> tuple[int, list[tuple[int, FaultSignal]], list[TicketEvent] | None] | None:
        """The consumer's worker thread: the events after the cursor and the tickets they
        make, committed with the new cursor (None: no events; events None: the book refused
        one of them, nothing was committed and the consumer goes one by one)."""
        with self._step_lock:
            pending = self._pending()
            if pending is None:
                return None
            last, items = pending
            try:
                events = self.service.on_faults([s for _, s in items], last)
            except STORAGE_ERRORS:
                raise
            except Exception:
                self._slow = True
                return last, items, None
            self._cursor = last
            return last, items, events

    async def _one_by_one(
        self, items: list[tuple[int, FaultSignal]], last: int, give_up: asyncio.Event | None
    ) -> list[TicketEvent]:
        events: list[TicketEvent] = []
        for i, (event_id, signal) in enumerate(items):
            upto = last if i == len(items) - 1 else event_id

            def one(signal: FaultSignal = signal, upto: int = upto) -> list[TicketEvent]:
                try:
                    return self.service.on_faults([signal], upto)
                except STORAGE_ERRORS:
                    raise
                except Exception:
                    log.exception("ticket for fault %s failed; passed over", signal.fault_id)
                    return self.service.on_faults([], upto)

            events += await retrying(
                PART, partial(asyncio.to_thread, one), self.health, give_up=give_up
            )
        return events
