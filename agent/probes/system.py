"""System probe: uptime, load, CPU busy %, memory, disk and the hottest thermal zone."""

from __future__ import annotations

import os
from pathlib import Path

from agent.probes.base import (
    Probe,
    ProbeResult,
    Reading,
    Reason,
    SlotRecord,
    Unavailable,
    host_path,
    read_text,
)
from agent.wire import MetricValue


def parse_cpu_times(stat: str) -> tuple[int, int] | None:
    """(busy, total) jiffies from the ``cpu`` line of /proc/stat."""
    for line in stat.splitlines():
        if line.startswith("cpu "):
            values = [int(v) for v in line.split()[1:]]
            idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
            total = sum(values[:8])  # guest time is already inside user/nice
            return total - idle, total
    return None


def cpu_percent(before: tuple[int, int], after: tuple[int, int]) -> float | None:
    busy, total = after[0] - before[0], after[1] - before[1]
    if total <= 0:
        return None
    return round(100.0 * busy / total, 1)


def parse_meminfo(text: str) -> float | None:
    """Memory in use, in %, from /proc/meminfo (total - available)."""
    fields: dict[str, int] = {}
    for line in text.splitlines():
        key, _, rest = line.partition(":")
        parts = rest.split()
        if parts and parts[0].isdigit():
            fields[key] = int(parts[0])
    total = fields.get("MemTotal")
    if not total:
        return None
    available = fields.get("MemAvailable")
    if available is None:  # kernels before 3.14
        available = fields.get("MemFree", 0) + fields.get("Buffers", 0) + fields.get("Cached", 0)
    return round(100.0 * (total - available) / total, 1)


def thermal_max(root: Path) -> float | None:
    """The highest temperature of /sys/class/thermal/thermal_zone*/temp, in °C."""
    base = host_path(root, "/sys/class/thermal")
    hottest = None
    for zone in sorted(base.glob("thermal_zone*")):
        text = read_text(zone / "temp")
        if text is None or not text.strip().lstrip("-").isdigit():
            continue
        celsius = int(text.strip()) / 1000.0  # millidegrees
        if -60 < celsius < 200 and (hottest is None or celsius > hottest):
            hottest = celsius
    return None if hottest is None else round(hottest, 1)


class SystemProbe(SlotRecord):
    __slots__ = ("root", "disk_path", "name", "_cpu")  # noqa: RUF023 (field order, for repr)
    _hidden = ("_cpu",)

    def __init__(
        self,
        root: Path = Path("/"),
        disk_path: str = "/",
        name: str = "system",
        _cpu: tuple[int, int] | None = None,
    ) -> None:
        self.root = root
        self.disk_path = disk_path
        self.name = name
        self._cpu = _cpu

    def collect(self, now: float) -> ProbeResult:
        metrics: dict[str, MetricValue] = {}
        uptime = read_text(host_path(self.root, "/proc/uptime"))
        if uptime:
            metrics["uptime_s"] = int(float(uptime.split()[0]))
        load = read_text(host_path(self.root, "/proc/loadavg"))
        if load:
            metrics["load1"] = float(load.split()[0])
        stat = read_text(host_path(self.root, "/proc/stat"))
        times = parse_cpu_times(stat) if stat else None
        if times is not None:
            if self._cpu is not None and (pct := cpu_percent(self._cpu, times)) is not None:
                metrics["cpu_pct"] = pct
            self._cpu = times
        mem = read_text(host_path(self.root, "/proc/meminfo"))
        if mem and (used := parse_meminfo(mem)) is not None:
            metrics["mem_used_pct"] = used
        try:
            disk = os.statvfs(host_path(self.root, self.disk_path))
            if disk.f_blocks:
                used_blocks = disk.f_blocks - disk.f_bfree
                # Like df: the share of what non-root users could have, reserved blocks apart.
                usable = used_blocks + disk.f_bavail
                metrics["disk_used_pct"] = round(100.0 * used_blocks / max(usable, 1), 1)
        except OSError:
            pass
        if (temp := thermal_max(self.root)) is not None:
            metrics["temp_c"] = temp
        if not metrics:
            return Unavailable(Reason.NO_DATA, f"nothing readable under {self.root}/proc")
        return Reading(metrics)


def build(root: Path, disk_path: str) -> Probe:
    return SystemProbe(root, disk_path)
