"""Announced maintenance windows: the maintenance hold and the after-the-fact exemption.

While a window covers a device, its faults are held back (``Hold.MAINTENANCE``); one still
active when the window ends is raised then. A window announced after it began makes open faults
whose onset lies inside it exempt (``Exemption.MAINTENANCE``): they owe no SLA.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from collector.rules.faults import Exemption, Fault, Hold
from collector.rules.inputs import Maintenance


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

    def exempts(self, fault: Fault, site: str | None = None) -> Exemption | None:
        """Whether this window, announced late, exempts an open fault (of a device on ``site``,
        or of the window's site itself): its onset lies inside the window."""
        if fault.exempt is not None:
            return None
        onset = fault.onset.timestamp()
        if fault.device is not None:
            inside = self.covers(fault.device, site, onset)
        else:
            inside = self.site is not None and self.start <= onset < self.end
        return Exemption.MAINTENANCE if inside else None


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

    def cancel(self, window_id: str, t: float) -> Window:
        """The window ends at ``t`` (when it would end later); KeyError for an unknown id."""
        window = self.windows[window_id]
        if window.end > t:
            window = self.windows[window_id] = replace(window, end=max(t, window.start))
        return window

    def prune(self, now: float, keep_s: float = 86_400.0) -> None:
        """Forget windows that ended long ago (kept a while to date late-confirmed faults)."""
        for window_id in [w.id for w in self.windows.values() if w.end + keep_s < now]:
            del self.windows[window_id]

    def holds(self, device: str, site: str | None, t: float) -> Hold | None:
        for window in self.windows.values():
            if window.covers(device, site, t):
                return Hold.MAINTENANCE
        return None

    def after_windows(self, device: str, site: str | None, onset: float, at: float) -> float:
        """An onset inside a window that has ended by ``at`` moves to the window's end."""
        for window in self.windows.values():
            if window.end <= at and window.covers(device, site, onset):
                onset = max(onset, window.end)
        return onset
