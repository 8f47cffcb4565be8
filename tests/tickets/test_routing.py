"""Routing per customer: two customers, two desks on loopback, each receives only its own;
a ticket no sink takes is marked and counted, never silently dropped."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import date
from pathlib import Path

import jsonschema
from prometheus_client import CollectorRegistry, Counter

from collector.config.errors import ConfigError
from collector.config.yamlfile import parse_yaml
from collector.delivery.backoff import Backoff
from collector.delivery.sinks import parse_sinks
from collector.delivery.worker import DeliveryWorker
from collector.pipeline.ticket_service import TicketService
from collector.store.tickets import TicketStore
from collector.tickets.model import EventKind
from collector.tickets.terms import DeviceWarranty
from tests.support.outbox import SCHEMA
from tests.support.receiver import Receiver
from tests.support.services import free_port
from tests.support.tickets import ENGINE, Devices, fault, make_book, wait_until

DEVICES = {
    "a1": DeviceWarranty(start=date(2025, 1, 1), months=36, customer="acme", tenant="acme"),
    "b1": DeviceWarranty(start=date(2025, 1, 1), months=36, customer="bolt", tenant="bolt"),
    "c1": DeviceWarranty(start=date(2025, 1, 1), months=36, customer="cargo", tenant="cargo"),
}


def sinks_file(acme: str, bolt: str) -> str:
    return f"""\
sinks:
  - name: acme-desk
    type: webhook
    url: {acme}
    match:
      customers: [acme]
  - name: bolt-desk
    type: webhook
    url: {bolt}
    match:
      customers: [bolt]
      policies: [xian-integrator]
"""


async def test_each_desk_receives_only_its_customers_tickets(tmp_path: Path) -> None:
    acme, bolt = Receiver(free_port()), Receiver(free_port())
    sinks = parse_sinks(parse_yaml(sinks_file(acme.url, bolt.url), "sinks.yaml"), {})
    sinks = {name: replace(sink, backoff=Backoff(0.05, 0.2)) for name, sink in sinks.items()}
    registry = CollectorRegistry()
    unrouted = Counter("fleetdesk_tickets_unrouted", "no sink", registry=registry)
    store = TicketStore(f"sqlite:///{tmp_path / 't.db'}")
    store.migrate()
    service = TicketService(
        book_factory=lambda: make_book(Devices(dict(DEVICES))),
        store=store,
        sla=ENGINE,
        sinks={name: sink.matches for name, sink in sinks.items()},
        on_unrouted=lambda _t: unrouted.inc(),
    )
    events = []
    for device in ("a1", "b1", "c1"):
        events += service.on_fault(fault("opened", "2025-10-09T08:00:00", device=device))
    numbers = {e.ticket.subject.customer: e.ticket.number for e in events}
    # cargo has no desk: its ticket says so (stored), and the counter counts it
    marked = [e for e in events if e.kind is EventKind.UNROUTED]
    assert [e.ticket.number for e in marked] == [numbers["cargo"]]
    stored = store.find(numbers["cargo"])
    assert stored is not None and stored.routed is False
    assert registry.get_sample_value("fleetdesk_tickets_unrouted_total") == 1.0
    worker = DeliveryWorker(store, sinks, poll_s=0.05)
    stop = asyncio.Event()
    acme.start()
    bolt.start()
    task = asyncio.create_task(worker.run(stop))
    try:
        await wait_until(lambda: store.outbox_counts()["pending"] == 0)
    finally:
        stop.set()
        await task
        acme.stop()
        bolt.stop()
    for receiver, customer in ((acme, "acme"), (bolt, "bolt")):
        bodies = [r.json() for r in receiver.accepted()]
        assert {b["ticket"]["number"] for b in bodies} == {numbers[customer]}
        assert {b["ticket"]["customer"] for b in bodies} == {customer}
        for body in bodies:
            jsonschema.validate(body, SCHEMA)


def test_match_errors_name_the_line() -> None:
    text = "sinks:\n  - name: a\n    type: webhook\n    url: http://127.0.0.1:1/x\n    match:\n"
    for body, message in (
        ("      customers: []\n", "sinks.yaml:6: sinks[0].match.customers: an empty list"),
        ("      sites: [x]\n", "sinks.yaml:6: sinks[0].match.sites: unknown key"),
    ):
        try:
            parse_sinks(parse_yaml(text + body, "sinks.yaml"), {})
        except ConfigError as exc:
            assert str(exc).startswith(message), str(exc)
        else:
            raise AssertionError("no error")
