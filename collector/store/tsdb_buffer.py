"""Telemetry goes to disk first, then to the time-series database: nothing acknowledged is lost.

Like Vector's disk buffer: every line-protocol line the pipeline produces is appended to a
segment file (``seg-<n>.lp``) in the buffer folder by the intake committer, in the same step
that commits the batch's registry rows and fault events and before the batch's MQTT messages
are acknowledged. A shipper thread reads the segments in order and POSTs them to the InfluxDB
v2 write API (InfluxDB 2/3, VictoriaMetrics); each accepted chunk moves a cursor (``cursor``,
replaced atomically) and a fully shipped segment is deleted. After a crash the shipper resumes
at the cursor: a chunk written but not yet recorded is sent again (at-least-once; both
databases keep one point per series and timestamp, so the repeat is harmless).

The buffer is bounded (``tsdb.max_buffer_lines``). When it is full, ``append`` raises
``BufferFull``: the committer keeps the batch and stops acknowledging, so the broker keeps the
backlog until the database catches up. Writes survive a collector crash (they are in the
kernel's page cache once ``os.write`` returns); ``fsync`` is not called per batch, as SQLite in
WAL mode with ``synchronous=NORMAL`` does not, so a host power cut may lose the last moments.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path

import httpx

from collector.config.collector import TsdbConfig
from collector.metrics import Metrics

log = logging.getLogger("fleetdesk.collector.tsdb")

SEGMENT_BYTES = 16 * 1024 * 1024
# One write carries what is buffered, up to this many lines (and 1 MiB): a backlog is shipped in
# a few large requests, not thousands of small ones (each costs the GIL a millisecond).
WRITE_LINES = 20_000


class BufferFull(Exception):
    """The disk buffer holds ``max_buffer_lines`` unshipped lines: stop acknowledging."""


def _seg_name(n: int) -> str:
    return f"seg-{n:012d}.lp"


class DiskBuffer:
    """Segments of lines on disk, the shipper's cursor, and the lines not yet on disk.

    ``submit`` (the telemetry stage, event loop) only appends to a list; ``take`` and
    ``append`` (the committer, a worker thread) put them on disk; ``ship_once`` (the shipper
    thread) sends the oldest unshipped chunk."""

    def __init__(self, folder: Path, max_lines: int, metrics: Metrics) -> None:
        self.folder = folder
        self.max_lines = max_lines
        self.metrics = metrics
        folder.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self.pending: list[str] = []  # submitted, not yet on disk (the next commit takes them)
        self._disk_lines = 0  # on disk, not yet shipped
        self._disk_bytes = 0
        self._read_seg, self._read_off = self._load_cursor()
        segs = self._segments()
        self._write_seg = segs[-1] if segs else self._read_seg
        self._fd = -1
        for n in segs:
            path = self.folder / _seg_name(n)
            data = path.read_bytes()
            if n == segs[-1] and data and not data.endswith(b"\n"):
                # a crash mid-append: the partial tail was never acknowledged
                data = data[: data.rfind(b"\n") + 1]
                os.truncate(path, len(data))
            if n < self._read_seg:
                path.unlink()
                continue
            start = self._read_off if n == self._read_seg else 0
            self._disk_lines += data.count(b"\n", start)
            self._disk_bytes += max(0, len(data) - start)
        self._gauges()

    # ----------------------------------------------------------------- the pipeline's side

    def submit(self, lines: list[str]) -> None:
        self.pending += lines

    @property
    def backlog(self) -> int:
        """Lines not yet accepted by the database (in memory or on disk)."""
        return len(self.pending) + self._disk_lines

    def take(self) -> list[str]:
        lines, self.pending = self.pending, []
        return lines

    def append(self, lines: list[str]) -> None:
        """Put lines on disk (raises ``BufferFull`` or ``OSError``; nothing is half-written)."""
        if not lines:
            return
        with self._lock:
            if self._disk_lines + len(lines) > self.max_lines and self._disk_lines > 0:
                raise BufferFull(
                    f"tsdb disk buffer full ({self._disk_lines} lines unshipped, "
                    f"bound {self.max_lines}): not acknowledging, the broker keeps the backlog"
                )
            data = ("\n".join(lines) + "\n").encode()
            if self._fd < 0 or os.fstat(self._fd).st_size >= SEGMENT_BYTES:
                self._rotate()
            size = os.fstat(self._fd).st_size
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(self._fd, view) :]
            except OSError:
                os.ftruncate(self._fd, size)  # disk full: drop the partial chunk, retry later
                raise
            self._disk_lines += len(lines)
            self._disk_bytes += len(data)
            self._cond.notify_all()
        self._gauges()

    def _rotate(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._write_seg += 1
        path = self.folder / _seg_name(self._write_seg)
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o640)

    # ----------------------------------------------------------------- the shipper's side

    def wait_for(self, lines: int, timeout: float) -> None:
        with self._cond:
            if self._disk_lines < lines:
                self._cond.wait(timeout)

    def peek(self, most: int) -> tuple[bytes, int]:
        """Up to ``most`` lines from the cursor (one segment at most): (data, line count)."""
        with self._lock:
            while True:
                path = self.folder / _seg_name(self._read_seg)
                try:
                    with path.open("rb") as fh:
                        fh.seek(self._read_off)
                        data = fh.read(1 << 20)
                except FileNotFoundError:
                    data = b""
                if data or self._read_seg >= self._write_seg:
                    break
                path.unlink(missing_ok=True)  # shipped to its end and no longer written
                self._read_seg, self._read_off = self._read_seg + 1, 0
                self._save_cursor()
        end, count = 0, 0
        while count < most:
            nl = data.find(b"\n", end)
            if nl < 0:
                break
            end, count = nl + 1, count + 1
        return data[:end], count

    def advance(self, nbytes: int, lines: int) -> None:
        with self._lock:
            self._read_off += nbytes
            self._disk_lines -= lines
            self._disk_bytes -= nbytes
            self._save_cursor()
        self._gauges()

    def _load_cursor(self) -> tuple[int, int]:
        try:
            seg, off = (self.folder / "cursor").read_text().split()
            return int(seg), int(off)
        except (FileNotFoundError, ValueError):
            segs = self._segments()
            return (segs[0] if segs else 0), 0

    def _save_cursor(self) -> None:
        tmp = self.folder / "cursor.tmp"
        tmp.write_text(f"{self._read_seg} {self._read_off}\n")
        tmp.replace(self.folder / "cursor")

    def _segments(self) -> list[int]:
        found = []
        for path in self.folder.glob("seg-*.lp"):
            try:
                found.append(int(path.stem[4:]))
            except ValueError:
                continue
        return sorted(found)

    def _gauges(self) -> None:
        self.metrics.tsdb_backlog.set(self._disk_lines)
        self.metrics.tsdb_buffer_bytes.set(self._disk_bytes)

    def close(self) -> None:
        with self._lock:
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1


class Shipper:
    """The thread that empties the disk buffer into the database, retrying until accepted.

    It writes once ``batch_size`` lines are waiting or ``flush_interval_ms`` after the first."""

    def __init__(self, buffer: DiskBuffer, cfg: TsdbConfig, metrics: Metrics) -> None:
        assert cfg.url is not None
        self.buffer = buffer
        self.cfg = cfg
        self.metrics = metrics
        self.failing: str | None = None  # why the last write failed (shown in /healthz)
        self._stop = threading.Event()
        self._url = f"{cfg.url.rstrip('/')}/api/v2/write"
        self._params = {"org": cfg.org, "bucket": cfg.bucket, "precision": "ms"}
        self._headers = {"content-type": "text/plain; charset=utf-8"}
        if cfg.token:
            self._headers["authorization"] = f"Token {cfg.token}"
        self._thread = threading.Thread(target=self._run, name="tsdb-shipper", daemon=True)

    def start(self) -> Shipper:
        self._thread.start()
        return self

    def stop(self, wait_s: float = 10.0) -> None:
        """Ship what is buffered for at most ``wait_s`` (the rest stays on disk), then stop."""
        deadline = time.monotonic() + wait_s
        while self.buffer.backlog - len(self.buffer.pending) > 0 and time.monotonic() < deadline:
            if self.failing is not None:
                break
            time.sleep(0.05)
        self._stop.set()
        self._thread.join(timeout=15)

    def _run(self) -> None:
        delay = self.cfg.retry_interval_ms / 1000
        with httpx.Client(timeout=10.0) as client:
            while not self._stop.is_set():
                self.buffer.wait_for(self.cfg.batch_size, self.cfg.flush_interval_ms / 1000)
                while not self._stop.is_set():
                    data, count = self.buffer.peek(WRITE_LINES)
                    if not count:
                        break
                    started = time.monotonic()
                    outcome = self._send(client, data)
                    if outcome is None:  # retry the same chunk
                        self._stop.wait(delay)
                        delay = min(30.0, delay * 2)
                        continue
                    delay = self.cfg.retry_interval_ms / 1000
                    self.buffer.advance(len(data), count)
                    self.metrics.tsdb_lines.labels(outcome).inc(count)
                    if outcome == "written":
                        self.metrics.tsdb_write_seconds.observe(time.monotonic() - started)

    def _send(self, client: httpx.Client, data: bytes) -> str | None:
        """``written``, ``failed`` (the database refused the data itself: it is dropped, counted
        and logged) or None (not reachable or overloaded: try again)."""
        try:
            response = client.post(
                self._url, params=self._params, content=data, headers=self._headers
            )
        except httpx.HTTPError as exc:
            self._failing(f"{type(exc).__name__}: {exc}".rstrip(": "))
            return None
        if response.status_code < 300:
            if self.failing is not None:
                log.info("TSDB writes succeed again")
            self.failing = None
            return "written"
        if response.status_code in (400, 413, 422):
            log.warning("TSDB refused lines: HTTP %d %s", response.status_code, response.text[:200])
            return "failed"
        self._failing(f"HTTP {response.status_code}")
        return None

    def _failing(self, reason: str) -> None:
        if self.failing is None:
            log.warning("TSDB write failed, kept on disk and retried: %s", reason[:200])
        self.failing = reason[:200]
