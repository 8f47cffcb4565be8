"""The ticket store and outbox on SQLite and PostgreSQL: one transaction per change."""

from __future__ import annotations

import threading
from datetime import date

import pytest
import sqlalchemy as sa

from collector.pipeline.ticket_service import TicketService
from collector.store import schema as migrations
from collector.store.tickets import TicketStore
from collector.tickets.inputs import DeskAction, DeskCommand
from tests.support.tickets import ENGINE, Devices, fault, make_book, utc


def make_service(store: TicketStore, sinks: tuple[str, ...] = ("desk",)) -> TicketService:
    return TicketService(
        book_factory=lambda: make_book(Devices()),
        store=store,
        sla=ENGINE,
        sinks=sinks,
    )


def test_migrate_is_idempotent(store: TicketStore) -> None:
    # The fixture migrated once; again changes nothing: the same version, each step recorded
    # once, and the tickets written before are still there.
    service = make_service(store)
    [opened] = service.on_fault(fault("opened", "2025-10-09T08:00:00"))
    assert store.migrate() == len(migrations.MIGRATIONS)
    assert store.migrate() == len(migrations.MIGRATIONS)
    with store.engine.connect() as conn:
        versions = conn.execute(sa.select(migrations.schema_version.c.version)).scalars()
        assert sorted(versions) == list(range(1, len(migrations.MIGRATIONS) + 1))
    assert store.find(opened.ticket.number) is not None


