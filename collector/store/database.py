"""The one database connection and migration path for everything the collector persists.

Device registry, faults, rules state, tickets and the delivery outbox live in one schema
(``schema.MIGRATIONS``), opened and migrated here, whichever of ``Store`` or ``TicketStore``
asks first. SQLite runs in WAL mode so readers (the board, the CLI) do not block the writer.
"""

from __future__ import annotations

import time
from typing import Any

import sqlalchemy as sa

from collector.store import schema


class StoreError(RuntimeError):
    """The database could not be reached, opened or migrated (one line, no password)."""


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


def safe_url(url: str) -> str:
    return sa.engine.make_url(url).render_as_string(hide_password=True)


# PostgreSQL waits for a lock for ever by default; like SQLite's busy_timeout, give up after 5 s
# so a locked table becomes a counted, retried error shown in /healthz instead of a silent stall.
PG_OPTIONS = "-c lock_timeout=5000"


def create_engine(url: str) -> sa.Engine:
    connect_args: dict[str, Any] = {}
    if sa.engine.make_url(url).get_backend_name() == "postgresql":
        connect_args["options"] = PG_OPTIONS
    # No pool_pre_ping: it costs a round trip on every checkout, on the fault-to-ticket path
    # too (measured: 2 ms of the PostgreSQL p50 in bench/tickets.py). A connection that died
    # with a database restart fails its first statement instead; SQLAlchemy then drops the
    # pool's dead connections, and every caller retries (the committer, the ticket runtime and
    # the delivery worker by their backoff, the HTTP API with a 503 and Retry-After).
    engine = sa.create_engine(url, connect_args=connect_args)
    if engine.dialect.name == "sqlite":
        sa.event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def version(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        if not sa.inspect(conn).has_table(schema.schema_version.name):
            return 0
        found = conn.execute(sa.select(sa.func.max(schema.schema_version.c.version)))
        return int(found.scalar() or 0)


MIGRATE_LOCK = 0x666C6402  # PostgreSQL advisory lock: one collector migrates at a time


def migrate(engine: sa.Engine) -> int:
    """Run the migrations not yet applied, each in its own transaction; returns the version.

    On PostgreSQL, collectors starting together take turns (a session advisory lock held for
    the whole run), so a step is never applied twice. Errors become one-line ``StoreError``s
    naming the database (never its password)."""
    try:
        if engine.dialect.name != "postgresql":
            return _migrate(engine)
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as lock:
            lock.execute(sa.text(f"SELECT pg_advisory_lock({MIGRATE_LOCK})"))
            try:
                return _migrate(engine)
            finally:
                lock.execute(sa.text(f"SELECT pg_advisory_unlock({MIGRATE_LOCK})"))
    except sa.exc.SQLAlchemyError as exc:
        reason = str(getattr(exc, "orig", None) or exc).splitlines()[0]
        raise StoreError(f"store {safe_url(str(engine.url))}: {reason}") from None


def _migrate(engine: sa.Engine) -> int:
    with engine.begin() as conn:
        schema.schema_version.create(conn, checkfirst=True)
    current = version(engine)
    for number, step in enumerate(schema.MIGRATIONS, start=1):
        if number <= current:
            continue
        with engine.begin() as conn:
            step(conn)
            conn.execute(
                schema.schema_version.insert().values(version=number, applied_at=time.time())
            )
        current = number
    return current
