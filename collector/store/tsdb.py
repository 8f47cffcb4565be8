"""Telemetry to the time-series database, as InfluxDB line protocol built by hand.

Lines are built here (building influxdb-client ``Point`` objects costs about three times as
much) and handed to the disk buffer (``tsdb_buffer.py``), which the intake commit writes before
the messages are acknowledged and a shipper thread sends to any server speaking the InfluxDB v2
write API (InfluxDB 2/3, VictoriaMetrics). Without a database the last few samples of each
device are kept in memory (``RecentSamples``) for the board.

Integers are written as floats so a metric keeps one field type whatever a device sends.
"""

from __future__ import annotations

from collections import deque
from typing import Protocol

from agent import wire
from collector.metrics import Metrics

_TAG_ESCAPES = str.maketrans({",": r"\,", "=": r"\=", " ": r"\ ", "\n": " "})


def _string(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ") + '"'


def line(measurement: str, tenant: str, msg: wire.Telemetry) -> str | None:
    """One line for one report: tags tenant, device and the report's labels; ms timestamp."""
    if not msg.metrics:
        return None
    tags = f"{measurement},device={msg.device},tenant={tenant}"
    if msg.labels:
        tags += "".join(
            f",{k}={v.translate(_TAG_ESCAPES)}" for k, v in sorted(msg.labels.items()) if v
        )
    fields: list[str] = []
    append = fields.append
    for name, value in msg.metrics.items():  # hot path: exact type checks, no helper calls
        kind = value.__class__
        if kind is float:
            append(f"{name}={value!r}")
        elif kind is bool:
            append(f"{name}=true" if value else f"{name}=false")
        elif kind is int:
            append(f"{name}={value}.0")
        else:
            append(f"{name}={_string(str(value))}")
    return f"{tags} {','.join(fields)} {int(msg.ts.timestamp() * 1000)}"


class TelemetryWriter(Protocol):
    """Where telemetry lines go (the disk buffer, or a test's stand-in)."""

    def submit(self, lines: list[str]) -> None: ...

    def close(self) -> None: ...

    @property
    def backlog(self) -> int: ...


class RecentSamples:
    """Without a database: the last ``size`` reports of each device, in memory."""

    def __init__(self, size: int, metrics: Metrics) -> None:
        self.size = size
        self.metrics = metrics
        self.by_device: dict[str, deque[tuple[float, dict[str, wire.MetricValue]]]] = {}

    def add(self, msg: wire.Telemetry) -> None:
        ring = self.by_device.get(msg.device)
        if ring is None:
            ring = self.by_device[msg.device] = deque(maxlen=self.size)
        ring.append((msg.ts.timestamp(), msg.metrics))

    def latest(self, device: str) -> list[tuple[float, dict[str, wire.MetricValue]]]:
        return list(self.by_device.get(device, ()))