def test_numbers_unique_per_day_across_stores(store: TicketStore, db_url: str) -> None:
    other = TicketStore(db_url)  # a second collector sharing the database
    day = date(2025, 10, 9)
    got: list[int] = []
    lock = threading.Lock()

    def allocate(s: TicketStore) -> None:
        for _ in range(20):
            with s.transaction() as tx:
                n = tx.next_number(day)
            with lock:
                got.append(n)

    threads = [threading.Thread(target=allocate, args=(s,)) for s in (store, other, store)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    other.close()
    assert sorted(got) == list(range(1, 61))
    with store.transaction() as tx:
        assert tx.next_number(date(2025, 10, 10)) == 1


def test_a_burst_takes_its_numbers_in_one_statement_and_gives_back_what_it_did_not_use(
    store: TicketStore,
) -> None:
    """Eight openings, three of them repeats of an open fault (no new ticket), on two days:
    one counter statement per day and one give-back; the next number follows without a gap."""
    service = make_service(store)
    statements: list[str] = []

    def seen(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        statements.append(statement)

    signals = [fault("opened", f"2025-10-09T08:0{i}:00", device=f"d{i}") for i in range(4)]
    signals += [fault("opened", "2025-10-09T08:05:00", device="d0")] * 3  # already open
    signals += [fault("opened", "2025-10-10T08:00:00", device="d9")]
    sa.event.listen(store.engine, "before_cursor_execute", seen)
    events = service.on_faults(signals)
    sa.event.remove(store.engine, "before_cursor_execute", seen)
    numbers = sorted(e.ticket.number for e in events if e.kind.value == "ticket_opened")
    assert numbers == [
        "FD-20251009-0001", "FD-20251009-0002", "FD-20251009-0003", "FD-20251009-0004",
        "FD-20251010-0001",
    ]  # fmt: skip
    counter = [s for s in statements if "ticket_numbers" in s]
    assert len(counter) == 3, counter  # 2025-10-09 (7 reserved), 2025-10-10, one give-back
    assert sum("INSERT INTO tickets" in s for s in statements) == 1  # one multi-row insert
    assert sum("INSERT INTO outbox" in s for s in statements) == 1
    more = service.on_fault(fault("opened", "2025-10-10T09:00:00", device="d5"))
    opened = [e.ticket.number for e in more if e.kind.value == "ticket_opened"]
    assert opened == ["FD-20251010-0002"]
    with store.engine.connect() as conn:
        counters = dict(conn.execute(sa.text("SELECT day, last FROM ticket_numbers")).all())
    assert counters == {"20251009": 4, "20251010": 2}, "the unused reservations were given back"
    assert store.outbox_counts()["pending"] == len(events) + len(more)  # one row each, one sink


def test_reserved_numbers_run_in_order_more_are_taken_when_they_run_out_and_one_is_given_back(
    store: TicketStore,
) -> None:
    day = date(2025, 10, 9)
    with store.transaction() as tx:
        tx.reserve_numbers({day: 3})
        assert [tx.next_number(day) for _ in range(5)] == [1, 2, 3, 4, 5]  # 3 reserved, 2 more
        tx.release_numbers()
    with store.transaction() as tx:
        tx.reserve_numbers({day: 2})
        assert tx.next_number(day) == 6
        tx.release_numbers()  # 7 was not used: given back
    with store.transaction() as tx:
        assert tx.next_number(day) == 7


def test_ticket_and_outbox_committed_together(store: TicketStore) -> None:
    service = make_service(store, sinks=("desk", "pager"))
    [opened] = service.on_fault(fault("opened", "2025-10-09T08:00:00"))
    assert store.find(opened.ticket.number) == opened.ticket
    assert store.outbox_counts()["pending"] == 2
    rows = store.due(now=1e12)
    assert {(r.sink, r.event_id) for r in rows} == {
        ("desk", f"{opened.ticket.number}:1"),
        ("pager", f"{opened.ticket.number}:1"),
    }


def test_failed_transaction_leaves_nothing_and_book_reloads(store: TicketStore) -> None:
    service = make_service(store)
    [opened] = service.on_fault(fault("opened", "2025-10-09T08:00:00"))
    with pytest.raises(RuntimeError), store.transaction() as tx:
        service.on_desk(
            DeskCommand(opened.ticket.number, DeskAction.ACK, utc("2025-10-09T08:05:00")), tx
        )
        raise RuntimeError("crash before commit")
    stored = store.find(opened.ticket.number)
    assert stored is not None and stored.acknowledged_at is None
    assert store.outbox_counts()["pending"] == 1


def test_restart_reloads_live_tickets_and_goes_on(store: TicketStore, db_url: str) -> None:
    service = make_service(store)
    service.on_fault(fault("opened", "2025-10-09T08:00:00"))
    service.tick(utc("2025-10-09T11:00:00"))  # 75 % of the 4 h response
    restarted = make_service(TicketStore(db_url))
    [breach] = restarted.tick(utc("2025-10-09T13:00:00"))
    assert breach.kind.value == "breached" and breach.at == utc("2025-10-09T12:00:00")


def test_one_live_ticket_per_key_enforced_by_database(store: TicketStore) -> None:
    first = make_service(store)
    second = make_service(store)  # another collector that has not seen the first's ticket
    first.on_fault(fault("opened", "2025-10-09T08:00:00"))
    with pytest.raises(sa.exc.IntegrityError):
        second.on_fault(fault("opened", "2025-10-09T08:01:00"))


def test_outbox_orders_per_ticket(store: TicketStore) -> None:
    service = make_service(store)
    [a] = service.on_fault(fault("opened", "2025-10-09T08:00:00"))
    service.on_fault(fault("opened", "2025-10-09T08:00:00", device="r2"))
    service.on_desk(DeskCommand(a.ticket.number, DeskAction.ACK, utc("2025-10-09T08:01:00")))
    due = store.due(now=1e12)
    # Only the oldest pending event of each ticket is due; the ack waits for the opening.
    assert [(r.ticket, r.seq) for r in due] == [(a.ticket.number, 1), ("FD-20251009-0002", 1)]
    store.mark_delivered(due[0].id, at=1.0)
    assert [(r.ticket, r.seq) for r in store.due(now=1e12)] == [
        ("FD-20251009-0002", 1),
        (a.ticket.number, 2),
    ]
