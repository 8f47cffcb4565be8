"""An idle delivery worker waits: rows it cannot send now do not make it poll the database
in a loop (a row held behind its ticket's dead row is due, but not sendable)."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from collector.delivery.adapters.webhook import WebhookAdapter
from collector.delivery.backoff import Backoff
from collector.delivery.sinks import Sink
from collector.delivery.worker import DeliveryWorker
from collector.pipeline.ticket_service import TicketService
from collector.store.tickets import TicketStore
from tests.support.outbox import outbox_rows
from tests.support.receiver import Answer, Receiver
from tests.support.services import free_port
from tests.support.tickets import ENGINE, Devices, fault, make_book, make_events, wait_until

POLL_S = 0.2


async def statements_while_idle(store: TicketStore) -> list[str]:
    """The statements the worker runs over five polls, once the pass in progress is over."""
    statements: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    await asyncio.sleep(POLL_S)
    sa.event.listen(store.engine, "before_cursor_execute", count)
    await asyncio.sleep(5 * POLL_S)
    sa.event.remove(store.engine, "before_cursor_execute", count)
    return statements


async def test_rows_held_behind_a_dead_row_do_not_make_the_worker_spin(tmp_path: Path) -> None:
    store = TicketStore(f"sqlite:///{tmp_path / 't.db'}")
    store.migrate()
    make_events(store, devices=1)  # opened, acknowledged, commented, resolved
    receiver = Receiver(free_port(), lambda _n: Answer(400))  # the desk refuses: dead at once
    receiver.start()
    sink = Sink("desk", WebhookAdapter(receiver.url), backoff=Backoff(0.02, 0.05))
    worker = DeliveryWorker(store, {"desk": sink}, poll_s=POLL_S)
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    try:
        await wait_until(lambda: store.outbox_counts()["dead"] == 1)
        statements = await statements_while_idle(store)
    finally:
        stop.set()
        await task
        receiver.stop()
    rows = outbox_rows(store)
    assert [r.state for r in rows] == ["dead", "pending", "pending", "pending"]
    assert len(receiver.received) == 1, "the held events were not sent"
    # Five polls: a few queries each. A worker that took the held rows for due ones would
    # query without a pause (thousands in this second).
    assert len(statements) <= 5 * 4, statements[:10]
    store.close()


def _kind(statement: str) -> str:
    if statement.startswith("SELECT outbox.id"):
        return "claim"
    if statement.startswith("UPDATE outbox"):
        return "settle"
    if "min(outbox.next_attempt_at)" in statement or "count(*)" in statement:
        return "idle"  # the next-due time and the gauges: what an idle worker asks
    return "other"


def _after_first_settle(kinds: list[str]) -> list[str]:
    rest = kinds[kinds.index("settle") + 1 :]
    return rest[: rest.index("claim") + 1] if "claim" in rest else rest


async def test_a_full_batch_or_a_commit_during_a_pass_is_claimed_next_without_idle_queries(
    tmp_path: Path,
) -> None:
    """More may be due after a full batch, and rows committed during a pass are: either way
    the next statement after the pass's outcomes is the next claim, not the idle worker's
    next-due and gauge queries (each a round trip in front of a new ticket's webhook)."""
    store = TicketStore(f"sqlite:///{tmp_path / 't.db'}")
    store.migrate()
    release = threading.Event()
    receiver = Receiver(free_port(), lambda n: Answer(200, hold=release if n == 0 else None))
    receiver.start()
    sink = Sink("desk", WebhookAdapter(receiver.url))
    worker = DeliveryWorker(store, {"desk": sink}, poll_s=POLL_S, max_in_flight=1)  # batch 4
    kinds: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        kinds.append(_kind(statement))

    sa.event.listen(store.engine, "before_cursor_execute", count)
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    try:
        make_events(store, devices=1)
        worker.notify()
        await wait_until(lambda: len(receiver.received) == 1)  # the pass hangs on the desk
        make_events(store, devices=2)  # committed during the pass: d0's and d1's events
        worker.notify()
        kinds.clear()
        release.set()
        await wait_until(lambda: store.outbox_counts()["pending"] == 0)
        during = _after_first_settle(kinds)
        # Now a full batch: five tickets' openings due at once, four sent in the first pass.
        make_events(store, devices=5)
        kinds.clear()
        worker.notify()
        await wait_until(lambda: store.outbox_counts()["pending"] == 0)
        full = _after_first_settle(kinds)
    finally:
        stop.set()
        await task
        receiver.stop()
        sa.event.remove(store.engine, "before_cursor_execute", count)
    assert during == ["claim"], during
    assert full == ["claim"], full
    store.close()


async def test_rows_for_a_sink_this_worker_does_not_serve_do_not_make_it_spin(
    tmp_path: Path,
) -> None:
    """Two desks in the outbox, a worker for one of them (another worker, or a sink since
    removed from its config, sends the rest): the other desk's due rows do not wake it."""
    store = TicketStore(f"sqlite:///{tmp_path / 't.db'}")
    store.migrate()
    service = TicketService(
        book_factory=lambda: make_book(Devices()), store=store, sla=ENGINE, sinks=("desk", "pager")
    )
    service.on_fault(fault("opened", "2025-10-09T08:00:00"))
    receiver = Receiver(free_port(), lambda _n: Answer(200))
    receiver.start()
    worker = DeliveryWorker(
        store, {"desk": Sink("desk", WebhookAdapter(receiver.url))}, poll_s=POLL_S
    )
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    try:
        await wait_until(lambda: store.outbox_counts()["delivered"] == 1)
        statements = await statements_while_idle(store)
    finally:
        stop.set()
        await task
        receiver.stop()
    assert [(r.sink, r.state) for r in outbox_rows(store)] == [
        ("desk", "delivered"),
        ("pager", "pending"),
    ]
    assert len(statements) <= 5 * 4, statements[:10]
    store.close()


async def test_a_retry_is_sent_when_due_not_at_the_next_poll(tmp_path: Path) -> None:
    """The worker sleeps until the next row falls due, however long its poll interval."""
    store = TicketStore(f"sqlite:///{tmp_path / 't.db'}")
    store.migrate()
    make_events(store, devices=1)
    receiver = Receiver(free_port(), lambda n: Answer(503) if n == 0 else Answer(200))
    receiver.start()
    sink = Sink("desk", WebhookAdapter(receiver.url), backoff=Backoff(0.05, 0.05))
    worker = DeliveryWorker(store, {"desk": sink}, poll_s=60.0)
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    try:
        await wait_until(lambda: len(receiver.received) >= 2)
    finally:
        stop.set()
        await task
        receiver.stop()
    first, retry = receiver.received[:2]
    assert first.status == 503 and retry.status == 200
    assert retry.headers["idempotency-key"] == first.headers["idempotency-key"]
    # due 0.05-0.1 s after the failure (backoff with jitter); a poll would be 60 s
    assert retry.at - first.at < 0.9
    assert outbox_rows(store)[0].attempts == 1  # one failed attempt recorded, from 0
    store.close()
