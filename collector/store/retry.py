"""Storage errors are waited out, not fatal: retry with backoff, count, and say so in /healthz.

One small helper instead of a retry library: every caller (the intake committer, the rules-state
writer, the ticket consumer and clock, the delivery worker) needs the same three things on a
failed transaction: wait a growing interval, count the failure under its part's name, and show
the part as degraded (with the reason, never a password) until its next success.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Protocol, TypeVar

import sqlalchemy as sa

from collector.store.database import StoreError

log = logging.getLogger("fleetdesk.collector.store")
T = TypeVar("T")

# What a retry waits out: the database (locked, down, full disk) and the disk buffer's files.
STORAGE_ERRORS: tuple[type[BaseException], ...] = (sa.exc.SQLAlchemyError, StoreError, OSError)


class _Counter(Protocol):
    def labels(self, *values: str) -> _Incrementable: ...


class _Incrementable(Protocol):
    def inc(self, amount: float = 1) -> None: ...


def reason_of(exc: BaseException) -> str:
    """One line naming the error (SQLAlchemy's wrapped driver error, not its statement)."""
    inner = getattr(exc, "orig", None) or exc
    text = str(inner).splitlines()[0] if str(inner) else ""
    return f"{type(inner).__name__}: {text}"[:300].rstrip(": ")


class Health:
    """The parts failing now and why (thread-safe: the delivery worker has its own thread)."""

    def __init__(self, errors: _Counter | None = None) -> None:
        self.errors = errors
        self._lock = threading.Lock()
        self._reasons: dict[str, str] = {}
        self._logged: dict[str, float] = {}

    def failed(self, part: str, exc: BaseException | str) -> None:
        reason = exc if isinstance(exc, str) else reason_of(exc)
        if self.errors is not None and not isinstance(exc, str):
            self.errors.labels(part).inc()
        now = time.monotonic()
        with self._lock:
            first = part not in self._reasons
            self._reasons[part] = reason
            loud = first or now - self._logged.get(part, 0.0) > 30.0
            if loud:
                self._logged[part] = now
        if loud:  # the first failure and then every 30 s: a long outage does not flood the log
            log.warning("%s degraded: %s (retrying)", part, reason)

    def recovered(self, part: str) -> None:
        with self._lock:
            was = self._reasons.pop(part, None)
        if was is not None:
            log.info("%s recovered", part)

    def degraded(self) -> dict[str, str]:
        with self._lock:
            return dict(self._reasons)


class Backoff:
    """0.1 s, doubling, up to ``most`` seconds; ``reset`` after a success."""

    def __init__(self, first: float = 0.1, most: float = 5.0) -> None:
        self.first = self.next_s = first
        self.most = most

    def take(self) -> float:
        delay = self.next_s
        self.next_s = min(self.most, self.next_s * 2)
        return delay

    def reset(self) -> None:
        self.next_s = self.first


async def retrying(
    part: str,
    attempt: Callable[[], Awaitable[T]],
    health: Health,
    *,
    give_up: asyncio.Event | None = None,
    backoff: Backoff | None = None,
) -> T:
    """``await attempt()`` until it does not raise a storage error; other errors propagate.

    ``give_up``: once set, the next failure is raised instead of waited out (a drain that must
    end); until then the collector keeps what it holds and keeps trying."""
    backoff = backoff or Backoff()
    while True:
        try:
            result = await attempt()
        except STORAGE_ERRORS as exc:
            health.failed(part, exc)
            if give_up is not None and give_up.is_set():
                raise
            await sleep_unless(give_up, backoff.take())
            continue
        health.recovered(part)
        return result


async def sleep_unless(event: asyncio.Event | None, seconds: float) -> None:
    """Sleep ``seconds``, or less if ``event`` is set meanwhile."""
    if event is None:
        await asyncio.sleep(seconds)
        return
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(event.wait(), timeout=seconds)
