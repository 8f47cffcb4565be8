"""The spool behind a guard: a full, failing or damaged disk never stops the agent.

:class:`SpoolGuard` wraps :class:`agent.spool.Spool` and catches every storage error there is
(SQLite's and the OS's). After a failed write it writes nothing until the next report calls
:meth:`SpoolGuard.retry`, so a full disk costs one failed write per report, not a busy loop;
reads go on (a full disk still drains its backlog) until one fails too. While the spool
cannot take a message, :meth:`append` returns None and the agent publishes the message
directly (QoS 1, not kept), numbered in an epoch of its own (:meth:`direct_seq`): it is never
written down, so it cannot collide with the spool's sequence numbers after a restart. A
damaged spool (``SQLITE_CORRUPT``, ``SQLITE_NOTADB``) is set aside as ``<name>.corrupt-<time>``
and a new one started; :attr:`generation` changes whenever a file is opened or set aside, so
the publisher forgets ids it held and takes what is there as backlog. What happened is kept
as notices for the agent to report as events (``spool_failed``, ``spool_reset``,
``spool_recovered``).
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
from collections.abc import Callable, Collection, Iterable
from pathlib import Path
from typing import Any

from agent.spool import Entry, Spool, fault_kind, new_boot_id, set_aside

log = logging.getLogger("fleetdesk.agent")

Notice = tuple[str, dict[str, Any]]  # an event name and its data


class SpoolGuard:
    def __init__(self, path: Path, max_bytes: int) -> None:
        self.path, self.max_bytes = path, max_bytes
        self.spool: Spool | None = None
        self.errors = 0  # failed spool operations since the agent started
        self.fault: tuple[str, str] | None = None  # (kind, what failed) while failing
        self.generation = 0  # changes whenever a spool file is opened (or set aside)
        self.direct = 0  # messages published without the spool since the last fault
        self._notices: list[Notice] = []
        self._try = True  # writes: False after a failure, until the next retry()
        self._try_read = True  # reads: a full disk still reads, so its backlog still drains
        self._direct_boot = ""
        self._direct_seq = 0
        self._open()

    # ------------------------------------------------------------------ state

    @property
    def ok(self) -> bool:
        return self.spool is not None and self.fault is None

    @property
    def live(self) -> bool:
        """The spool may be written now (it is open and not waiting for a retry)."""
        return self.spool is not None and self._try

    @property
    def readable(self) -> bool:
        return self.spool is not None and self._try_read

    @property
    def boot(self) -> str:
        return self.spool.boot if self.spool is not None else self._ensure_direct_boot()

    @property
    def next_seq(self) -> int:
        return self.spool.next_seq if self.spool is not None else self._direct_seq + 1

    @property
    def pending(self) -> int:
        return self.spool.pending if self.spool is not None else 0

    @property
    def dropped_total(self) -> int:
        return self.spool.dropped_total if self.spool is not None else 0

    @property
    def unreported_drops(self) -> int:
        return self.spool.unreported_drops if self.ok and self.spool is not None else 0

    def take_notices(self) -> list[Notice]:
        notices, self._notices = self._notices, []
        return notices

    def direct_seq(self) -> tuple[str, int]:
        """``(boot, seq)`` for a message published without the spool: an epoch of its own,
        made fresh by each agent process and never stored."""
        self.direct += 1
        self._direct_seq += 1
        return self._ensure_direct_boot(), self._direct_seq

    def _ensure_direct_boot(self) -> str:
        if not self._direct_boot:
            self._direct_boot = new_boot_id()
        return self._direct_boot

    # ------------------------------------------------------------------ failures

    def _open(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.spool = Spool(self.path, self.max_bytes)
        except (sqlite3.Error, OSError) as exc:
            self._failed(exc, "open")
            return
        self.generation += 1
        if self.spool.set_aside is not None:
            self._reset_notice(self.spool.set_aside, "unreadable at start")

    def _reset_notice(self, aside: Path, why: str) -> None:
        self.generation += 1
        self._notices.append(("spool_reset", {"aside": aside.name, "error": why[:120]}))

    def _failed(self, exc: BaseException, what: str, *, reading: bool = False) -> None:
        kind = fault_kind(exc)
        if kind == "io" and _no_space(self.path.parent):
            kind = "full"  # SQLite says "disk I/O error" when the WAL index cannot grow
        self.errors += 1
        self._try = False
        self._try_read = self._try_read and not reading
        name = getattr(exc, "sqlite_errorname", None)
        detail = f"{what}: {exc}{f' ({name})' if name else ''}"[:120]
        if self.fault is None:
            log.error("spool %s failed (%s): %s; publishing without it", self.path, kind, detail)
            self.direct = 0
            data = {"reason": kind, "error": detail, "errors": self.errors}
            self._notices.append(("spool_failed", data))
        else:
            log.debug("spool still failing (%s): %s", kind, detail)
        self.fault = (kind, detail)
        if kind == "corrupt":
            self._replace(exc)

    def _replace(self, exc: BaseException) -> None:
        """Set a damaged spool aside; the next retry() starts a new one."""
        spool, self.spool = self.spool, None
        if spool is not None:
            with contextlib.suppress(sqlite3.Error):
                spool.close()
        try:
            aside = set_aside(self.path, exc)
        except OSError as err:
            log.error("cannot set the damaged spool %s aside: %s", self.path, err)
            return
        self._reset_notice(aside, str(exc))

    def _succeeded(self) -> None:
        if self.fault is not None:
            log.warning("spool %s works again after %d errors", self.path, self.errors)
            data = {"errors": self.errors, "direct": self.direct}
            self._notices.append(("spool_recovered", data))
            self.fault = None

    def retry(self) -> None:
        """Called once per report: try the spool again (reopen it when it is gone)."""
        if self.fault is None:
            return
        self._try = self._try_read = True
        if self.spool is None:
            self._open()

    # ------------------------------------------------------------------ operations

    def append(
        self,
        topic: str,
        build: Callable[[str, int], bytes],
        *,
        reports_drops: bool = False,
        spare: Collection[int] = (),
    ) -> Entry | None:
        """The stored entry, or None when the spool cannot take it now (``build`` raising
        ValueError for an oversize payload is the caller's)."""
        if not self.live or self.spool is None:
            return None
        try:
            entry = self.spool.append(topic, build, reports_drops=reports_drops, spare=spare)
        except (sqlite3.Error, OSError) as exc:
            self._failed(exc, "append")
            return None
        self._succeeded()
        return entry

    def read(self, after_id: int, before_id: int | None = None, limit: int = 100) -> list[Entry]:
        if not self.readable or self.spool is None:
            return []
        try:
            return self.spool.read(after_id, before_id, limit)
        except (sqlite3.Error, OSError) as exc:
            self._failed(exc, "read", reading=True)
            return []

    def ack(self, ids: Iterable[int]) -> bool:
        """Delete delivered entries; False when that failed (the caller keeps the ids)."""
        if not self.live or self.spool is None:
            return False
        try:
            self.spool.ack(ids)
        except (sqlite3.Error, OSError) as exc:
            self._failed(exc, "ack")
            return False
        return True

    def last_id(self) -> int:
        if not self.readable or self.spool is None:
            return 0
        try:
            return self.spool.last_id()
        except (sqlite3.Error, OSError) as exc:
            self._failed(exc, "read", reading=True)
            return 0

    def get(self, key: str) -> str | None:
        if not self.readable or self.spool is None:
            return None
        try:
            return self.spool.get(key)
        except (sqlite3.Error, OSError) as exc:
            self._failed(exc, "read", reading=True)
            return None

    def put(self, key: str, value: str | None) -> bool:
        if not self.live or self.spool is None:
            return False
        try:
            self.spool.put(key, value)
        except (sqlite3.Error, OSError) as exc:
            self._failed(exc, "write")
            return False
        return True

    def close(self) -> None:
        if self.spool is not None:
            with contextlib.suppress(sqlite3.Error):
                self.spool.close()


def _no_space(folder: Path) -> bool:
    try:
        fs = os.statvfs(folder)
    except OSError:
        return False
    return fs.f_bavail * fs.f_frsize < 4096
