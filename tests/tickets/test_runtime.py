"""The ticket runtime as the collector runs it: fault events in, signed webhooks out."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

from standardwebhooks.webhooks import Webhook

from collector.delivery.adapters.webhook import WebhookAdapter
from collector.delivery.backoff import Backoff
from collector.delivery.sinks import Sink
from collector.delivery.worker import DeliveryWorker
from collector.pipeline import fault_handoff
from collector.pipeline.ticket_runtime import TicketRuntime
from collector.pipeline.ticket_service import TicketService
from collector.rules.faults import EventType, Fault, FaultEvent, Impact, Scope
from collector.store import Store
from collector.store.tickets import TicketStore
from tests.support.receiver import Receiver
from tests.support.services import free_port
from tests.support.tickets import ENGINE, Devices, make_book, new_secret, wait_until


def fault_event(kind: EventType, device: str, at: datetime) -> FaultEvent:
    fault = Fault(
        kind="device_offline", impact=Impact.OUTAGE, scope=Scope.DEVICE, subject=device,
        onset=at, policy="xian-integrator", level="3",
    )  # fmt: skip
    return FaultEvent(kind, at, fault)


def stored(state: Store, event: FaultEvent) -> None:
    """As the intake commit stores a fault event: with its ticket input."""
    f = event.fault
    record = (event.at.timestamp(), f.subject, f.kind, event.to_json(), fault_handoff.encode(event))
    state.commit_intake([], [record], None)


async def test_stored_fault_events_become_signed_webhooks(tmp_path: Path) -> None:
    state = Store.open(f"sqlite:///{tmp_path / 't.db'}")
    store = TicketStore(f"sqlite:///{tmp_path / 't.db'}", engine=state.engine)
    service = TicketService(
        book_factory=lambda: make_book(Devices()), store=store, sla=ENGINE, sinks=("desk",)
    )
    receiver = Receiver(free_port())
    receiver.start()
    secret = new_secret()
    sink = Sink("desk", WebhookAdapter(receiver.url), secret=secret, backoff=Backoff(0.05, 0.1))
    # A long poll: only the runtime's wake-up after each commit can make this test pass fast.
    runtime = TicketRuntime(service, state, DeliveryWorker(store, {"desk": sink}, poll_s=30))
    stop = asyncio.Event()
    task = asyncio.create_task(runtime.run(stop))
    now = datetime.now(UTC)
    try:
        await asyncio.sleep(0.1)
        stored(state, fault_event(EventType.OPENED, "gw1", now))
        runtime.notify()
        await wait_until(lambda: len(receiver.accepted()) == 1, limit_s=10)
        stored(state, fault_event(EventType.CLEARED, "gw1", datetime.now(UTC)))
        runtime.notify()
        await wait_until(lambda: len(receiver.accepted()) == 2, limit_s=10)
    finally:
        stop.set()
        await task
        receiver.stop()
    bodies = [Webhook(secret).verify(r.body, r.headers) for r in receiver.accepted()]
    assert [(b["type"], b["ticket"]["device"]) for b in bodies] == [
        ("ticket_opened", "gw1"),
        ("resolved", "gw1"),
    ]
    assert runtime.opened == 1
    assert state.ticket_cursor() == 2  # both stored events applied, the cursor committed
    state.close()
