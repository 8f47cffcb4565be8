"""Exactly one desk ticket per fault, against fake desks that misbehave like the real ones.

Each desk is a small fake on loopback (tests/support/fake_desks.py: the real SaaS cannot run
here) whose first create makes the ticket and then times out, answers 409 without an id, or
answers ``{"result": []}``. The worker must find the ticket it made instead of creating a
second one, put every later event on it, and keep running.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from collector.delivery.adapters.jira import JiraAdapter
from collector.delivery.adapters.servicenow import ServiceNowAdapter
from collector.delivery.adapters.zammad import ZammadAdapter
from collector.delivery.backoff import Backoff
from collector.delivery.request import Adapter, Request
from collector.delivery.sinks import Sink
from collector.delivery.worker import DeliveryWorker
from collector.store import ticket_tables as schema
from collector.store.tickets import TicketStore
from tests.support.fake_desks import FakeDesk
from tests.support.outbox import outbox_rows
from tests.support.tickets import make_events, wait_until


def adapter_for(desk: FakeDesk) -> Adapter:
    if desk.kind == "jira":
        return JiraAdapter(desk.url, "1", "10", transitions={"resolved": "31"})
    if desk.kind == "zammad":
        return ZammadAdapter(desk.url, "Field service", "noc@example.com")
    return ServiceNowAdapter(desk.url, "Field Service")


@pytest.fixture
def store(tmp_path: Path) -> Iterator[TicketStore]:
    ticket_store = TicketStore(f"sqlite:///{tmp_path / 't.db'}")
    ticket_store.migrate()
    yield ticket_store
    ticket_store.close()


CASES = [
    ("jira", "timeout"),
    ("jira", "409"),
    ("zammad", "timeout"),
    ("zammad", "409"),
    ("servicenow", "timeout"),
    ("servicenow", "409"),
    ("servicenow", "empty"),
]


@pytest.mark.parametrize(("kind", "fault"), CASES)
async def test_one_desk_ticket_per_fault_and_later_events_land_on_it(
    store: TicketStore, kind: str, fault: str
) -> None:
    make_events(store, devices=3)  # per device: opened, acknowledged, commented, resolved
    desk = FakeDesk(kind, fault, slow_s=0.6)
    desk.start()
    sink = Sink("desk", adapter_for(desk), timeout_s=0.2, backoff=Backoff(0.02, 0.1))
    worker = DeliveryWorker(store, {"desk": sink}, poll_s=0.02)
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    try:
        await wait_until(lambda: store.outbox_counts()["pending"] == 0)
        assert not task.done(), "the worker stopped"
    finally:
        stop.set()
        await task
        desk.stop()
    rows = outbox_rows(store)
    assert store.outbox_counts()["dead"] == 0, [r.last_error for r in rows if r.state == "dead"]
    numbers = sorted({r.ticket for r in rows})
    assert len(desk.tickets) == len(numbers) == 3
    for number in numbers:
        [ticket] = desk.by_tag(number)  # exactly one desk ticket for the fault
        assert store.remote_ref("desk", number) == ticket.ref
        assert len(ticket.updates) == 3  # acknowledged, commented, resolved: all on it
    if kind == "jira":  # public vs internal chosen per event type; resolved is a transition
        first = desk.by_tag(numbers[0])[0]
        assert [(path, body.get("public")) for path, body in first.updates] == [
            ("comment", True),
            ("comment", False),
            ("transition", None),
        ]


class _Exploding:
    """An adapter whose mapping raises for one ticket (a bug, or a desk answer it never saw)."""

    uses_refs = False

    def __init__(self, url: str, bad: str) -> None:
        self.url, self.bad = url, bad

    def request(self, event: Any, ref: str | None) -> Request:
        if event["ticket"]["number"] == self.bad:
            raise AttributeError("'list' object has no attribute 'get'")
        return Request("POST", self.url, event)

    def ref_from(self, event: Any, response: Any) -> str | None:
        return None

    def lookup(self, event: Any) -> Request | None:
        return None

    def ref_from_lookup(self, response: Any) -> str | None:
        return None


async def test_an_adapter_error_is_a_named_failure_and_the_rest_keep_flowing(
    store: TicketStore,
) -> None:
    from tests.support.receiver import Receiver
    from tests.support.services import free_port

    make_events(store, devices=3)
    receiver = Receiver(free_port())
    receiver.start()
    bad = outbox_rows(store)[0].ticket
    sink = Sink(
        "desk", _Exploding(receiver.url, bad), backoff=Backoff(0.02, 0.05), dead_after_s=0.5
    )
    worker = DeliveryWorker(store, {"desk": sink}, poll_s=0.02)
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    try:
        await wait_until(lambda: store.outbox_counts()["dead"] == 1)
        await wait_until(lambda: len(receiver.accepted()) == 8)  # the two other tickets
        assert not task.done()
    finally:
        stop.set()
        await task
        receiver.stop()
    with store.engine.connect() as conn:
        dead = conn.execute(sa.select(schema.outbox).where(schema.outbox.c.state == "dead")).one()
    assert dead.ticket == bad
    assert "adapter_error: AttributeError" in dead.last_error


async def test_a_ticket_routed_here_after_it_opened_gets_one_desk_ticket(
    store: TicketStore,
) -> None:
    """Routing may bring a ticket to a desk mid-life (its level changed): no opening here."""
    make_events(store, devices=1)
    with store.engine.begin() as conn:
        conn.execute(sa.delete(schema.outbox).where(schema.outbox.c.seq == 1))
    desk = FakeDesk("servicenow")
    desk.start()
    sink = Sink("desk", adapter_for(desk), backoff=Backoff(0.02, 0.1))
    stop = asyncio.Event()
    task = asyncio.create_task(DeliveryWorker(store, {"desk": sink}, poll_s=0.02).run(stop))
    try:
        await wait_until(lambda: store.outbox_counts()["pending"] == 0)
    finally:
        stop.set()
        await task
        desk.stop()
    assert store.outbox_counts()["dead"] == 0
    [ticket] = desk.tickets.values()
    assert len(ticket.updates) == 2  # the first event created it; commented, resolved on it
