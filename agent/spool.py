"""Store-and-forward: every report is written to a disk spool before it is published.

The spool is one SQLite database in WAL mode with ``synchronous=FULL``: an append is durable
when ``append`` returns, and a crash (kill -9, power loss) leaves either the whole transaction
or none of it. An entry leaves the spool only through ``ack``, which the session calls once the
broker's PUBACK has arrived, so delivery is at least once. The spool also holds the sequence
epoch (``boot``) and the next ``seq``, written in the same transaction as each entry: a
restarted agent continues the epoch and a replayed entry keeps its original ``(boot, seq)``.

The spool is bounded by the bytes of its entries (topic plus payload). When an append would
pass the bound, the oldest entries are dropped in the same transaction and counted; the count
is kept in the spool so the loss can be reported (``spool_dropped``) even after a restart.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import secrets
import sqlite3
import time
from collections.abc import Callable, Collection, Iterable
from pathlib import Path
from typing import Final, NamedTuple

log = logging.getLogger(__name__)

SCHEMA_VERSION: Final = "1"
_SQLITE_CORRUPT: Final = 11
_SQLITE_FULL: Final = 13
_SQLITE_NOTADB: Final = 26

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,  -- never reused: publish cursors only move forward
    seq INTEGER NOT NULL,
    topic TEXT NOT NULL,
    payload BLOB NOT NULL,
    size INTEGER NOT NULL
);
"""


class Entry(NamedTuple):
    id: int
    seq: int
    topic: str
    payload: bytes


def new_boot_id() -> str:
    """A sequence epoch id: creation time in hex seconds and 32 random bits."""
    return f"{int(time.time()):x}-{secrets.token_hex(4)}"


class Spool:
    """A bounded, durable FIFO of encoded messages, owned by one thread."""

    def __init__(self, path: Path, max_bytes: int, *, durable: bool = True) -> None:
        """``durable=False`` skips the fsync per write: only for filling test or bench spools."""
        self.path = path
        self.max_bytes = max_bytes
        path.parent.mkdir(parents=True, exist_ok=True)
        self.set_aside: Path | None = None  # where an unreadable spool was moved
        try:
            self._db = self._open(path)
            self._load()
        except sqlite3.DatabaseError as exc:
            if fault_kind(exc) != "corrupt":
                raise  # a full or failing disk: the file may be fine, keep it
            # A spool that is not a database, or a damaged one, must not stop the agent:
            # keep it aside for inspection and start a new epoch.
            self.set_aside = set_aside(path, exc)
            self._db = self._open(path)
            self._load()
        if not durable:
            self._db.execute("PRAGMA synchronous=OFF")

    def _load(self) -> None:
        try:
            self.boot = self._meta("boot") or ""
            self._next_seq = int(self._meta("next_seq") or 1)
            self.dropped_total = int(self._meta("dropped_total") or 0)
            self.dropped_reported = int(self._meta("dropped_reported") or 0)
            # Reads every entry page: damage there (a torn write, flash wear) shows now, not at
            # some later write. (PRAGMA quick_check would cost 0.1 MB more; later damage is
            # the guard's, see agent.spool_guard.)
            sums = "SELECT COUNT(*), COALESCE(SUM(size), 0) FROM outbox"
            row = self._db.execute(sums).fetchone()
            self._count, self._bytes = int(row[0]), int(row[1])
        except ValueError as exc:  # a meta value that is not a number: damaged too
            self._db.close()
            raise sqlite3.DatabaseError(f"damaged meta table: {exc}") from None
        except BaseException:
            self._db.close()
            raise

    @staticmethod
    def _open(path: Path) -> sqlite3.Connection:
        db = sqlite3.connect(path, isolation_level=None, timeout=5.0, check_same_thread=False)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            db.execute("PRAGMA cache_size=-256")  # KiB: reads are sequential, memory is scarce
            db.executescript(_SCHEMA)
            db.execute("BEGIN IMMEDIATE")
            have = dict(db.execute("SELECT key, value FROM meta").fetchall())
            if "boot" not in have:
                db.executemany(
                    "INSERT INTO meta (key, value) VALUES (?, ?)",
                    [("schema", SCHEMA_VERSION), ("boot", new_boot_id()), ("next_seq", "1")],
                )
            db.execute("COMMIT")
        except BaseException:
            db.close()
            raise
        return db

    def _meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def _set_meta(self, key: str, value: str) -> None:
        self._db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    # ------------------------------------------------------------------ state

    @property
    def next_seq(self) -> int:
        return self._next_seq

    @property
    def pending(self) -> int:
        return self._count

    @property
    def pending_bytes(self) -> int:
        return self._bytes

    @property
    def unreported_drops(self) -> int:
        return self.dropped_total - self.dropped_reported

    def last_id(self) -> int:
        """The highest id ever given (ids are never reused)."""
        row = self._db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'outbox'").fetchone()
        return 0 if row is None else int(row[0])

    def get(self, key: str) -> str | None:
        """A free-form value kept beside the entries (the running agent's pid, ...)."""
        return self._meta(f"x:{key}")

    def put(self, key: str, value: str | None) -> None:
        if value is None:
            self._db.execute("DELETE FROM meta WHERE key = ?", (f"x:{key}",))
        else:
            self._set_meta(f"x:{key}", value)

    # ------------------------------------------------------------------ writing

    def append(
        self,
        topic: str,
        build: Callable[[str, int], bytes],
        *,
        reports_drops: bool = False,
        spare: Collection[int] = (),
    ) -> Entry:
        """Give the next ``seq`` of the epoch to ``build(boot, seq)`` and keep its payload.

        With ``reports_drops`` the entry is the one that reports the drops counted so far, so
        they are marked reported in the same transaction. Entries in ``spare`` (published and
        awaiting their PUBACK) are not dropped to make room: they may yet be delivered, and a
        drop must mean a report that never arrives.
        """
        seq = self._next_seq
        payload = build(self.boot, seq)
        size = len(topic.encode()) + len(payload)
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            cursor = db.execute(
                "INSERT INTO outbox (seq, topic, payload, size) VALUES (?, ?, ?, ?)",
                (seq, topic, payload, size),
            )
            entry_id = int(cursor.lastrowid or 0)
            self._set_meta("next_seq", str(seq + 1))
            excess = self._bytes + size - self.max_bytes
            dropped, freed = self._make_room(excess, entry_id, spare)
            total = self.dropped_total + dropped
            if dropped:
                self._set_meta("dropped_total", str(total))
            if reports_drops:  # the drops known before this entry; its own come next time
                self._set_meta("dropped_reported", str(self.dropped_total))
            db.execute("COMMIT")
        except BaseException:
            _rollback(db)
            raise
        self._next_seq = seq + 1
        self._count += 1 - dropped
        self._bytes += size - freed
        if reports_drops:
            self.dropped_reported = self.dropped_total
        self.dropped_total = total
        if dropped:
            log.warning(
                "spool full (%d bytes): dropped the %d oldest reports", self.max_bytes, dropped
            )
        return Entry(entry_id, seq, topic, payload)

    def _make_room(self, excess: int, keep_id: int, spare: Collection[int]) -> tuple[int, int]:
        """Delete the oldest entries until ``excess`` bytes are freed (never ``keep_id`` nor
        those in ``spare``)."""
        dropped = freed = 0
        after = 0
        while excess > 0:
            rows = self._db.execute(
                "SELECT id, size FROM outbox WHERE id > ? AND id < ? ORDER BY id LIMIT 256",
                (after, keep_id),
            ).fetchall()
            if not rows:
                break
            doomed = []
            for row_id, size in rows:
                after = row_id
                if excess <= 0:
                    break
                if row_id in spare:
                    continue
                doomed.append((row_id,))
                excess -= size
                freed += size
            self._db.executemany("DELETE FROM outbox WHERE id = ?", doomed)
            dropped += len(doomed)
        return dropped, freed

    def ack(self, ids: Iterable[int]) -> int:
        """Remove delivered entries (ids already dropped are ignored); returns how many left."""
        keys = [(i,) for i in ids]
        if not keys:
            return 0
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            removed = 0
            freed = 0
            for (key,) in keys:
                row = db.execute(
                    "DELETE FROM outbox WHERE id = ? RETURNING size", (key,)
                ).fetchone()
                if row is not None:
                    removed += 1
                    freed += int(row[0])
            db.execute("COMMIT")
        except BaseException:
            _rollback(db)
            raise
        self._count -= removed
        self._bytes -= freed
        return removed

    # ------------------------------------------------------------------ reading

    def read(self, after_id: int, before_id: int | None = None, limit: int = 100) -> list[Entry]:
        """Entries with ``after_id < id < before_id`` in id (= append) order."""
        rows = self._db.execute(
            "SELECT id, seq, topic, payload FROM outbox"
            " WHERE id > ? AND id < ? ORDER BY id LIMIT ?",
            (after_id, before_id if before_id is not None else 2**63 - 1, limit),
        ).fetchall()
        return [Entry(int(r[0]), int(r[1]), str(r[2]), bytes(r[3])) for r in rows]

    def close(self) -> None:
        self._db.close()


