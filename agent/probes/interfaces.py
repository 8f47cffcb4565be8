"""Network interfaces probe: operational state, byte and error counters from /sys/class/net.

Emits ``link_down`` / ``link_up`` events (``data.iface``) when an interface changes state
between two collections.
"""

from __future__ import annotations

import fnmatch
from pathlib import Path

from agent.probes.base import (
    Probe,
    ProbeEvent,
    ProbeResult,
    Reading,
    Reason,
    SlotRecord,
    Unavailable,
    host_path,
    read_text,
)
from agent.wire import MetricValue, metric_name

MAX_INTERFACES = 48
_IFF_UP = 0x1
_COUNTERS = ("rx_bytes", "tx_bytes", "rx_errors", "tx_errors")


def is_up(operstate: str, flags: str | None, carrier: str | None) -> bool:
    """Operational state; "unknown" (loopback, tun, some PPP) counts when the link is up and
    has carrier."""
    state = operstate.strip()
    if state == "up":
        return True
    if state != "unknown" or flags is None:
        return False
    try:
        admin_up = int(flags.strip(), 16) & _IFF_UP != 0
    except ValueError:
        return False
    return admin_up and (carrier or "").strip() == "1"


def selected(name: str, include: tuple[str, ...], exclude: tuple[str, ...]) -> bool:
    if any(fnmatch.fnmatchcase(name, pattern) for pattern in exclude):
        return False
    return not include or any(fnmatch.fnmatchcase(name, pattern) for pattern in include)


class InterfacesProbe(SlotRecord):
    __slots__ = ("root", "include", "exclude", "name", "_last_up")  # noqa: RUF023 (field order)
    _hidden = ("_last_up",)

    def __init__(
        self,
        root: Path = Path("/"),
        include: tuple[str, ...] = (),
        exclude: tuple[str, ...] = ("lo",),
        name: str = "interfaces",
        _last_up: dict[str, bool] | None = None,
    ) -> None:
        self.root = root
        self.include = include
        self.exclude = exclude
        self.name = name
        self._last_up: dict[str, bool] = {} if _last_up is None else _last_up

    def collect(self, now: float) -> ProbeResult:
        base = host_path(self.root, "/sys/class/net")
        try:
            names = sorted(p.name for p in base.iterdir())
        except OSError:
            return Unavailable(Reason.NO_DATA, f"cannot list {base}")
        names = [n for n in names if selected(n, self.include, self.exclude)][:MAX_INTERFACES]
        if not names:
            return Unavailable(Reason.NO_DEVICE, "no interface matches the configuration")
        metrics: dict[str, MetricValue] = {}
        events = []
        for iface in names:
            folder = base / iface
            operstate = read_text(folder / "operstate")
            if operstate is None:
                continue
            up = is_up(operstate, read_text(folder / "flags"), read_text(folder / "carrier"))
            key = metric_name(iface)
            metrics[f"if_{key}_up"] = up
            for counter in _COUNTERS:
                text = read_text(folder / "statistics" / counter)
                if text is not None and text.strip().isdigit():
                    metrics[f"if_{key}_{counter}"] = int(text)
            before = self._last_up.get(iface)
            if before is not None and before != up:
                events.append(ProbeEvent("link_up" if up else "link_down", {"iface": iface}))
            self._last_up[iface] = up
        if not metrics:
            return Unavailable(Reason.NO_DATA, "no readable operstate")
        return Reading(metrics, tuple(events))


def build(root: Path, include: tuple[str, ...], exclude: tuple[str, ...]) -> Probe:
    return InterfacesProbe(root, include, exclude)
