"""One stage shape for everything that arrives: a batch in, the survivors out.

A stage is any callable ``(list[Envelope]) -> list[Envelope]``; it may drop envelopes (rejects,
duplicates), fill them in (decode) or hand them to a writer (storage, rules). Stages never block:
anything slow (database, TSDB) is handed to a writer task. The service assembles its stages in
one visible place (``collector.service.app.build_pipeline``) and runs them in order.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any


class Envelope:
    """One arrival: raw MQTT bytes, or a decoded message from SNMP, with its arrival time."""

    __slots__ = ("at", "msg", "payload", "source", "tenant", "topic")

    def __init__(
        self,
        topic: str,
        payload: bytes,
        at: float,
        *,
        msg: Any = None,
        source: str = "mqtt",
        tenant: str = "",
    ) -> None:
        self.topic = topic
        self.payload = payload
        self.at = at  # epoch seconds when it reached the collector
        self.msg = msg  # a wire.Message (or an SNMP trap notice) once decoded
        self.source = source  # mqtt, mapping, snmp, trap
        self.tenant = tenant


Stage = Callable[[list[Envelope]], list[Envelope]]


class Pipeline:
    def __init__(self, stages: Sequence[tuple[str, Stage]]) -> None:
        self.stages = tuple(stages)

    def names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.stages)

    def __call__(self, batch: list[Envelope]) -> list[Envelope]:
        for _name, stage in self.stages:
            if not batch:
                break
            batch = stage(batch)
        return batch

    def feed(self, raw: list[tuple[str, bytes, float]]) -> None:
        """Entry point for MQTT intake: (topic, payload, arrival) tuples."""
        self([Envelope(t, p, a) for t, p, a in raw])
