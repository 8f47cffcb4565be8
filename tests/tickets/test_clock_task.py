"""The ticket clock task emits an escalation when its instant comes, on a virtual clock."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
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
    # A virtual clock that starts just before the 75 % instant (11:00) and runs 1000x fast.
    origin = datetime(2025, 10, 9, 10, 59, 59, 900000, tzinfo=UTC)
    started = asyncio.get_running_loop().time()

    def now() -> datetime:
        return origin + timedelta(seconds=(asyncio.get_running_loop().time() - started) * 1000)

    got: list[TicketEvent] = []
    stop = asyncio.Event()

    def collect(events: list[TicketEvent]) -> None:
        got.extend(events)
        if any(e.kind.value == "escalated" for e in events):
            stop.set()

    await asyncio.wait_for(run_ticket_clock(service, stop, now=now, on_events=collect), 10)
    assert [(e.kind.value, e.at) for e in got] == [
        ("escalated", datetime(2025, 10, 9, 11, 0, tzinfo=UTC))
    ]
    store.close()
