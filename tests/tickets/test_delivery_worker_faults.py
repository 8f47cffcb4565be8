"""The delivery worker's own failure paths: its database going away (a private PostgreSQL
cluster, tests/support/pg.py, stopped and started under it), a pass that raises something
unexpected, and a desk that never answers. The worker must keep going, say what is wrong in
its health, and in the end deliver every event once, in order."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from pathlib import Path

import pytest

from collector.delivery.adapters.webhook import WebhookAdapter
from collector.delivery.backoff import Backoff
from collector.delivery.sinks import Sink
from collector.delivery.worker import DeliveryWorker
from collector.store.retry import Health
from collector.store.tickets import TicketStore
from tests.support.outbox import outbox_rows
from tests.support.pg import PrivateCluster
from tests.support.receiver import Answer, Receiver
from tests.support.services import free_port
from tests.support.tickets import make_events, wait_until


def delivered_once(receiver: Receiver, store: TicketStore, ids: list[str]) -> bool:
    """Each event sent once (the worker waits for one answer per event) and recorded so."""
    rows = outbox_rows(store)
    return len(receiver.accepted()) == len(ids) == len(rows) and all(
        r.state == "delivered" for r in rows
    )


async def test_the_database_going_away_degrades_the_worker_until_it_is_back() -> None:
    cluster = PrivateCluster().start()
    store = TicketStore(cluster.url)
    receiver = Receiver(free_port())
    receiver.start()
    stop = asyncio.Event()
    try:
        store.migrate()
        ids = make_events(store, devices=2)
        health = Health()
        sink = Sink("desk", WebhookAdapter(receiver.url), backoff=Backoff(0.02, 0.05))
        worker = DeliveryWorker(store, {"desk": sink}, poll_s=0.05, health=health)
        await asyncio.to_thread(cluster.stop)
        task = asyncio.create_task(worker.run(stop))
        await wait_until(lambda: "delivery" in health.degraded())
        assert "OperationalError" in health.degraded()["delivery"]  # says why, not just that
        assert not task.done()  # it keeps trying
        assert receiver.received == []
        await asyncio.to_thread(cluster.start)
        # the last request reaches the receiver before its outcome is recorded: wait for both
        await wait_until(lambda: delivered_once(receiver, store, ids))
        await wait_until(lambda: health.degraded() == {})
        assert len(receiver.accepted()) == len(ids)  # none sent twice
        stop.set()
        await task
    finally:
        stop.set()
        receiver.stop()
        store.close()
        cluster.remove()


async def test_a_pass_that_raises_is_logged_and_the_worker_goes_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A bug in a pass (here the claim raising once, injected into the real store) is logged
    with what happens next; the worker waits its poll interval and delivers everything."""
    store = TicketStore(f"sqlite:///{tmp_path / 't.db'}")
    store.migrate()
    ids = make_events(store, devices=1)
    real_claim, calls = store.claim, []

    def claim_failing_once(*args: object, **kwargs: object) -> object:
        calls.append(time.monotonic())
        if len(calls) == 1:
            raise RuntimeError("a bug in the claim")
        return real_claim(*args, **kwargs)  # type: ignore[arg-type]

    store.claim = claim_failing_once  # type: ignore[method-assign]
    receiver = Receiver(free_port())
    receiver.start()
    stop = asyncio.Event()
    try:
        sink = Sink("desk", WebhookAdapter(receiver.url))
        worker = DeliveryWorker(store, {"desk": sink}, poll_s=0.2)
        with caplog.at_level(logging.ERROR, logger="collector.delivery.worker"):
            task = asyncio.create_task(worker.run(stop))
            await wait_until(lambda: len(receiver.accepted()) == len(ids))
        stop.set()
        await task
        assert delivered_once(receiver, store, ids)
    finally:
        stop.set()
        receiver.stop()
        store.close()
    failures = [r for r in caplog.records if "pass failed" in r.getMessage()]
    assert [r.getMessage() for r in failures] == ["delivery pass failed; trying again in 0.2s"]
    assert failures[0].exc_info is not None  # the bug's traceback is in the log, for a fix
    assert calls[1] - calls[0] >= 0.19  # it waited its poll interval before trying again


async def test_a_desk_that_never_answers_times_out_at_the_sinks_timeout(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The first request hangs (the receiver holds it); the sink's 0.3 s timeout, not the
    HTTP client's default (5 minutes), fails the attempt and the retry delivers."""
    caplog.set_level(logging.INFO, logger="collector.delivery.worker")
    store = TicketStore(f"sqlite:///{tmp_path / 't.db'}")
    store.migrate()
    make_events(store, devices=1)
    release = threading.Event()

    receiver = Receiver(free_port(), lambda n: Answer(200, hold=release if n == 0 else None))
    receiver.start()
    stop = asyncio.Event()
    try:
        sink = Sink(
            "desk", WebhookAdapter(receiver.url), backoff=Backoff(0.02, 0.05), timeout_s=0.3
        )
        worker = DeliveryWorker(store, {"desk": sink}, poll_s=0.05)
        start = time.monotonic()
        task = asyncio.create_task(worker.run(stop))

        def first_done() -> bool:
            return bool(min(outbox_rows(store), key=lambda r: r.id).state == "delivered")

        await wait_until(first_done, 20)
        took = time.monotonic() - start
        assert took < 60, took  # a 0.3 s timeout and a retry, not the client's 300 s
        assert "failed (timeout: no answer within 0.3s), retry in" in caplog.text
        await wait_until(lambda: all(r.state == "delivered" for r in outbox_rows(store)), 20)
        stop.set()
        await task
        first = min(outbox_rows(store), key=lambda r: r.id)
        assert first.state == "delivered" and first.attempts >= 1
    finally:
        release.set()
        stop.set()
        receiver.stop()
        store.close()
