"""Tickets in the collector service: the rules engine's faults become tickets, delivered.

``load_tickets`` checks the ``tickets`` section at start (sinks file, the inbound secret's
environment variable) and fails in one line; ``build_tickets`` wires the ticket service over
the collector's own store (tickets and outbox are its migrations 3 and 4), the delivery worker
and the inbound desk endpoint.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta

from prometheus_client import CollectorRegistry, Counter

from collector.config.collector import CollectorConfig
from collector.config.errors import ConfigError
from collector.delivery.metrics import DeliveryMetrics
from collector.delivery.signing import SigningError, secret_key
from collector.delivery.sinks import Sink, SinkConfigError, load_sinks
from collector.delivery.worker import DeliveryWorker
from collector.http.desk_inbound import DeskSink, InboundDesk
from collector.pipeline.rules_stage import RulesSetup
from collector.pipeline.ticket_runtime import TicketRuntime
from collector.pipeline.ticket_service import TicketService
from collector.store import Store
from collector.store.retry import Health
from collector.store.tickets import TicketStore
from collector.tickets.book import TicketBook
from collector.tickets.from_rules import InventoryWarranty
from collector.tickets.sla_adapter import SlaEngine


@dataclass(frozen=True, slots=True)
class TicketsSetup:
    sinks: Mapping[str, Sink]
    inbound_secret: str | None


def load_tickets(cfg: CollectorConfig, env: Mapping[str, str] | None = None) -> TicketsSetup:
    env = os.environ if env is None else env
    tickets = cfg.tickets
    sinks: dict[str, Sink] = {}
    if tickets.sinks is not None:
        try:
            sinks = load_sinks(tickets.sinks, env)
        except SinkConfigError as exc:
            raise ConfigError(str(cfg.source), "tickets.sinks", str(exc)) from None
    secret = None
    if tickets.inbound_secret_env is not None:
        secret = env.get(tickets.inbound_secret_env)
        key = "tickets.inbound_secret_env"
        if not secret:
            raise ConfigError(str(cfg.source), key, f"{tickets.inbound_secret_env!r} is not set")
        try:
            secret_key(secret)
        except SigningError as exc:
            raise ConfigError(str(cfg.source), key, str(exc)) from None
    return TicketsSetup(sinks, secret)


@dataclass
class Tickets:
    runtime: TicketRuntime
    inbound: InboundDesk | None


def build_tickets(
    cfg: CollectorConfig,
    setup: TicketsSetup,
    rules: RulesSetup,
    faults: Store,
    registry: CollectorRegistry,
    *,
    health: Health | None = None,
    serials: Callable[[str], str] | None = None,
) -> Tickets:
    """``faults``: the collector's store, whose fault events the tickets consume;
    ``serials``: a device's serial number as the device registry knows it (for tickets)."""
    store = TicketStore(cfg.store.url, engine=faults.engine)
    sla = SlaEngine(rules.policies_dir)
    devices = InventoryWarranty(rules.inventory, serials)
    followup = timedelta(seconds=cfg.tickets.default_followup_s)
    unrouted = Counter(
        "fleetdesk_tickets_unrouted",
        "Tickets no sink's match takes (marked routed: false on the ticket)",
        registry=registry,
    )
    service = TicketService(
        book_factory=lambda: TicketBook(
            policies=sla, devices=devices, sla=sla, default_followup=followup
        ),
        store=store,
        sla=sla,
        sinks={name: sink.matches for name, sink in setup.sinks.items()},
        on_unrouted=lambda _ticket: unrouted.inc(),
    )
    worker = None
    if setup.sinks and cfg.tickets.worker:
        worker = DeliveryWorker(
            store,
            setup.sinks,
            poll_s=cfg.tickets.delivery_poll_s,
            metrics=DeliveryMetrics(registry),
            health=health,
            inline_db=True,  # it runs on a loop and thread of its own (TicketRuntime._deliver)
        )
    runtime = TicketRuntime(service, faults, worker, health)
    inbound = None
    desks = {
        name: DeskSink(name, sink.kind, sink.inbound.secrets, sink.inbound.options)
        for name, sink in setup.sinks.items()
        if sink.inbound is not None
    }
    if setup.inbound_secret is not None or desks:
        inbound = InboundDesk(
            service, setup.inbound_secret, sinks=desks, on_commit=runtime.committed
        )
    return Tickets(runtime, inbound)