def _rollback(db: sqlite3.Connection) -> None:
    """Undo a failed transaction without hiding why it failed: SQLite may have rolled back
    already (SQLITE_FULL), and a failing ROLLBACK must not replace the first error."""
    if db.in_transaction:
        with contextlib.suppress(sqlite3.Error):
            db.execute("ROLLBACK")


def fault_kind(exc: BaseException) -> str:
    """``corrupt`` (set the file aside), ``full`` (no space) or ``io`` (anything else: a
    read-only, busy or failing disk; retried) for an error of the spool."""
    code = getattr(exc, "sqlite_errorcode", None)
    if isinstance(code, int):
        primary = code & 0xFF
        if primary in (_SQLITE_CORRUPT, _SQLITE_NOTADB):
            return "corrupt"
        if primary == _SQLITE_FULL:
            return "full"
        return "io"
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        return "full"
    if isinstance(exc, sqlite3.DatabaseError) and not isinstance(exc, sqlite3.OperationalError):
        return "corrupt"  # raised by this module for a failed check or damaged meta
    return "io"


def set_aside(path: Path, exc: BaseException) -> Path:
    """Move an unreadable spool (and its WAL) out of the way; the new name says when."""
    aside = path.with_name(f"{path.name}.corrupt-{int(time.time())}")
    log.error("spool %s is unreadable (%s); moved to %s", path, exc, aside)
    path.rename(aside)
    for suffix in ("-wal", "-shm"):
        wal = Path(f"{path}{suffix}")
        if suffix == "-wal" and wal.exists():
            wal.rename(Path(f"{aside}{suffix}"))
        wal.unlink(missing_ok=True)
    return aside


def read_only_meta(path: Path) -> dict[str, str]:
    """The spool's meta table, read by another process (``fleetdesk agent dying-gasp``)."""
    if not path.exists():
        return {}
    db = sqlite3.connect(f"file:{os.fspath(path)}?mode=ro", uri=True, timeout=5.0)
    try:
        return {str(k): str(v) for k, v in db.execute("SELECT key, value FROM meta")}
    except sqlite3.DatabaseError:
        return {}
    finally:
        db.close()
