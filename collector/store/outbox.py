"""Outbox statements shared by the ticket store: which rows are due, claiming and settling them.

Order per (sink, ticket): a row is due only when no earlier row of its (sink, ticket) is still
pending or dead. A dead row therefore holds the ticket's later events back until it is
requeued (then sent first), so a desk never sees ``resolved`` before a ``ticket_opened`` that
failed; the dead-letter gauge says a ticket is held.

Several workers (PostgreSQL): ``Claim.take`` selects the due rows ``FOR UPDATE SKIP LOCKED`` in
a transaction that stays open while the worker sends them and is committed with their
outcomes. A second worker skips the locked rows, and the later rows of their tickets stay
blocked because the locked rows are still pending, so each event is sent by one worker, in
order per ticket. A worker that dies loses its connection and with it the locks: another
worker (or the restarted one) sends those rows again at once (at least once, as before).
SQLite has one writer: there the claim is a plain read and the outcomes their own transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import sqlalchemy as sa

from collector.store import ticket_tables as schema

_o = schema.outbox
R = TypeVar("R")

MARK_DELIVERED = (
    sa.update(_o)
    .where(_o.c.id == sa.bindparam("row_id"))
    .values(state="delivered", done_at=sa.bindparam("done_at"), last_error=None)
)


def update_row(row_id: int, values: Mapping[str, Any]) -> sa.Update:
    return sa.update(_o).where(_o.c.id == row_id).values(dict(values))


def _blocked() -> sa.Exists:
    earlier = _o.alias("earlier")
    return (
        sa.select(earlier.c.id)
        .where(
            earlier.c.sink == _o.c.sink,
            earlier.c.ticket == _o.c.ticket,
            earlier.c.state.in_(("pending", "dead")),
            earlier.c.id < _o.c.id,
        )
        .exists()
    )


def _sendable(sinks: Sequence[str] | None) -> list[sa.ColumnElement[bool]]:
    """Pending rows not held behind an earlier row of their (sink, ticket), of ``sinks``
    (a worker claims, and waits for, only rows it can send)."""
    where = [_o.c.state == "pending", ~_blocked()]
    if sinks is not None:
        where.append(_o.c.sink.in_(list(sinks)))
    return where


def due_stmt(now: float, limit: int, sinks: Sequence[str] | None = None) -> sa.Select[Any]:
    stmt = sa.select(_o).where(*_sendable(sinks), _o.c.next_attempt_at <= now)
    return stmt.order_by(_o.c.id).limit(limit)


def next_due_stmt(sinks: Sequence[str] | None = None) -> sa.Select[Any]:
    """When the next sendable row falls due, so a row waiting on a dead one never wakes a
    worker (nor does a row of another worker's sink)."""
    return sa.select(sa.func.min(_o.c.next_attempt_at)).where(*_sendable(sinks))


def settle(
    conn: sa.Connection,
    delivered: Sequence[tuple[int, float]] = (),
    retries: Sequence[tuple[int, int, float, str]] = (),
    dead: Sequence[tuple[int, int, float, str]] = (),
    refs: Sequence[tuple[str, str, str]] = (),
) -> None:
    """Record a pass of delivery attempts.

    ``delivered``: (row id, when); ``retries``: (row id, attempts, next attempt, error);
    ``dead``: (row id, attempts, when, error); ``refs``: (sink, ticket, the desk's id) learnt in
    the pass, written with the results so a crash cannot keep one without the other.
    """
    for sink, ticket, ref in refs:
        set_ref(conn, sink, ticket, ref)
    if delivered:
        conn.execute(MARK_DELIVERED, [{"row_id": i, "done_at": at} for i, at in delivered])
    for row_id, attempts, next_at, error in retries:
        values = {"attempts": attempts, "next_attempt_at": next_at, "last_error": error}
        conn.execute(update_row(row_id, values))
    for row_id, attempts, at, error in dead:
        values = {"state": "dead", "attempts": attempts, "done_at": at, "last_error": error}
        conn.execute(update_row(row_id, values))


def set_ref(conn: sa.Connection, sink: str, ticket: str, ref: str) -> None:
    r = schema.remote_refs
    conn.execute(sa.delete(r).where(r.c.sink == sink, r.c.ticket == ticket))
    conn.execute(sa.insert(r).values(sink=sink, ticket=ticket, ref=ref))


@dataclass
class Claim(Generic[R]):
    """Rows one worker is sending; ``settle`` records their outcomes and lets them go."""

    rows: list[R]
    _engine: sa.Engine
    _conn: sa.Connection | None  # PostgreSQL: the open transaction holding the row locks

    @classmethod
    def take(
        cls,
        engine: sa.Engine,
        now: float,
        limit: int,
        convert: Callable[[sa.Row[Any]], R],
        sinks: Sequence[str] | None = None,
    ) -> Claim[R]:
        if engine.dialect.name != "postgresql":
            with engine.connect() as conn:
                found = conn.execute(due_stmt(now, limit, sinks))
                return cls([convert(r) for r in found], engine, None)
        conn = engine.connect()
        try:
            conn.begin()
            stmt = due_stmt(now, limit, sinks).with_for_update(skip_locked=True, of=_o)
            rows = [convert(r) for r in conn.execute(stmt)]
        except BaseException:
            conn.close()
            raise
        if not rows:
            conn.close()
            return cls(rows, engine, None)
        return cls(rows, engine, conn)

    def settle(
        self,
        delivered: Sequence[tuple[int, float]] = (),
        retries: Sequence[tuple[int, int, float, str]] = (),
        dead: Sequence[tuple[int, int, float, str]] = (),
        refs: Sequence[tuple[str, str, str]] = (),
    ) -> None:
        if self._conn is None:
            with self._engine.begin() as conn:
                settle(conn, delivered, retries, dead, refs)
            return
        try:
            settle(self._conn, delivered, retries, dead, refs)
            self._conn.commit()
        finally:
            self.release()

    @property
    def holding(self) -> bool:
        """Row locks still held (PostgreSQL, not yet settled or released)."""
        return self._conn is not None

    def release(self) -> None:
        """Let the rows go unrecorded (they are sent again); idempotent."""
        if self._conn is not None:
            self._conn.close()  # rolls back what was not committed
            self._conn = None
