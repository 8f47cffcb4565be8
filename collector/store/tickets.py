"""Tickets and the delivery outbox over SQLAlchemy Core (SQLite by default, PostgreSQL).

SQLAlchemy Core rather than asyncpg: one data-access layer for both databases, the same
library as the collector's state, and SQLite needs no server. Every ticket change and its
outbox rows are written in one transaction (``TicketStore.transaction``), so nothing is
delivered that was not committed and nothing committed is forgotten after a crash.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, timedelta
from functools import lru_cache
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from collector.store import database, outbox
from collector.store import schema as state_schema
from collector.store import ticket_tables as schema
from collector.store.database import StoreError
from collector.tickets import codec
from collector.tickets.model import LIVE_STATES, EventKind, RepairRecord, Ticket, TicketEvent

# A desk retries for minutes to hours; a week of remembered answers covers every retry policy
# we know of, and signed requests older than the timestamp tolerance are refused anyway.
INBOUND_KEEP_S = 7 * 24 * 3600.0
WEBHOOK_ID_MAX = 255  # the inbound_seen column

# The one database error type (kept under its old name for callers).
TicketStoreError = StoreError


@dataclass(frozen=True, slots=True)
class OutboxRow:
    id: int
    sink: str
    event_id: str
    ticket: str
    seq: int
    body: str
    created_at: float
    attempts: int
    next_attempt_at: float


# Statements built once: building SQLAlchemy constructs per call costs more than running them.
_INSERT_TICKET = sa.insert(schema.tickets)
_INSERT_OUTBOX = sa.insert(schema.outbox)
_UPDATE_TICKET = (
    sa.update(schema.tickets)
    .where(schema.tickets.c.number == sa.bindparam("b_number"))
    .values({c: sa.bindparam(c) for c in ("key", "state", "live", "updated_at", "body")})
)


_MARK_DELIVERED = outbox.MARK_DELIVERED
_update_row = outbox.update_row


@lru_cache(maxsize=4)
def _take_numbers_stmt(dialect: str) -> sa.Executable:
    """The day's counter moved on by ``n``; returns the last number taken."""
    table = schema.ticket_numbers
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = insert(table).values(day=sa.bindparam("day"), last=sa.bindparam("n"))
    return stmt.on_conflict_do_update(
        index_elements=["day"], set_={"last": table.c.last + stmt.excluded.last}
    ).returning(table.c.last)


_GIVE_BACK = (
    sa.update(schema.ticket_numbers)
    .where(schema.ticket_numbers.c.day == sa.bindparam("b_day"))
    .values(last=sa.bindparam("last"))
)


