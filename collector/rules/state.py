"""What the engine remembers between inputs, as typed objects: what a snapshot saves and
restores (``snapshot``). Timers are not part of it: they follow from it and are re-armed."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from collector.rules.evaluators import Conditions, Plan
from collector.rules.faults import Fault, Hold
from collector.rules.inventory import Device
from collector.rules.maintenance import MaintenanceBook
from collector.rules.ruleset import Rule


class KindState:
    """One fault kind on one device: its active condition instances and what was decided."""

    __slots__ = ("active", "detail", "fault", "held", "rule")

    def __init__(self, rule: Rule) -> None:
        self.rule = rule  # the rule that activated it first: name and impact
        self.active: dict[str, float] = {}  # instance key -> onset
        self.fault: Fault | None = None  # the open fault, once raised
        self.held: Hold | None = None  # why it is not raised (yet)
        self.detail: Mapping[str, Any] | None = None

    @property
    def onset(self) -> float:
        return min(self.active.values())


class DeviceState(Conditions):
    """Everything the engine remembers about one device; kept small (see bench/rules.py)."""

    __slots__ = (
        "armed",
        "dev",
        "flapping",
        "flaps",
        "gasp_at",
        "interval",
        "kinds",
        "last_seen",
        "last_ts",
        "plan",
    )

    def __init__(self, dev: Device, plan: Plan) -> None:
        super().__init__()
        self.dev = dev
        self.plan = plan  # the compiled rules for its class, model and labels
        self.interval = float(dev.interval_s)
        self.last_seen = 0.0  # arrival of the last report (engine time)
        self.last_ts = float("-inf")  # the newest sample timestamp evaluated
        self.armed = False  # an absence timer is pending
        self.gasp_at: float | None = None  # power loss announced, not yet back
        self.kinds: dict[str, KindState] = {}  # fault kind -> what is active and decided
        self.flaps: dict[str, list[float]] | None = None  # kind -> recent opening instants
        self.flapping: dict[str, Fault] | None = None  # kind -> open flapping fault


class EngineState:
    """The devices, the site faults, the maintenance windows and the engine's time."""

    __slots__ = ("devices", "maintenance", "now", "site_cleared", "site_faults")

    def __init__(self) -> None:
        self.devices: dict[str, DeviceState] = {}
        self.maintenance = MaintenanceBook()
        self.site_faults: dict[str, Fault] = {}  # site -> its open outage fault
        self.site_cleared: dict[str, float] = {}  # when each site's last outage ended
        self.now: float | None = None  # the instant of the last input or tick

    def open_faults(self) -> list[Fault]:
        faults: list[Fault] = []
        for st in self.devices.values():
            faults.extend(ks.fault for ks in st.kinds.values() if ks.fault is not None)
            if st.flapping:
                faults.extend(st.flapping.values())
        faults.extend(self.site_faults.values())
        return faults

    def held(self) -> dict[str, dict[str, Hold]]:
        """Active faults held back, by device and kind, with the reason."""
        out: dict[str, dict[str, Hold]] = {}
        for name, st in self.devices.items():
            for kind, ks in st.kinds.items():
                if ks.held is not None and ks.active:
                    out.setdefault(name, {})[kind] = ks.held
        return out
