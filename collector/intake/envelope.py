"""One arrival at the collector, as it travels down the pipeline."""

from __future__ import annotations

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
