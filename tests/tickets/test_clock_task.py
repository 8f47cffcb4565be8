"""The ticket clock task emits an escalation when its instant comes, on a virtual clock."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

from collector.pipeline.ticket_clock import run_ticket_clock
from collector.pipeline.ticket_service import TicketService
from collector.store.tickets import TicketStore
from collector.tickets.model import TicketEvent
from tests.support.tickets import ENGINE, Devices, fault, make_book


async def test_clock_task_ticks_when_due(tmp_path: Path) -> None:
    store = TicketStore(f"sqlite:///{tmp_path / 't.db'}")
    store.migrate()
    service = TicketService(
        book_factory=lambda: make_book(Devices()),
        store=store,
        sla=ENGINE,
        sinks=(),
    )
    service.on_fault(fault("opened", "2025-10-09T08:00:00"))
    # A virtual clock the test moves: just before the 75 % instant (11:00) until the task has
    # ticked and computed its wait, then exactly 11:00. The task's own timer (0.1 s) wakes it;
    # however slow the machine, virtual time is never past 11:00, so the events are exact.
    current = [datetime(2025, 10, 9, 10, 59, 59, 900000, tzinfo=UTC)]
    reads = [0]
    waiting = asyncio.Event()  # set once the task has ticked and computed its wait

    def now() -> datetime:
        reads[0] += 1
        if reads[0] >= 2:
            waiting.set()
        return current[0]

    got: list[TicketEvent] = []
    stop = asyncio.Event()

    def collect(events: list[TicketEvent]) -> None:
        got.extend(events)
        if any(e.kind.value == "escalated" for e in events):
            stop.set()

    task = asyncio.create_task(run_ticket_clock(service, stop, now=now, on_events=collect))
    await asyncio.wait_for(waiting.wait(), 60)
    assert got == []
    current[0] = datetime(2025, 10, 9, 11, 0, tzinfo=UTC)
    await asyncio.wait_for(task, 60)
    assert [(e.kind.value, e.at) for e in got] == [
        ("escalated", datetime(2025, 10, 9, 11, 0, tzinfo=UTC))
    ]
    store.close()
