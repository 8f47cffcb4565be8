"""Telemetry to the time-series database, as InfluxDB line protocol built by hand.

Lines are built here (building influxdb-client ``Point`` objects costs about three times as
much) and handed to the disk buffer (``tsdb_buffer.py``), which the intake commit writes before
the messages are acknowledged and a shipper thread sends to any server speaking the InfluxDB v2
write API (InfluxDB 2/3, VictoriaMetrics). Without a database the last few samples of each
device are kept in memory (``RecentSamples``) for the board.

Integers are written as floats so a metric keeps one field type whatever a device sends; string
metrics go to ``<measurement>_text`` as a tag (``line``). Tags are escaped per the line-protocol
rules, and labels named ``tenant`` or ``device`` are dropped: they cannot move a series.
"""

from __future__ import annotations

from collections import deque
from typing import Protocol

from agent import wire
from collector.metrics import Metrics

# Line protocol: in tag keys, tag values and field keys a backslash, comma, equals sign and
# space are escaped with a backslash (a bare trailing backslash would escape the separator
# after it); a newline cannot be escaped, so it becomes a space. Measurements: comma, space.
_TAG_ESCAPES = str.maketrans(
    {"\\": "\\\\", ",": r"\,", "=": r"\=", " ": r"\ ", "\n": " ", "\r": " "}
)
_MEASUREMENT_ESCAPES = str.maketrans({"\\": "\\\\", ",": r"\,", " ": r"\ ", "\n": " "})
RESERVED_TAGS = frozenset({"device", "tenant"})  # labels cannot overwrite who a series is


def tag(text: str) -> str:
    """A tag key or value (or a field key), escaped for line protocol."""
    return text.translate(_TAG_ESCAPES)


def line(measurement: str, tenant: str, msg: wire.Telemetry) -> str | None:
    """The lines of one report: tags tenant, device and the report's labels; ms timestamp.

    Numbers and booleans are fields of one line. A string metric is one more line, in
    ``<measurement>_text``, the string as its ``value`` tag and the field ``<metric>=1``: a
    time-series database that keeps only numbers (VictoriaMetrics turns string fields into 0)
    still keeps the text, as ``<measurement>_text_<metric>{value="..."}``."""
    if not msg.metrics:
        return None
    head = measurement.translate(_MEASUREMENT_ESCAPES)
    tags = f"device={tag(msg.device)},tenant={tag(tenant)}"
    if msg.labels:
        tags += "".join(
            f",{tag(k)}={tag(v)}"
            for k, v in sorted(msg.labels.items())
            if v and k not in RESERVED_TAGS
        )
    stamp = int(msg.ts.timestamp() * 1000)
    fields: list[str] = []
    texts: list[str] = []
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
            texts.append(f"{head}_text,{tags},value={tag(str(value)) or '-'} {name}=1.0 {stamp}")
    out = f"{head},{tags} {','.join(fields)} {stamp}" if fields else ""
    if texts:
        return "\n".join([out, *texts]) if out else "\n".join(texts)
    return out


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
