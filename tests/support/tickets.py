"""Shared pieces for the ticket tests: a small policy table, a book factory, secrets."""

from __future__ import annotations

import asyncio
import base64
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

from collector.pipeline.ticket_service import TicketService
from collector.store.tickets import TicketStore
from collector.tickets.book import TicketBook
from collector.tickets.inputs import DeskAction, DeskCommand, FaultSignal
from collector.tickets.sla_adapter import SlaEngine
from collector.tickets.terms import DeviceWarranty


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


#: The shipped policies through the real SLA engine (read once, by `load_policy`).
ENGINE = SlaEngine()


@dataclass
class Devices:
    table: dict[str, DeviceWarranty] = field(default_factory=dict)

    def warranty(self, device: str) -> DeviceWarranty:
        return self.table.get(device, DeviceWarranty(start=None))

    def site_devices(self, site: str) -> tuple[str, ...]:
        return tuple(sorted(d for d, w in self.table.items() if w.site == site))


DEVICES = {
    "r1": DeviceWarranty(start=date(2025, 1, 1), months=36),
    "old": DeviceWarranty(start=date(2020, 1, 1), months=12),
}


def make_book(devices: Devices | None = None) -> TicketBook:
    return TicketBook(policies=ENGINE, devices=devices or Devices(dict(DEVICES)), sla=ENGINE)


def fault(
    event: str,
    at: str,
    *,
    device: str | None = "r1",
    site: str | None = None,
    kind: str = "device_offline",
    policy: str = "xian-integrator",
    level: str = "3",
    onset: str | None = None,
    exempt: str | None = None,
) -> FaultSignal:
    return FaultSignal(
        event=event,
        at=utc(at),
        fault_id=f"{device or site}/{kind}",
        kind=kind,
        impact="outage",
        device=device,
        site=site,
        onset=utc(onset or at),
        policy=policy,
        level=level,
        exempt=exempt,
    )


def new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def service_for(store: TicketStore) -> TicketService:
    return TicketService(
        book_factory=lambda: make_book(Devices()),
        store=store,
        sla=ENGINE,
        sinks=("desk",),
    )


def make_events(store: TicketStore, devices: int) -> list[str]:
    """Per device: opened, acknowledged, commented, resolved. Returns every event id."""
    service = service_for(store)
    ids: list[str] = []
    for i in range(devices):
        [opened] = service.on_fault(fault("opened", "2025-10-09T08:00:00", device=f"d{i}"))
        number = opened.ticket.number
        ids.append(opened.event_id)
        for action, at in (("ack", "08:10"), ("comment", "08:20"), ("resolve", "08:30")):
            cmd = DeskCommand(number, DeskAction(action), utc(f"2025-10-09T{at}:00"), comment="x")
            ids.extend(e.event_id for e in service.on_desk(cmd).events)
    return ids


async def wait_until(check: Callable[[], bool], limit_s: float = 30.0) -> None:
    deadline = time.monotonic() + limit_s
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.02)


def kinds(events: list) -> list[str]:  # type: ignore[type-arg]
    return [e.kind.value for e in events]


def desk(book: TicketBook, number: str, action: str, at: str, **kw: object) -> list:  # type: ignore[type-arg]
    outcome = book.on_desk(DeskCommand(number, DeskAction(action), utc(at), **kw))  # type: ignore[arg-type]
    assert outcome.accepted, outcome.reason
    return list(outcome.events)
