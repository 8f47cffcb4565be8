"""Publishing the spool over the link: fresh entries at once, the backlog at a steady rate.

Entries appended since the link came up ("fresh") go out at once; the backlog from before
drains in spool order at ``spool.drain_rate`` per second (a token bucket). At most
``spool.inflight`` spooled publishes await their PUBACK at any time. Acknowledged entries are
deleted from the spool in batches (kept for the next batch when the spool cannot delete now).
When a damaged spool is replaced by a new file, ids of the old one are forgotten. Main thread
only.
"""

from __future__ import annotations

import logging
import time
from typing import Final

from agent.mqtt import Link
from agent.spool_guard import SpoolGuard

log = logging.getLogger("fleetdesk.agent")

ACK_FLUSH_S: Final = 0.25  # acknowledged entries are deleted in batches
ACK_FLUSH_COUNT: Final = 500


class SpoolPublisher:
    def __init__(self, spool: SpoolGuard, link: Link, window: int, drain_rate: float) -> None:
        self.spool, self.link = spool, link
        self._generation = spool.generation
        self.window, self.drain_rate = window, drain_rate
        self._inflight: dict[int, int | None] = {}  # mid -> spool id (None: not spooled)
        self._spooled_inflight = 0
        self._acked: list[int] = []
        self._acks_flushed_at = time.monotonic()
        self._fresh_from = 0  # spool ids >= this were appended while the link was up
        self._fresh_cursor = 0
        self._backlog_cursor = 0
        self._backlog_left = False
        self._tokens = 0.0
        self._tokens_at = time.monotonic()

    # ------------------------------------------------------------------ link events

    def link_up(self) -> None:
        """A new session: nothing in flight; what the spool holds now is the backlog."""
        self.forget_inflight()
        self._generation = self.spool.generation
        self._fresh_from = self.spool.last_id() + 1
        self._fresh_cursor = self._fresh_from - 1
        self._backlog_cursor = 0
        self._backlog_left = self.spool.pending > 0
        self._tokens, self._tokens_at = 0.0, time.monotonic()

    def forget_inflight(self) -> None:
        """The session is gone: unacknowledged entries stay in the spool for the next one."""
        self._inflight.clear()
        self._spooled_inflight = 0

    def _spool_replaced(self) -> None:
        """Another spool file (or none): publishes in flight belong to the old one (never ack
        their ids in this one); what the new one holds is backlog."""
        self._generation = self.spool.generation
        self._inflight = dict.fromkeys(self._inflight)
        self._spooled_inflight = 0
        self._acked.clear()
        self._fresh_from = self.spool.last_id() + 1
        self._fresh_cursor = self._fresh_from - 1
        self._backlog_cursor, self._backlog_left = 0, self.spool.pending > 0

    def acked(self, mid: int, ok: bool) -> None:
        if mid not in self._inflight:
            return
        entry_id = self._inflight.pop(mid)
        if entry_id is not None:
            self._spooled_inflight -= 1
            self._acked.append(entry_id)
            if not ok:  # MQTT 5 refusal: retrying would refuse again
                log.error("broker refused spool entry %d; dropped", entry_id)

    # ------------------------------------------------------------------ what is in flight

    def track(self, mid: int, entry_id: int | None) -> None:
        """A publish awaiting its PUBACK: a spool entry, or (None) a message not spooled."""
        self._inflight[mid] = entry_id
        if entry_id is not None:
            self._spooled_inflight += 1

    def in_flight_ids(self) -> set[int]:
        """Entries published and not yet deleted: awaiting PUBACK, or acked in this batch."""
        ids = {entry_id for entry_id in self._inflight.values() if entry_id is not None}
        return ids.union(self._acked)

    def inflight_mids(self) -> set[int]:
        return set(self._inflight)

    def awaiting(self, mids: set[int]) -> bool:
        """Any of these publishes still without its PUBACK."""
        return bool(mids & self._inflight.keys())

    # ------------------------------------------------------------------ publishing

    def publish_entries(self, after: int, before: int | None, limit: int) -> tuple[int, int]:
        """Publish up to ``limit`` spool entries after id ``after``; (last id, count)."""
        entries = self.spool.read(after, before, limit)
        last = after
        for entry in entries:
            mid = self.link.publish(entry.topic, entry.payload)
            if mid is None:
                break
            self.track(mid, entry.id)
            last = entry.id
        return last, len(entries)

    def pump(self, now: float) -> None:
        if self._generation != self.spool.generation:
            self._spool_replaced()
        if not self.link.up:
            return
        free = self.window - self._spooled_inflight
        if free > 0:
            self._fresh_cursor, _ = self.publish_entries(self._fresh_cursor, None, free)
            free = self.window - self._spooled_inflight
        if not self._backlog_left:
            return
        rate = self.drain_rate
        self._tokens = min(max(1.0, rate), self._tokens + (now - self._tokens_at) * rate)
        self._tokens_at = now
        allowed = min(free, int(self._tokens))
        if allowed <= 0:
            return
        before = self._backlog_cursor
        self._backlog_cursor, found = self.publish_entries(before, self._fresh_from, allowed)
        self._tokens -= found
        if found < allowed:
            self._backlog_left = False
            log.info("backlog drained")

    def flush_acks(self, now: float, force: bool = False) -> None:
        if not self._acked:
            return
        if (
            force
            or len(self._acked) >= ACK_FLUSH_COUNT
            or now - self._acks_flushed_at >= ACK_FLUSH_S
        ):
            if self._generation != self.spool.generation:
                self._spool_replaced()
            elif self.spool.ack(self._acked):
                self._acked.clear()
            self._acks_flushed_at = now

    def waits(self, now: float) -> list[float]:
        """Seconds until this has work again: the next ack flush, the next backlog token."""
        waits = []
        if self._acked:
            waits.append(self._acks_flushed_at + ACK_FLUSH_S - now)
        if self.link.up and self._backlog_left and self._spooled_inflight < self.window:
            waits.append((1.0 - self._tokens) / self.drain_rate)
        return waits