class TicketTx:
    """One open transaction: allocate numbers, save tickets and their outbox rows."""

    def __init__(self, conn: sa.Connection) -> None:
        self.conn = conn
        self._wanted: dict[date, int] = {}
        self._blocks: dict[date, list[int]] = {}  # day -> [next number, last number taken]

    def set_ticket_cursor(self, fault_event_id: int) -> None:
        """The fault events up to this id were applied (committed with the tickets they made)."""
        table = state_schema.service_state
        values = {"body": json.dumps({"id": fault_event_id}), "saved_at": time.time()}
        updated = self.conn.execute(
            table.update().where(table.c.name == state_schema.TICKET_CURSOR).values(values)
        )
        if updated.rowcount == 0:  # one statement, not two, on every ticket transaction
            self.conn.execute(table.insert().values(name=state_schema.TICKET_CURSOR, **values))

    def reserve_numbers(self, wanted: Mapping[date, int]) -> None:
        """This transaction will open about this many tickets a day: the first number of a day
        takes the whole block in one statement (not one per ticket); see ``release_numbers``."""
        self._wanted = {day: n for day, n in wanted.items() if n > 0}

    def next_number(self, day: date) -> int:
        block = self._blocks.get(day)
        if block is None or block[0] > block[1]:
            n = self._wanted.pop(day, 1)
            stmt = _take_numbers_stmt(self.conn.dialect.name)
            last = int(self.conn.execute(stmt, {"day": f"{day:%Y%m%d}", "n": n}).scalar_one())
            block = self._blocks[day] = [last - n + 1, last]
        number = block[0]
        block[0] += 1
        return number

    def release_numbers(self) -> None:
        """Give back the reserved numbers no ticket took, so numbers stay without gaps. Safe:
        the counter's row is locked by this transaction since it took them (PostgreSQL's row
        lock, SQLite's one writer), so nobody has taken a number after them."""
        for day, (following, last) in self._blocks.items():
            if following <= last:
                self.conn.execute(_GIVE_BACK, {"b_day": f"{day:%Y%m%d}", "last": following - 1})
        self._blocks.clear()
        self._wanted.clear()

    def save(
        self,
        events: Sequence[TicketEvent],
        bodies: Mapping[str, str],
        sinks_for: Callable[[Ticket], Sequence[str]],
    ) -> None:
        """Upsert the tickets the events leave behind and queue each event for the sinks its
        ticket goes to (``sinks_for``).

        New tickets are one multi-row INSERT, the outbox rows another, in event order: each
        statement is a round trip, and in a busy collector each costs far more than its work."""
        now = time.time()
        latest: dict[str, Ticket] = {}
        created: set[str] = set()
        for event in events:
            latest[event.ticket.number] = event.ticket
            if event.kind is EventKind.OPENED:
                created.add(event.ticket.number)
        new = [self._values(t, now) for t in latest.values() if t.number in created]
        if new:
            self.conn.execute(_INSERT_TICKET, new)
        for ticket in latest.values():
            if ticket.number not in created:
                self._update(ticket, now)
        rows = [
            {
                "sink": sink,
                "event_id": event.event_id,
                "ticket": event.ticket.number,
                "seq": event.seq,
                "body": bodies[event.event_id],
                "created_at": now,
                "state": "pending",
                "attempts": 0,
                "next_attempt_at": now,
            }
            for event in events
            for sink in sinks_for(event.ticket)
        ]
        if rows:
            self.conn.execute(_INSERT_OUTBOX, rows)

    def save_repairs(self, repairs: Mapping[str, RepairRecord]) -> None:
        table = schema.device_repairs
        for device, record in repairs.items():
            values = {
                "device": device,
                "repaired_on": record.last_repair.isoformat(),
                "repair_seconds": record.repair_time.total_seconds(),
            }
            updated = self.conn.execute(
                sa.update(table).where(table.c.device == device).values(values)
            )
            if updated.rowcount == 0:
                self.conn.execute(sa.insert(table).values(values))

    def inbound_response(self, webhook_id: str) -> tuple[int, str] | None:
        table = schema.inbound_seen
        row = self.conn.execute(
            sa.select(table.c.status, table.c.response).where(table.c.webhook_id == webhook_id)
        ).first()
        return (int(row.status), str(row.response)) if row else None

    def remember_inbound(self, webhook_id: str, status: int, response: str, now: float) -> None:
        """Keep the answer for a desk's retries; answers older than ``INBOUND_KEEP_S`` go."""
        table = schema.inbound_seen
        self.conn.execute(sa.delete(table).where(table.c.received_at < now - INBOUND_KEEP_S))
        self.conn.execute(
            sa.insert(table).values(
                webhook_id=webhook_id, received_at=now, status=status, response=response
            )
        )

    def routed(self, number: str, sink: str) -> bool:
        """Whether the ticket's events go to ``sink`` (a desk may act only on those)."""
        o = schema.outbox
        found = self.conn.execute(
            sa.select(o.c.id).where(o.c.sink == sink, o.c.ticket == number).limit(1)
        ).first()
        return found is not None

    def ticket_for_ref(self, sink: str, ref: str) -> str | None:
        r = schema.remote_refs
        value = self.conn.execute(
            sa.select(r.c.ticket).where(r.c.sink == sink, r.c.ref == ref).limit(1)
        ).scalar_one_or_none()
        return str(value) if value is not None else None

    def find(self, number: str) -> Ticket | None:
        body = self.conn.execute(
            sa.select(schema.tickets.c.body).where(schema.tickets.c.number == number)
        ).scalar_one_or_none()
        return codec.ticket_from_dict(json.loads(body)) if body is not None else None

    @staticmethod
    def _values(ticket: Ticket, now: float) -> dict[str, Any]:
        return {
            "number": ticket.number,
            "key": ticket.key,
            "state": ticket.state.value,
            "live": ticket.state in LIVE_STATES,
            "opened_at": ticket.opened_at.timestamp(),
            "updated_at": now,
            "body": json.dumps(codec.ticket_to_dict(ticket)),
        }

    def _update(self, ticket: Ticket, now: float) -> None:
        values = self._values(ticket, now)
        updated = self.conn.execute(_UPDATE_TICKET, {**values, "b_number": ticket.number})
        if updated.rowcount == 0:
            self.conn.execute(_INSERT_TICKET, values)


