"""Partition leases as PostgreSQL session advisory locks, on one connection per collector.

Why advisory locks and not a lease table: a lock lives exactly as long as the session that
holds it, so a collector that dies (SIGKILL, power, a network cut that ends its session) frees
its partitions the moment PostgreSQL notices the connection is gone, with no expiry to wait out
and no clock to trust; the server does the bookkeeping and ``pg_locks`` shows who holds what.
Keys are two 32-bit numbers: a space (partitions, members, the tickets lease) and an index.

Every call is synchronous and short; the supervisor runs them in a thread.
"""

from __future__ import annotations

import contextlib
from typing import Final

import sqlalchemy as sa
from sqlalchemy.pool import NullPool

PARTITIONS: Final = 0x666C6410  # (space, partition number)
MEMBERS: Final = 0x666C6411  # (space, member slot): one per running collector
TICKETS: Final = 0x666C6412  # (space, 0): the collector running the ticket book

_HELD = sa.text(
    "SELECT objid::bigint AS key FROM pg_locks WHERE locktype = 'advisory' AND granted "
    "AND objsubid = 2 AND classid::bigint = :space "
    "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
)


class LeaseLost(Exception):
    """The lease session is gone: every lock it held is free for the others."""


class Leases:
    def __init__(self, url: str) -> None:
        self._engine = sa.create_engine(url, poolclass=NullPool)
        self._conn: sa.Connection | None = None
        self.slot: int | None = None

    def connect(self) -> int:
        """A new session, registered as a member; returns the member slot."""
        self.close()
        conn = self._engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        self._conn = conn
        slot = 0
        while not self._try(MEMBERS, slot):
            slot += 1
        self.slot = slot
        return slot

    def close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(sa.exc.SQLAlchemyError):
                self._conn.close()  # ends the session: its locks go with it
            self._conn = None
            self.slot = None

    def dispose(self) -> None:
        self.close()
        self._engine.dispose()

    def members(self) -> int:
        return len(self._held(MEMBERS))

    def held(self) -> set[int]:
        """Partitions some collector (this one included) holds now."""
        return self._held(PARTITIONS)

    def take(self, part: int) -> bool:
        return self._try(PARTITIONS, part)

    def release(self, part: int) -> None:
        self._call("pg_advisory_unlock", PARTITIONS, part)

    def take_tickets(self) -> bool:
        return self._try(TICKETS, 0)

    def tickets_held(self) -> bool:
        return bool(self._held(TICKETS))

    def _try(self, space: int, key: int) -> bool:
        return bool(self._call("pg_try_advisory_lock", space, key))

    def _held(self, space: int) -> set[int]:
        conn = self._live()
        try:
            return {int(k) for k in conn.execute(_HELD, {"space": space}).scalars()}
        except sa.exc.SQLAlchemyError as exc:
            raise LeaseLost(str(exc).splitlines()[0]) from None

    def _call(self, function: str, space: int, key: int) -> object:
        conn = self._live()
        # the (int4, int4) form: shown as (classid, objid) in pg_locks
        stmt = sa.text(f"SELECT {function}(CAST(:space AS integer), CAST(:key AS integer))")
        try:
            return conn.execute(stmt, {"space": space, "key": key}).scalar()
        except sa.exc.SQLAlchemyError as exc:
            raise LeaseLost(str(exc).splitlines()[0]) from None

    def _live(self) -> sa.Connection:
        if self._conn is None:
            raise LeaseLost("no lease session")
        return self._conn
