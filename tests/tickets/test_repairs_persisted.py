"""Warranty extensions after repair survive a restart: the repair record is written with the
ticket (``save_repairs``), read back by ``load_live``, and a service started afresh on the
same database still extends the warranty; on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import date, timedelta

from collector.pipeline.ticket_service import TicketService
from collector.store.tickets import TicketStore
from collector.tickets.inputs import DeskAction, DeskCommand
from collector.tickets.model import CoverageReason, EventKind, RepairRecord, TicketEvent
from collector.tickets.terms import DeviceWarranty
from tests.support.tickets import ENGINE, Devices, fault, make_book, utc

# xian-integrator: 36 months from acceptance (ends 2025-03-01), extended by repair time.
DEVICES = Devices({"unit": DeviceWarranty(start=date(2022, 3, 1), months=None)})


def service(store: TicketStore) -> TicketService:
    return TicketService(
        book_factory=lambda: make_book(DEVICES), store=store, sla=ENGINE, sinks=("desk",)
    )


def opened_event(events: list[TicketEvent]) -> TicketEvent:
    [opened] = [e for e in events if e.kind is EventKind.OPENED]
    return opened


def repair(svc: TicketService, opened_at: str, resolved_at: str, kind: str) -> None:
    opened = opened_event(svc.on_fault(fault("opened", opened_at, device="unit", kind=kind)))
    command = DeskCommand(opened.ticket.number, DeskAction.RESOLVE, utc(resolved_at), repaired=True)
    svc.on_desk(command)
    svc.on_fault(fault("cleared", resolved_at, device="unit", kind=kind))


def test_save_repairs_inserts_then_updates(store: TicketStore) -> None:
    first = RepairRecord(date(2025, 1, 19), timedelta(days=9, hours=12))
    with store.transaction() as tx:
        tx.save_repairs({"unit": first, "other": RepairRecord(date(2025, 1, 2))})
    assert store.load_live()[1] == {"unit": first, "other": RepairRecord(date(2025, 1, 2))}
    second = RepairRecord(date(2025, 2, 3), timedelta(days=10, seconds=1))
    with store.transaction() as tx:
        tx.save_repairs({"unit": second})
    assert store.load_live()[1] == {"unit": second, "other": RepairRecord(date(2025, 1, 2))}


def test_a_restarted_service_still_extends_the_warranty(store: TicketStore) -> None:
    svc = service(store)
    repair(svc, "2025-01-10T08:00:00", "2025-01-19T20:00:00", "device_offline")
    assert store.load_live()[1] == {
        "unit": RepairRecord(date(2025, 1, 19), timedelta(days=9, hours=12))
    }
    repair(svc, "2025-02-01T08:00:00", "2025-02-01T20:00:00", "disk_full")
    assert store.load_live()[1] == {"unit": RepairRecord(date(2025, 2, 1), timedelta(days=10))}

    again = service(store)  # a new book, read back from the database
    assert again.book.repairs == svc.book.repairs
    # The warranty ended 2025-03-01; 10 days in repair extend it to 2025-03-11.
    inside = opened_event(
        again.on_fault(fault("opened", "2025-03-10T08:00:00", device="unit", kind="cpu_high"))
    )
    assert inside.ticket.coverage_reason is CoverageReason.EXTENDED_AFTER_REPAIR
    after = opened_event(
        again.on_fault(fault("opened", "2025-03-11T08:00:00", device="unit", kind="temp_high"))
    )
    assert after.ticket.coverage_reason is CoverageReason.WARRANTY_EXPIRED
