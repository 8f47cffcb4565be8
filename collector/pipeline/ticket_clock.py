"""The async task that wakes the ticket book at its next escalation or follow-up end.

The only place in the ticket code that reads the wall clock; the book itself is pure.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime

from collector.pipeline.ticket_service import TicketService
from collector.store.retry import STORAGE_ERRORS, Backoff, Health, sleep_unless
from collector.tickets.model import TicketEvent

PART = "ticket-clock"


def utc_now() -> datetime:
    return datetime.now(UTC)


async def run_ticket_clock(
    service: TicketService,
    stop: asyncio.Event,
    *,
    wake: asyncio.Event | None = None,
    now: Callable[[], datetime] = utc_now,
    max_sleep_s: float = 60.0,
    on_events: Callable[[list[TicketEvent]], None] | None = None,
    health: Health | None = None,
) -> None:
    """Tick the service whenever something falls due; ``wake`` is set when inputs changed it.

    A storage error (the book is rebuilt from the database) is waited out with backoff and
    shown in ``health``; the tick is tried again, so no escalation is skipped."""
    wake = wake or asyncio.Event()
    health = health or Health()
    backoff = Backoff()
    while not stop.is_set():
        try:
            events = await asyncio.to_thread(service.tick, now())
        except STORAGE_ERRORS as exc:
            health.failed(PART, exc)
            await sleep_unless(stop, backoff.take())
            continue
        health.recovered(PART)
        backoff.reset()
        if events and on_events is not None:
            on_events(events)
        next_at = service.next_wakeup()
        delay = max_sleep_s
        if next_at is not None:
            delay = min(delay, max(0.0, (next_at - now()).total_seconds()))
        wake.clear()
        waiters = [asyncio.ensure_future(wake.wait()), asyncio.ensure_future(stop.wait())]
        try:
            await asyncio.wait(waiters, timeout=delay, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()
