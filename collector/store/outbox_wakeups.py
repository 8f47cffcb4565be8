"""Outbox wake-ups across processes: PostgreSQL LISTEN on the channel the outbox trigger
notifies (``ticket_tables.OUTBOX_CHANNEL``, migration 9).

A delivery worker in its own process (``fleetdesk deliver``) learns of a committed ticket event
at the commit instead of at its next poll. One thread holds one autocommit connection that
listens; each notification calls ``wake`` (the worker's thread-safe ``notify``). If the
connection fails (a database restart) the thread reconnects with backoff and wakes the worker
once more when it is back; meanwhile the worker still polls, so a missed notification costs at
most a poll interval, never a row. SQLite has no notifications: there the worker only polls.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import sqlalchemy as sa

from collector.store.retry import Backoff
from collector.store.ticket_tables import OUTBOX_CHANNEL

log = logging.getLogger("fleetdesk.delivery.wakeups")

WAIT_S = 0.5  # how often the listening thread looks at its stop flag


def libpq_url(url: str) -> str:
    """The SQLAlchemy URL as a libpq connection string (psycopg.connect takes it)."""
    return sa.engine.make_url(url).set(drivername="postgresql").render_as_string(False)


class OutboxWakeups:
    """Calls ``wake`` for every notification on the outbox channel until ``stop``."""

    def __init__(self, url: str, wake: Callable[[], None]) -> None:
        self._conninfo = libpq_url(url)
        self._wake = wake
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="outbox-wakeups", daemon=True)

    def start(self) -> OutboxWakeups:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5 * WAIT_S)

    def _run(self) -> None:
        import psycopg

        backoff = Backoff()
        while not self._stop.is_set():
            try:
                with psycopg.connect(self._conninfo, autocommit=True, connect_timeout=5) as conn:
                    conn.execute(f"LISTEN {OUTBOX_CHANNEL}")
                    backoff.reset()
                    self._wake()  # rows committed while nobody listened
                    while not self._stop.is_set():
                        for _ in conn.notifies(timeout=WAIT_S):
                            self._wake()
            except psycopg.Error as exc:
                delay = backoff.take()
                # one line, no password (libpq's messages name host and port, not the password)
                log.warning("outbox wake-ups: %s; listening again in %.1fs", exc, delay)
                self._stop.wait(delay)
