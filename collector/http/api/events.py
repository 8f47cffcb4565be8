"""Live events for the board and scripts: a bounded ring of recent events with ids, fanned
out to Server-Sent-Events subscribers; a client that reconnects with ``Last-Event-ID`` gets
what it missed (while it is still in the ring; otherwise a ``reset`` event tells it to reload).

Everything runs on the event loop's thread (``publish`` is called from it).
"""

from __future__ import annotations

import asyncio
import json
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

RING = 2048
QUEUE = 1024  # a subscriber further behind than this is dropped (it reconnects and resumes)


@dataclass(frozen=True, slots=True)
class Event:
    id: int
    type: str  # fault_opened | ticket | sla_warning | maintenance | reset
    data: dict[str, Any]

    def encode(self) -> bytes:
        body = json.dumps(self.data, separators=(",", ":"), ensure_ascii=False)
        return f"id: {self.id}\nevent: {self.type}\ndata: {body}\n\n".encode()


class EventHub:
    def __init__(self, size: int = RING) -> None:
        self.ring: deque[Event] = deque(maxlen=size)
        self.last_id = 0
        self.subscribers: set[asyncio.Queue[Event | None]] = set()
        self.closed = False

    def close(self) -> None:
        """End every stream (the server is stopping: open streams would hold its shutdown)."""
        self.closed = True
        for queue in self.subscribers:
            queue.put_nowait(None)
        self.subscribers.clear()

    def publish(self, type_: str, data: dict[str, Any]) -> Event:
        self.last_id += 1
        event = Event(self.last_id, type_, data)
        self.ring.append(event)
        for queue in list(self.subscribers):
            if queue.qsize() >= QUEUE:
                self.subscribers.discard(queue)
                queue.put_nowait(None)  # the reader ends; its client resumes by id
            else:
                queue.put_nowait(event)
        return event

    def since(self, last_id: int) -> list[Event] | None:
        """Events after ``last_id``; None when some were already dropped from the ring."""
        if last_id >= self.last_id:
            return []
        if not self.ring or self.ring[0].id > last_id + 1:
            return None
        return [e for e in self.ring if e.id > last_id]

    async def stream(
        self, last_id: int | None, tenant: str | None = None, heartbeat_s: float = 15.0
    ) -> AsyncIterator[bytes]:
        """``tenant``: only that tenant's events (a tenant-scoped token)."""

        def shown(event: Event) -> bool:
            return tenant is None or event.data.get("tenant") == tenant

        queue: asyncio.Queue[Event | None] = asyncio.Queue(maxsize=QUEUE + 2)
        if self.closed:
            return
        self.subscribers.add(queue)
        try:
            yield b"retry: 2000\n\n"
            if last_id is not None:
                missed = self.since(last_id)
                if missed is None:
                    yield Event(self.last_id, "reset", {"reason": "events_dropped"}).encode()
                else:
                    for event in missed:
                        if shown(event):
                            yield event.encode()
            while True:
                try:
                    item = await asyncio.wait_for(queue.get(), heartbeat_s)
                except TimeoutError:
                    yield b": keep-alive\n\n"
                    continue
                if item is None:
                    return
                if shown(item):
                    yield item.encode()
        finally:
            self.subscribers.discard(queue)
