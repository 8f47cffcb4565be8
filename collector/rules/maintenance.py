"""Why a fault is held back, absorbed or exempt: each question answered once, with a reason.

A *hold* keeps a fault from being raised while it lasts; a fault still active when its hold
ends is raised then, its clock starting at that instant. An *exemption* raises and records the
fault with no SLA clock.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from collector.rules.inputs import Maintenance


class Hold(enum.StrEnum):
    MAINTENANCE = "maintenance"  # inside an announced maintenance window
    PARENT_OFFLINE = "parent_offline"  # the device it sits behind is offline (root cause only)
    SITE_OUTAGE = "site_outage"  # part of its site's outage fault
    FLAPPING = "flapping"  # part of a flapping fault for the same kind


@dataclass(frozen=True, slots=True)
class Window:
    id: str
    start: float
    end: float
    device: str | None
    site: str | None

    @classmethod
    def of(cls, window_id: str, m: Maintenance) -> Window:
        return cls(window_id, m.start.timestamp(), m.end.timestamp(), m.device, m.site)

    def covers(self, device: str, site: str | None, t: float) -> bool:
        if not self.start <= t < self.end:
            return False
        return self.device == device if self.device is not None else self.site == site


class MaintenanceBook:
    """The announced windows; answers "is this device in maintenance at t?"."""

    def __init__(self) -> None:
        self.windows: dict[str, Window] = {}
        self._next = 0

    def add(self, m: Maintenance) -> Window:
        self._next += 1
        window = Window.of(f"m{self._next}", m)
        self.windows[window.id] = window
        return window

    def restore(self, window: Window) -> None:
        self.windows[window.id] = window
        self._next = max(self._next, int(window.id.removeprefix("m") or 0))

    def prune(self, now: float, keep_s: float = 86_400.0) -> None:
        """Forget windows that ended long ago (kept a while to date late-confirmed faults)."""
        for window_id in [w.id for w in self.windows.values() if w.end + keep_s < now]:
            del self.windows[window_id]

    def mutes(self, device: str, site: str | None, t: float) -> Hold | None:
        for window in self.windows.values():
            if window.covers(device, site, t):
                return Hold.MAINTENANCE
        return None

    def end_of(self, device: str, site: str | None, t: float) -> float | None:
        """The latest end among the windows covering the device at ``t``."""
        ends = [w.end for w in self.windows.values() if w.covers(device, site, t)]
        return max(ends) if ends else None
