"""A simulated host per device: the files the agent's probes read, and a stand-in ``mmcli``.

The probes read ``<root>/proc/stat``, ``/proc/meminfo``, ``/sys/class/net/*``, the thermal
zones, ``/dev/ttyS1`` and ``/proc/<pid>/fd`` exactly as on a gateway (the agent's
``host_root``). The fault script changes the state here (``cpu_busy``, ``rsrp``, ``wan_up``,
``serial_cable``); :meth:`SimHost.tick` writes it out once per agent interval.
"""

from __future__ import annotations

import json
import os
import random
import stat
from dataclasses import dataclass, field
from pathlib import Path

# mmcli -J -m any [--signal-get]; --signal-setup=N succeeds silently. Two files per modem.
MMCLI = """#!/bin/sh
dir=$(dirname "$0")/../modem
for a in "$@"; do
  case "$a" in
    --signal-get) exec cat "$dir/signal.json" ;;
    --signal-setup=*) exit 0 ;;
  esac
done
exec cat "$dir/modem.json"
"""

JIFFIES = 100  # per second and CPU, as USER_HZ on Linux


def _write(path: Path, text: str, cache: dict[Path, str] | None = None) -> None:
    """Replace the file (a probe never reads half of one); unchanged text is not written."""
    if cache is not None:
        if cache.get(path) == text:
            return
        cache[path] = text
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


@dataclass
class SimHost:
    root: Path
    interfaces: tuple[str, ...] = ("br-lan",)
    cellular: bool = False
    serial: bool = False
    tech: str = "lte"
    rng: random.Random = field(default_factory=random.Random)
    # the state the fault script changes
    cpu_busy: float = 0.12
    mem_used: float = 0.4
    temp_c: float = 48.0
    rsrp: float = -92.0
    wan_up: bool = True
    serial_cable: bool = True
    booted_at: float = 0.0
    _jiffies: list[int] = field(default_factory=lambda: [0, 0])  # busy, idle
    _written: dict[Path, str] = field(default_factory=dict)  # what the files hold now

    def create(self, now: float) -> None:
        self.booted_at = now - self.rng.randint(3600, 90 * 86400)
        for name in ("proc", "sys/class/thermal/thermal_zone0", "dev", "bin", "modem"):
            (self.root / name).mkdir(parents=True, exist_ok=True)
        _write(self.root / "proc/loadavg", "0.10 0.12 0.09 1/80 1234\n")
        for iface in self.interfaces:
            folder = self.root / "sys/class/net" / iface
            (folder / "statistics").mkdir(parents=True, exist_ok=True)
            _write(folder / "flags", "0x1003\n")
            _write(folder / "carrier", "1\n")
        if self.cellular:
            mmcli = self.root / "bin/mmcli"
            mmcli.write_text(MMCLI)
            mmcli.chmod(mmcli.stat().st_mode | stat.S_IXUSR)
        if self.serial:
            (self.root / "dev/ttyS1").write_text("")
        self.tick(now)

    @property
    def mmcli(self) -> str:
        return str(self.root / "bin/mmcli")

    def reboot(self, now: float) -> None:
        self.booted_at = now

    def tick(self, now: float) -> None:
        """Write the current state (counters move as time passes)."""
        busy = min(0.995, max(0.0, self.cpu_busy + self.rng.uniform(-0.03, 0.03)))
        step = 2 * JIFFIES * 5  # two CPUs, ~5 s between ticks: only the share matters
        self._jiffies[0] += round(step * busy)
        self._jiffies[1] += round(step * (1 - busy))
        b, i = self._jiffies
        _write(self.root / "proc/stat", f"cpu  {b} 0 0 {i} 0 0 0 0 0 0\n")
        _write(self.root / "proc/uptime", f"{max(1.0, now - self.booted_at):.2f} 100.00\n")
        total = 262144
        avail = round(total * (1 - self.mem_used))
        w = self._written
        _write(self.root / "proc/meminfo", f"MemTotal: {total} kB\nMemAvailable: {avail} kB\n", w)
        temp = f"{round(self.temp_c * 1000)}\n"
        _write(self.root / "sys/class/thermal/thermal_zone0/temp", temp, w)
        for iface in self.interfaces:
            folder = self.root / "sys/class/net" / iface
            up = self.wan_up or not iface.startswith(("wan", "wwan"))
            _write(folder / "operstate", "up\n" if up else "down\n", w)
            for counter in ("rx_bytes", "tx_bytes"):  # traffic: a byte count per demo second
                _write(folder / "statistics" / counter, f"{round(now) % 10**12}\n", w)
        if self.cellular:
            self._modem()
        if self.serial:
            self._serial()

    def _modem(self) -> None:
        rsrp = self.rsrp
        quality = max(0, min(100, round((rsrp + 125) * 2)))
        techs = ["lte", "5gnr"] if self.tech == "nr5g-nsa" else ["lte"]
        modem = {
            "modem": {
                "generic": {
                    "signal-quality": {"value": str(quality), "recent": "yes"},
                    "access-technologies": techs,
                    "state": "connected" if rsrp > -125 else "searching",
                },
                "3gpp": {"operator-name": "China Mobile", "registration-state": "home"},
            }
        }
        signal = {
            "modem": {
                "signal": {
                    "lte": {
                        "rsrp": f"{rsrp:.2f}",
                        "rsrq": f"{-8 - (-(rsrp + 90) / 4):.2f}",
                        "rssi": f"{rsrp + 25:.2f}",
                        "snr": f"{max(-5.0, 20 + (rsrp + 90) / 2):.2f}",
                    }
                }
            }
        }
        _write(self.root / "modem/modem.json", json.dumps(modem), self._written)
        _write(self.root / "modem/signal.json", json.dumps(signal), self._written)

    def _serial(self) -> None:
        """The DTU's serial port: held open by its protocol process while the cable is in.

        Pulling the cable is what a USB serial adapter does: the node and the handle go away.
        """
        node = self.root / "dev/ttyS1"
        fd_dir = self.root / "proc/4242/fd"
        link = fd_dir / "3"
        if self.serial_cable:
            node.touch()
            fd_dir.mkdir(parents=True, exist_ok=True)
            if not link.is_symlink():
                link.symlink_to("/dev/ttyS1")
        else:
            node.unlink(missing_ok=True)
            link.unlink(missing_ok=True)
