"""Serial link probe for DTUs: is the port there and held open, how many bytes moved, and how
long since the last activity.

- ``serial_present``: the device node exists; ``serial_open``: some process holds it open
  (found through /proc/<pid>/fd); ``serial_up`` is both. A configured port that is missing
  (an unplugged USB DTU) is reported as down, not as unavailable: that is the fault to see.
- ``serial_rx_bytes`` / ``serial_tx_bytes``: the UART counters of /proc/tty/driver/serial
  (8250-class ports, readable by root).
- ``serial_idle_s``: seconds since the counters last moved or the kernel last stamped the
  device node's access/modify time (it does so on reads and writes).
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable
from pathlib import Path

from agent.probes.base import Probe, ProbeResult, Reading, SlotRecord, host_path, read_text
from agent.wire import MetricValue

_UART_RE = re.compile(r"^\s*(\d+):.*?\btx:(\d+)\s+rx:(\d+)", re.MULTILINE)


def parse_uart_counters(text: str, index: int) -> tuple[int, int] | None:
    """(rx, tx) bytes of line ``index`` of /proc/tty/driver/serial."""
    for match in _UART_RE.finditer(text):
        if int(match.group(1)) == index:
            return int(match.group(3)), int(match.group(2))
    return None


def port_index(port: str) -> int | None:
    """3 for /dev/ttyS3 (the line in /proc/tty/driver/serial)."""
    match = re.fullmatch(r".*/ttyS(\d+)", port)
    return int(match.group(1)) if match else None


def held_open(proc: Path, targets: set[str]) -> bool:
    """Whether any process has one of ``targets`` among its open files."""
    try:
        pids = [p for p in proc.iterdir() if p.name.isdigit()]
    except OSError:
        return False
    for pid in pids:
        try:
            fds = list((pid / "fd").iterdir())
        except OSError:  # gone, or another user's process
            continue
        for fd in fds:
            try:
                if os.readlink(fd) in targets:
                    return True
            except OSError:
                continue
    return False


class SerialProbe(SlotRecord):
    __slots__ = ("port", "root", "clock", "name", "_counters", "_moved_at")  # noqa: RUF023
    _hidden = ("_counters", "_moved_at")

    def __init__(
        self,
        port: str,
        root: Path = Path("/"),
        clock: Callable[[], float] = time.time,
        name: str = "serial",
        _counters: tuple[int, int] | None = None,
        _moved_at: float | None = None,
    ) -> None:
        self.port = port
        self.root = root
        self.clock = clock
        self.name = name
        self._counters = _counters
        self._moved_at = _moved_at

    def collect(self, now: float) -> ProbeResult:
        node = host_path(self.root, self.port)
        try:
            stat = node.stat()
        except OSError:
            return Reading({"serial_present": False, "serial_open": False, "serial_up": False})
        wall = self.clock()
        targets = {self.port, os.path.realpath(self.port)}
        is_open = held_open(host_path(self.root, "/proc"), targets)
        metrics: dict[str, MetricValue] = {
            "serial_present": True,
            "serial_open": is_open,
            "serial_up": is_open,
        }
        last = max(stat.st_atime, stat.st_mtime)
        index = port_index(self.port)
        text = read_text(host_path(self.root, "/proc/tty/driver/serial"))
        counters = parse_uart_counters(text, index) if text and index is not None else None
        if counters is not None:
            metrics["serial_rx_bytes"], metrics["serial_tx_bytes"] = counters
            if self._counters is not None and counters != self._counters:
                self._moved_at = wall
            self._counters = counters
        if self._moved_at is not None:
            last = max(last, self._moved_at)
        metrics["serial_idle_s"] = max(0, int(wall - last))
        return Reading(metrics)


def build(port: str, root: Path) -> Probe:
    return SerialProbe(port, root)