class TicketStore:
    """Tickets and outbox; ``engine``: share the collector store's connection pool."""

    def __init__(self, url: str, *, engine: sa.Engine | None = None) -> None:
        self.url = url
        self.engine = engine if engine is not None else database.create_engine(url)

    def close(self) -> None:
        self.engine.dispose()

    def migrate(self) -> int:
        """Bring the whole collector schema (tickets included) up to date; returns its version."""
        return database.migrate(self.engine)

    @contextmanager
    def transaction(self) -> Iterator[TicketTx]:
        with self.engine.begin() as conn:
            yield TicketTx(conn)

    # -- tickets -----------------------------------------------------------------------------
    def load_live(self) -> tuple[list[Ticket], dict[str, RepairRecord]]:
        with self.engine.connect() as conn:
            bodies = conn.execute(
                sa.select(schema.tickets.c.body).where(schema.tickets.c.live)
            ).scalars()
            live = [codec.ticket_from_dict(json.loads(b)) for b in bodies]
            repairs = {
                row.device: RepairRecord(
                    date.fromisoformat(row.repaired_on), timedelta(seconds=row.repair_seconds)
                )
                for row in conn.execute(sa.select(schema.device_repairs))
            }
        return live, repairs

    def find(self, number: str) -> Ticket | None:
        with self.transaction() as tx:
            return tx.find(number)

    def tickets(self, *, live_only: bool = True, limit: int = 1000) -> list[Ticket]:
        """Tickets, newest first."""
        t = schema.tickets
        stmt = sa.select(t.c.body).order_by(t.c.opened_at.desc(), t.c.number.desc()).limit(limit)
        if live_only:
            stmt = stmt.where(t.c.live)
        with self.engine.connect() as conn:
            return [codec.ticket_from_dict(json.loads(b)) for b in conn.execute(stmt).scalars()]

    def count_tickets(self) -> int:
        with self.engine.connect() as conn:
            count = sa.select(sa.func.count()).select_from(schema.tickets)
            return int(conn.execute(count).scalar_one())

    # -- outbox ------------------------------------------------------------------------------
    def due(self, now: float, limit: int = 100) -> list[OutboxRow]:
        """Pending rows due by ``now``, only the oldest undelivered row of each (sink, ticket)."""
        with self.engine.connect() as conn:
            return [_row(r) for r in conn.execute(outbox.due_stmt(now, limit))]

    def claim(
        self, now: float, limit: int, sinks: Sequence[str] | None = None
    ) -> outbox.Claim[OutboxRow]:
        """The rows due now (of ``sinks``), held for this worker until ``Claim.settle``."""
        return outbox.Claim.take(self.engine, now, limit, _row, sinks)

    def next_due_at(self, sinks: Sequence[str] | None = None) -> float | None:
        """When the next row a worker can send (of ``sinks``) falls due; None: none pending."""
        with self.engine.connect() as conn:
            value = conn.execute(outbox.next_due_stmt(sinks)).scalar()
        return float(value) if value is not None else None

    def settle(
        self,
        delivered: Sequence[tuple[int, float]] = (),
        retries: Sequence[tuple[int, int, float, str]] = (),
        dead: Sequence[tuple[int, int, float, str]] = (),
        refs: Sequence[tuple[str, str, str]] = (),
    ) -> None:
        """Record a pass of delivery attempts in one transaction (``outbox.settle``)."""
        with self.engine.begin() as conn:
            outbox.settle(conn, delivered, retries, dead, refs)

    def mark_delivered(self, row_id: int, at: float) -> None:
        with self.engine.begin() as conn:
            conn.execute(_MARK_DELIVERED, {"row_id": row_id, "done_at": at})

    def mark_retry(self, row_id: int, attempts: int, next_at: float, error: str) -> None:
        self._update(row_id, attempts=attempts, next_attempt_at=next_at, last_error=error)

    def mark_dead(self, row_id: int, attempts: int, at: float, error: str) -> None:
        self._update(row_id, state="dead", attempts=attempts, done_at=at, last_error=error)

    def outbox_counts(self) -> dict[str, int]:
        o = schema.outbox
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(o.c.state, sa.func.count()).group_by(o.c.state))
            counts = {"pending": 0, "delivered": 0, "dead": 0}
            counts.update({str(state): int(n) for state, n in rows})
        return counts

    def dead_rows(self, limit: int = 1000) -> list[dict[str, Any]]:
        o = schema.outbox
        stmt = (
            sa.select(o.c.id, o.c.sink, o.c.event_id, o.c.attempts, o.c.done_at, o.c.last_error)
            .where(o.c.state == "dead")
            .order_by(o.c.id)
            .limit(limit)
        )
        with self.engine.connect() as conn:
            return [dict(row._mapping) for row in conn.execute(stmt)]

    def requeue_dead(self, now: float, sink: str | None = None) -> int:
        """Send dead-lettered events again (e.g. after the desk was fixed); returns how many.

        Their dead-letter clock starts again from ``now``. A dead row holds back the later rows
        of its (sink, ticket), so a requeued event is still sent before them.
        """
        o = schema.outbox
        stmt = sa.update(o).where(o.c.state == "dead")
        if sink is not None:
            stmt = stmt.where(o.c.sink == sink)
        values = {"state": "pending", "attempts": 0, "next_attempt_at": now, "created_at": now,
                  "done_at": None}  # fmt: skip
        with self.engine.begin() as conn:
            return int(conn.execute(stmt.values(values)).rowcount)

    def drop_dead(self, now: float, sink: str | None = None) -> int:
        """Give up on dead-lettered events (state ``dropped``): the later events of their
        tickets, held back behind them, are sent. Returns how many."""
        o = schema.outbox
        stmt = sa.update(o).where(o.c.state == "dead")
        if sink is not None:
            stmt = stmt.where(o.c.sink == sink)
        with self.engine.begin() as conn:
            return int(conn.execute(stmt.values(state="dropped", done_at=now)).rowcount)

    def remote_ref(self, sink: str, ticket: str) -> str | None:
        r = schema.remote_refs
        with self.engine.connect() as conn:
            value = conn.execute(
                sa.select(r.c.ref).where(r.c.sink == sink, r.c.ticket == ticket)
            ).scalar_one_or_none()
        return str(value) if value is not None else None

    def set_remote_ref(self, sink: str, ticket: str, ref: str) -> None:
        with self.engine.begin() as conn:
            outbox.set_ref(conn, sink, ticket, ref)

    def _update(self, row_id: int, **values: Any) -> None:
        with self.engine.begin() as conn:
            conn.execute(_update_row(row_id, values))


def _row(r: sa.Row[Any]) -> OutboxRow:
    return OutboxRow(
        id=int(r.id),
        sink=r.sink,
        event_id=r.event_id,
        ticket=r.ticket,
        seq=int(r.seq),
        body=r.body,
        created_at=float(r.created_at),
        attempts=int(r.attempts),
        next_attempt_at=float(r.next_attempt_at),
    )
