"""The delivery worker: reads due outbox rows, sends them, records the outcome.

At-least-once: a row is marked delivered only after the desk accepted it, so a worker killed
mid-request sends that row again on start; the receiver deduplicates on ``webhook-id`` /
``Idempotency-Key`` (the event id). Per-ticket order holds because the store only hands out
the oldest pending row of each (sink, ticket). One worker per database. Database calls run in
a thread so the event loop (the collector's intake) never waits on the disk.
"""

from __future__ import annotations

import asyncio
import enum
import json
import logging
import random
import ssl
import time
from collections.abc import Callable, Mapping
from contextlib import AsyncExitStack
from dataclasses import dataclass

import httpx

from collector.delivery.backoff import parse_retry_after
from collector.delivery.metrics import DeliveryMetrics, default_metrics
from collector.delivery.request import MissingRemoteRef
from collector.delivery.signing import sign_headers
from collector.delivery.sinks import Sink
from collector.store.tickets import OutboxRow, TicketStore

log = logging.getLogger(__name__)
RETRYABLE = frozenset({408, 425, 429, 500, 502, 503, 504})
USER_AGENT = "fleetdesk-delivery/1"


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
    ) -> None:
        self.metrics = metrics if metrics is not None else default_metrics()
        self._store = store
        self._sinks = dict(sinks)
        self._clock = clock
        self._rng = rng or random.Random()
        # A few requests in flight are enough: httpcore's pool spends more time arbitrating
        # many concurrent requests than it saves (measured: 4 in flight beat 16 and 32).
        self._slots = asyncio.Semaphore(max_in_flight)
        self._batch = 4 * max_in_flight
        self._poll_s = poll_s
        self._wake = asyncio.Event()
        self._gauge_states: set[str] = set()  # outbox states the gauge has shown
        self._loop: asyncio.AbstractEventLoop | None = None
        self._clients: dict[str, httpx.AsyncClient] = {}

    def notify(self) -> None:
        """New rows were committed: look now instead of at the next poll (from any thread)."""
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._wake.set)
        else:
            self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        self._loop = asyncio.get_running_loop()
        async with AsyncExitStack() as stack:
            for sink in self._sinks.values():
                verify: ssl.SSLContext | bool = True
                if sink.ca_file is not None:
                    verify = ssl.create_default_context(cafile=sink.ca_file)
                client = httpx.AsyncClient(timeout=sink.timeout_s, verify=verify)
                self._clients[sink.name] = await stack.enter_async_context(client)
            self._refresh_gauges()
            while not stop.is_set():
                self._wake.clear()  # before looking: a notify during the pass is kept
                if await self.run_once():
                    continue
                await self._sleep(stop)
                if self._wake.is_set():  # rows committed (notify): the gauge shows them now
                    await asyncio.to_thread(self._refresh_gauges)

    async def run_once(self) -> int:
        """Attempt the rows due now (one per sink and ticket), then record the outcomes in one
        transaction; returns how many were attempted."""
        due = await asyncio.to_thread(self._store.due, self._clock(), self._batch)
        rows = [r for r in due if r.sink in self._sinks]
        if not rows:
            return 0
        async with asyncio.TaskGroup() as group:
            tasks = [
                group.create_task(self._deliver(row), name=f"deliver {row.sink} {row.event_id}")
                for row in rows
            ]
        results = [(row, task.result()) for row, task in zip(rows, tasks, strict=True)]
        await asyncio.to_thread(self._settle, results)
        return len(rows)

    async def _deliver(self, row: OutboxRow) -> Attempt:
        async with self._slots:
            attempt = await self._attempt(self._sinks[row.sink], row)
        self.metrics.attempts.labels(row.sink, attempt.outcome.value).inc()
        return attempt

    def _settle(self, results: list[tuple[OutboxRow, Attempt]]) -> None:
        now = self._clock()
        delivered: list[tuple[int, float]] = []
        retries: list[tuple[int, int, float, str]] = []
        dead: list[tuple[int, int, float, str]] = []
        for row, attempt in results:
            sink = self._sinks[row.sink]
            if attempt.outcome in (Outcome.DELIVERED, Outcome.DUPLICATE, Outcome.SKIPPED):
                delivered.append((row.id, now))
                self.metrics.latency.observe(max(0.0, now - row.created_at))
            elif attempt.outcome is Outcome.RETRY and now - row.created_at < sink.dead_after_s:
                delay = sink.backoff.delay(row.attempts + 1, self._rng, attempt.retry_after_s)
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
        self._store.settle(delivered, retries, dead)
        self._refresh_gauges()  # on every delivery, not minutes later

    async def _attempt(self, sink: Sink, row: OutboxRow) -> Attempt:
        event = json.loads(row.body)
        try:
            ref = None
            if sink.adapter.uses_refs:
                ref = await asyncio.to_thread(self._store.remote_ref, sink.name, row.ticket)
            request = sink.adapter.request(event, ref)
        except MissingRemoteRef as exc:
            return Attempt(Outcome.DEAD, f"no_remote_ref: {exc}")
        if request is None:
            return Attempt(Outcome.SKIPPED, "nothing to send for this event type")
        body = request.body()
        headers = {
            "content-type": "application/json",
            "user-agent": USER_AGENT,
            "idempotency-key": row.event_id,
            **sink.headers,
            **request.headers,
        }
        if sink.secret is not None:
            headers.update(sign_headers(sink.secret, row.event_id, int(self._clock()), body))
        client = self._clients.get(sink.name)
        if client is None:
            raise RuntimeError("DeliveryWorker.run_once called outside run()")
        try:
            response = await client.request(
                request.method, request.url, content=body, headers=headers
            )
        except httpx.HTTPError as exc:
            return Attempt(Outcome.RETRY, f"{type(exc).__name__}: {exc}".rstrip(": "))
        status = response.status_code
        if 200 <= status < 300 or status == 409:
            ref = sink.adapter.ref_from(event, _json_or_none(response))
            if ref is not None:
                await asyncio.to_thread(self._store.set_remote_ref, sink.name, row.ticket, ref)
            return Attempt(Outcome.DELIVERED if status != 409 else Outcome.DUPLICATE, str(status))
        if status in RETRYABLE:
            retry_after = parse_retry_after(response.headers.get("retry-after"), self._clock())
            return Attempt(Outcome.RETRY, f"HTTP {status}", retry_after)
        return Attempt(Outcome.DEAD, f"rejected: HTTP {status} {response.text[:200]}")

    async def _sleep(self, stop: asyncio.Event) -> None:
        next_at = await asyncio.to_thread(self._store.next_due_at)
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
        counts = self._store.outbox_counts()
        for state in self._gauge_states - counts.keys():  # emptied since: 0, not the old count
            self.metrics.outbox.labels(state).set(0)
        self._gauge_states = set(counts)
        for state, n in counts.items():
            self.metrics.outbox.labels(state).set(n)
        self.metrics.dead.set(counts.get("dead", 0))


def _json_or_none(response: httpx.Response) -> object:
    try:
        return response.json()
    except ValueError:
        return None
