"""Telemetry to the time-series database, as InfluxDB line protocol built by hand.

Lines are built here (building ``Point`` objects costs about three times as much), joined into
one chunk per intake batch and handed to influxdb-client's batching ``WriteApi``, which writes
from its own thread with retries and back-off to any server speaking the InfluxDB v2 write API
(InfluxDB 2/3, VictoriaMetrics). The hand-over never blocks: lines waiting to be written are
counted, and past ``max_buffer_lines`` new lines are dropped and counted, so a database outage
costs history, never intake or rule evaluation. Without a database the last few samples of each
device are kept in memory (``RecentSamples``) for the board.

Integers are written as floats so a metric keeps one field type whatever a device sends; string
metrics go to ``<measurement>_text`` as a tag (``line``). Tags are escaped per the line-protocol
rules, and labels named ``tenant`` or ``device`` are dropped: they cannot move a series.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from typing import Any, Protocol

from agent import wire
from collector.config.collector import TsdbConfig
from collector.metrics import Metrics

log = logging.getLogger("fleetdesk.collector.tsdb")

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
    """Where telemetry lines go (the InfluxDB v2 write API client, or a test's stand-in)."""

    def submit(self, lines: list[str]) -> None: ...

    def close(self) -> None: ...

    @property
    def backlog(self) -> int: ...


class InfluxWriter:
    """influxdb-client's batching writer behind a bounded, counted hand-over."""

    def __init__(self, cfg: TsdbConfig, metrics: Metrics) -> None:
        from influxdb_client.client.influxdb_client import InfluxDBClient
        from influxdb_client.client.write_api import WriteOptions
        from influxdb_client.domain.write_precision import WritePrecision

        assert cfg.url is not None
        self.cfg = cfg
        self.metrics = metrics
        self._lock = threading.Lock()
        self._backlog = 0
        self._sent: deque[tuple[float, int]] = deque()  # (hand-over time, lines) per chunk
        self._precision = WritePrecision.MS
        self._client = InfluxDBClient(
            url=cfg.url, token=cfg.token or "none", org=cfg.org, timeout=10_000
        )
        self._api = self._client.write_api(
            write_options=WriteOptions(
                batch_size=cfg.batch_size,
                flush_interval=cfg.flush_interval_ms,
                jitter_interval=0,
                retry_interval=cfg.retry_interval_ms,
                max_retries=cfg.max_retries,
                max_retry_delay=min(30_000, cfg.max_retry_time_ms),
                max_retry_time=cfg.max_retry_time_ms,
                exponential_base=2,
                max_close_wait=10_000,
            ),
            success_callback=self._written,
            error_callback=self._failed,
            retry_callback=self._retrying,
        )

    @property
    def backlog(self) -> int:
        return self._backlog

    def submit(self, lines: list[str]) -> None:
        with self._lock:
            room = self.cfg.max_buffer_lines - self._backlog
            if len(lines) > room:  # the buffer is full: keep what fits, count the rest
                self.metrics.tsdb_lines.labels("dropped").inc(len(lines) - max(room, 0))
                lines = lines[: max(room, 0)]
                if not lines:
                    return
            record = "\n".join(lines).encode()
            n = record.count(b"\n") + 1  # a report with string metrics has more than one line
            self._backlog += n
            self._sent.append((time.monotonic(), n))
        self.metrics.tsdb_backlog.set(self._backlog)
        self._api.write(
            bucket=self.cfg.bucket,
            org=self.cfg.org,
            record=record,
            write_precision=self._precision,  # type: ignore[arg-type]  # a str enum member
        )

    def _settle(self, data: Any, outcome: str) -> None:
        n = (data.count(b"\n") if isinstance(data, bytes) else str(data).count("\n")) + 1
        now = time.monotonic()
        with self._lock:
            self._backlog = max(0, self._backlog - n)
            left, first = n, None
            while left > 0 and self._sent:
                at, lines = self._sent.popleft()
                first = at if first is None else first
                left -= lines
        self.metrics.tsdb_backlog.set(self._backlog)
        self.metrics.tsdb_lines.labels(outcome).inc(n)
        if outcome == "written" and first is not None:
            self.metrics.tsdb_write_seconds.observe(now - first)

    def _written(self, _conf: Any, data: Any) -> None:
        self._settle(data, "written")

    def _failed(self, _conf: Any, data: Any, exc: BaseException) -> None:
        log.warning("TSDB write failed, lines dropped: %s", str(exc).splitlines()[0][:200])
        self._settle(data, "failed")

    def _retrying(self, _conf: Any, _data: Any, exc: BaseException) -> None:
        log.info("TSDB write will be retried: %s", str(exc).splitlines()[0][:200])

    def close(self) -> None:
        """Flush what is buffered (waiting at most ``max_close_wait``), then disconnect."""
        self._api.close()  # type: ignore[no-untyped-call]
        self._client.close()  # type: ignore[no-untyped-call]


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
