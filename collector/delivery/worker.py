"""The delivery worker: reads due outbox rows, sends them, records the outcome.

At-least-once: a row is marked delivered only after the desk accepted it, so a worker killed
mid-request sends that row again on start; the receiver deduplicates on ``webhook-id`` /
``Idempotency-Key`` (the event id). Desks that ignore those (Jira, Zammad, ServiceNow) are
asked for the ticket tagged with our fault number before a create, so a retried create finds
the first one (``Adapter.lookup``); the desk's id is recorded in the same transaction as the
delivery result. Per-ticket order holds because the store only hands out the oldest
undelivered row of each (sink, ticket), locked for one worker (several workers may share a
PostgreSQL database: ``collector.store.outbox``). No adapter error stops the worker: it
becomes the event's named failure, retried until the dead-letter horizon. Database calls run
in a thread so the event loop (the collector's intake) never waits on the disk.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import json
import logging
import random
import time
from collections.abc import Callable, Mapping
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any, TypeVar

from collector.delivery.backoff import parse_retry_after
from collector.delivery.http_client import RequestFailed, SinkClient
from collector.delivery.metrics import DeliveryMetrics, default_metrics
from collector.delivery.request import MissingRemoteRef, Request
from collector.delivery.signing import sign_headers
from collector.delivery.sinks import Sink
from collector.store.outbox import Claim
from collector.store.retry import STORAGE_ERRORS, Backoff, Health, sleep_unless
from collector.store.tickets import OutboxRow, TicketStore

log = logging.getLogger(__name__)
RETRYABLE = frozenset({408, 425, 429, 500, 502, 503, 504})
USER_AGENT = "fleetdesk-delivery/1"
PART = "delivery"
T = TypeVar("T")


class Outcome(enum.StrEnum):
    DELIVERED = "delivered"
    DUPLICATE = "duplicate"  # 409: the desk already has this event
    SKIPPED = "skipped"  # the adapter has nothing to send for this event type
    RETRY = "retry"
    DEAD = "dead"


@dataclass(frozen=True, slots=True)
class Attempt:
    outcome: Outcome
    reason: str
    retry_after_s: float | None = None
    ref: str | None = None  # the desk's id for the ticket, learnt by this attempt


class _Failed(Exception):
    """A request of an event failed: ``attempt`` says how."""

    def __init__(self, attempt: Attempt) -> None:
        super().__init__(attempt.reason)
        self.attempt = attempt


class DeliveryWorker:
    def __init__(
        self,
        store: TicketStore,
        sinks: Mapping[str, Sink],
        *,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
        max_in_flight: int = 4,
        poll_s: float = 0.5,
        metrics: DeliveryMetrics | None = None,
        health: Health | None = None,
        inline_db: bool = False,
    ) -> None:
        """``inline_db``: the outbox queries run on the worker's own event loop instead of a
        thread (for a worker with a loop of its own, as in the collector: each hop to a thread
        waits for the interpreter lock behind the busy intake, and a webhook waits on it)."""
        self.metrics = metrics if metrics is not None else default_metrics()
        self.health = health or Health()
        self._store = store
        self._sinks = dict(sinks)
        self._clock = clock
        self._rng = rng or random.Random()
        # A few requests in flight are enough: more cost the pool more arbitration than they
        # save (measured with httpx: 4 in flight beat 16 and 32).
        self._slots = asyncio.Semaphore(max_in_flight)
        self._batch = 4 * max_in_flight
        self._poll_s = poll_s
        self._wake = asyncio.Event()
        self._gauge_states: set[str] = set()  # outbox states the gauge has shown
        self._loop: asyncio.AbstractEventLoop | None = None
        self._clients: dict[str, SinkClient] = {}
        self._stale_gauges = True
        self._gauges_at = 0.0  # monotonic time of the last refresh
        self._inline_db = inline_db
        self._notified = False  # notify was called since the last claim began

    def notify(self) -> None:
        """New rows were committed: look now instead of at the next poll (from any thread)."""
        # Seen at once, even while a blocking query holds this worker's loop (inline_db):
        # the queries of an idle worker are skipped then, the new rows are not kept waiting.
        self._notified = True
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._wake.set)
        else:
            self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        self._loop = asyncio.get_running_loop()
        async with AsyncExitStack() as stack:
            for sink in self._sinks.values():
                client = SinkClient(sink.timeout_s, sink.ca_file)
                self._clients[sink.name] = await stack.enter_async_context(client)
            backoff = Backoff()
            while not stop.is_set():
                self._wake.clear()  # before looking: a notify during the pass is kept
                try:
                    # The gauge count is a query: refreshed when idle (or each second while
                    # busy), not in front of a pass a new ticket is waiting on.
                    if self._stale_gauges and time.monotonic() - self._gauges_at > 1.0:
                        await self._db(self._refresh_gauges)
                    self._notified = False  # before the claim: rows committed later wake us
                    sent = await self.run_once()
                    if sent:
                        self.health.recovered(PART)
                    if sent >= self._batch or self._notified:
                        continue  # more may be due now
                    # Fewer than a batch and nothing committed since: nothing else is due
                    # now, but for the later events of a ticket just sent (next_due_at in
                    # _sleep sees those), so no second claim, three round trips, in front of
                    # the next new ticket.
                    if self._stale_gauges:
                        await self._db(self._refresh_gauges)
                    await self._sleep(stop)
                except STORAGE_ERRORS as exc:
                    # The outbox cannot be read or settled: an attempt whose outcome was not
                    # recorded is sent again later (the desk deduplicates on the event id).
                    self.health.failed(PART, exc)
                    await sleep_unless(stop, backoff.take())
                    continue
                except Exception:  # anything else: log, wait, try again (the worker survives)
                    log.exception("delivery pass failed; trying again in %.1fs", self._poll_s)
                    await self._pause(stop, self._poll_s)
                    continue
                if self._wake.is_set():  # rows committed (notify): the gauge shows them now
                    self._stale_gauges = True
                self.health.recovered(PART)
                backoff.reset()

    async def run_once(self) -> int:
        """Attempt the rows due now (one per sink and ticket), then record the outcomes in one
        transaction; returns how many were attempted."""
        claim = await self._db(self._store.claim, self._clock(), self._batch, tuple(self._sinks))
        try:
            rows = [r for r in claim.rows if r.sink in self._sinks]
            if not rows:
                return 0
            async with asyncio.TaskGroup() as group:
                tasks = [
                    group.create_task(self._deliver(row), name=f"deliver {row.sink} {row.event_id}")
                    for row in rows
                ]
            results = [(row, task.result()) for row, task in zip(rows, tasks, strict=True)]
            await self._db(self._settle, claim, results)  # settles and lets go
            return len(rows)
        finally:
            if claim.holding:  # not settled (an error, or nothing to send): let the rows go
                await self._db(claim.release)

    async def _deliver(self, row: OutboxRow) -> Attempt:
        async with self._slots:
            try:
                attempt = await self._attempt(self._sinks[row.sink], row)
            except Exception as exc:  # an adapter bug or a desk answer it did not expect
                log.warning(
                    "delivery %s to %s: adapter error", row.event_id, row.sink, exc_info=True
                )
                attempt = Attempt(
                    Outcome.RETRY, f"adapter_error: {type(exc).__name__}: {exc}"[:300]
                )
        self.metrics.attempts.labels(row.sink, attempt.outcome.value).inc()
        return attempt

    def _settle(self, claim: Claim[OutboxRow], results: list[tuple[OutboxRow, Attempt]]) -> None:
        now = self._clock()
        delivered: list[tuple[int, float]] = []
        retries: list[tuple[int, int, float, str]] = []
        dead: list[tuple[int, int, float, str]] = []
        refs: list[tuple[str, str, str]] = []
        for row, attempt in results:
            sink = self._sinks[row.sink]
            if attempt.ref is not None:
                refs.append((row.sink, row.ticket, attempt.ref))
            if attempt.outcome in (Outcome.DELIVERED, Outcome.DUPLICATE, Outcome.SKIPPED):
                delivered.append((row.id, now))
                self.metrics.latency.observe(max(0.0, now - row.created_at))
            elif attempt.outcome is Outcome.RETRY and now - row.created_at < sink.dead_after_s:
                # A Retry-After never pushes the next attempt past the dead-letter horizon.
                horizon = max(0.0, row.created_at + sink.dead_after_s - now)
                retry_after = attempt.retry_after_s
                if retry_after is not None:
                    retry_after = min(retry_after, horizon)
                delay = min(sink.backoff.delay(row.attempts + 1, self._rng, retry_after), horizon)
                retries.append((row.id, row.attempts + 1, now + delay, attempt.reason))
                log.info(
                    "delivery %s to %s failed (%s), retry in %.1fs",
                    row.event_id,
                    row.sink,
                    attempt.reason,
                    delay,
                )
            else:
                reason = attempt.reason
                if attempt.outcome is Outcome.RETRY:
                    reason = f"still failing after {sink.dead_after_s:g}s: {reason}"
                dead.append((row.id, row.attempts + 1, now, reason))
                log.error("delivery %s to %s dead-lettered: %s", row.event_id, row.sink, reason)
        claim.settle(delivered, retries, dead, refs)
        self._stale_gauges = (
            True  # refreshed before the next pass (off this loop), not minutes later
        )

    async def _attempt(self, sink: Sink, row: OutboxRow) -> Attempt:
        event = json.loads(row.body)
        adapter = sink.adapter
        ref = None
        if adapter.uses_refs:
            ref = await asyncio.to_thread(self._store.remote_ref, sink.name, row.ticket)
        # A ticket routed to this desk after it opened (a level change brought it here) has no
        # desk ticket yet: its first event here creates one, as an opening would.
        opening = adapter.uses_refs and (event["type"] == "ticket_opened" or ref is None)
        try:
            if opening and ref is not None:
                return Attempt(Outcome.DELIVERED, "desk ticket already recorded")
            if opening:
                lookup = adapter.lookup(event)
                if lookup is not None:
                    _, answer = await self._send(sink, row, lookup)
                    found = adapter.ref_from_lookup(answer)
                    if found is not None:
                        return Attempt(Outcome.DELIVERED, "found the desk's ticket", ref=found)
            try:
                as_sent = {**event, "type": "ticket_opened"} if opening else event
                planned = adapter.request(as_sent, ref)
            except MissingRemoteRef as exc:
                return Attempt(Outcome.DEAD, f"no_remote_ref: {exc}")
            if planned is None:
                return Attempt(Outcome.SKIPPED, "nothing to send for this event type")
            status = 0
            for request in planned if isinstance(planned, tuple) else (planned,):
                status, answer = await self._send(sink, row, request)
        except _Failed as failed:
            return failed.attempt
        outcome = Outcome.DUPLICATE if status == 409 else Outcome.DELIVERED
        if not opening:
            return Attempt(outcome, str(status))
        created = adapter.ref_from(as_sent, answer)
        if created is None:  # the next attempt looks the ticket up instead of creating again
            problem = "conflict_without_id" if status == 409 else "created_without_id"
            return Attempt(Outcome.RETRY, f"{problem}: HTTP {status} named no desk ticket")
        return Attempt(outcome, str(status), ref=created)

    async def _send(self, sink: Sink, row: OutboxRow, request: Request) -> tuple[int, object]:
        """Send one request; its status (2xx or 409) and JSON answer, or ``_Failed``."""
        body = request.body()
        headers = {
            "user-agent": USER_AGENT,
            "idempotency-key": row.event_id,
            **sink.headers,
            **request.headers,
        }
        if request.json is not None:
            headers["content-type"] = "application/json"
        if sink.secrets:
            headers.update(sign_headers(sink.secrets, row.event_id, int(self._clock()), body))
        client = self._clients.get(sink.name)
        if client is None:
            raise RuntimeError("DeliveryWorker.run_once called outside run()")
        try:
            answer = await client.request(request.method, request.url, body or None, headers)
        except RequestFailed as failed:
            raise _Failed(Attempt(Outcome.RETRY, failed.reason)) from None
        status = answer.status
        if 200 <= status < 300 or status == 409:
            return status, answer.json()
        if status in RETRYABLE:
            retry_after = parse_retry_after(answer.headers.get("retry-after"), self._clock())
            raise _Failed(Attempt(Outcome.RETRY, f"HTTP {status}", retry_after))
        raise _Failed(Attempt(Outcome.DEAD, f"rejected: HTTP {status} {answer.text[:200]}"))

    async def _db(self, call: Callable[..., T], *args: Any) -> T:
        if self._inline_db:
            return call(*args)
        return await asyncio.to_thread(call, *args)

    async def _pause(self, stop: asyncio.Event, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), seconds)

    async def _sleep(self, stop: asyncio.Event) -> None:
        if self._notified:
            return  # rows were committed meanwhile: claim them, the due time can wait
        next_at = await self._db(self._store.next_due_at, tuple(self._sinks))
        wait = self._poll_s
        if next_at is not None:
            wait = min(wait, max(0.0, next_at - self._clock()))
        waiters = [asyncio.ensure_future(self._wake.wait()), asyncio.ensure_future(stop.wait())]
        try:
            await asyncio.wait(waiters, timeout=wait, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()

    def _refresh_gauges(self) -> None:
        counts = self._store.outbox_counts()  # a failure leaves the gauges stale: tried again
        self._stale_gauges = False
        self._gauges_at = time.monotonic()
        for state in self._gauge_states - counts.keys():  # emptied since: 0, not the old count
            self.metrics.outbox.labels(state).set(0)
        self._gauge_states = set(counts)
        for state, n in counts.items():
            self.metrics.outbox.labels(state).set(n)
        self.metrics.dead.set(counts.get("dead", 0))
