"""The fault script: what breaks when, in demo time, and the rules folder scaled to match.

Demo time runs ``speed`` times faster than the wall clock: the agents report every
``AGENT_INTERVAL_S / speed`` seconds, the script's steps and the rules' timers (``for``,
``within``, ``clear_after``) are divided by ``speed`` and so is the default follow-up. The SLA
targets are not: deadlines are computed by the policies in real time from the fault's real
onset, so a 30-minute response target stays 30 minutes (the desk's acknowledgement meets it).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from collector.config.durations import parse_duration
from collector.demo.fleet import Fleet

AGENT_INTERVAL_S = 180.0  # demo seconds between reports (three minutes, a common field setting)
FOLLOWUP_S = 600.0  # demo seconds of follow-up before a resolved ticket closes
SCRIPT_LENGTH_S = 3600.0  # the script fits in one demo hour
REPORTS_PER_S = 25.0  # the whole fleet's report rate at most (wall clock)
_TIMER_KEYS = frozenset({"for", "within", "clear_after"})

# A demo rule: a fault a customer reports by phone, logged against the device by the hotline.
PHONE_RULES = {
    "rules": [
        {
            "name": "phone_report",
            "fault": "reported_by_phone",
            "impact": "degraded",
            "description": "the hotline logged a customer's call against the device",
            "when": {"event": {"names": "phone_report", "clear_on": "phone_report_closed"}},
        }
    ]
}


def _seconds(text: str) -> str:
    value = round(float(parse_duration(text).seconds), 3)
    return f"{int(value) if value == int(value) else value}s"


def _scale(node: Any, speed: float) -> Any:
    if isinstance(node, dict):
        return {
            k: _seconds_scaled(v, speed) if k in _TIMER_KEYS else _scale(v, speed)
            for k, v in node.items()
        }
    if isinstance(node, list):
        return [_scale(v, speed) for v in node]
    return node


def _seconds_scaled(value: Any, speed: float) -> str:
    seconds = float(parse_duration(str(value)).seconds) / speed
    return _seconds(f"{max(seconds, 0.001):.3f}s")


def write_rules(source: Path, target: Path, speed: float) -> None:
    """The shipped rules folder with its timers scaled by ``speed``, plus the phone rule."""
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__", "*.py"))
    for path in sorted((target / "rules.d").glob("*.yaml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        header = f"# {path.name}, timers divided by {speed:g} for fleetdesk demo\n"
        path.write_text(header + yaml.safe_dump(_scale(data, speed), sort_keys=False))
    (target / "rules.d" / "demo-phone.yaml").write_text(yaml.safe_dump(PHONE_RULES))


@dataclass(frozen=True, slots=True)
class Step:
    at: float  # demo seconds after the start
    text: str
    action: Callable[[], None]


class Actions:
    """What a step can do to a device; implemented by the runner (threads, hosts)."""

    def set(self, device: str, **state: Any) -> None: ...
    def power_cut(self, device: str) -> None: ...
    def power_on(self, device: str, *, reboot: bool = True) -> None: ...
    def go_dark(self, device: str) -> None: ...
    def event(self, device: str, name: str, data: dict[str, Any]) -> None: ...


@dataclass(frozen=True, slots=True)
class Cast:
    """The devices the script breaks, chosen by role from the fleet."""

    fading: str  # a remote pump station's router (xian-integrator)
    runaway: str  # an MT-BOX (mtbox)
    serial: str  # a substation DTU (shanghai-energy)
    power: str  # a shop router with a power monitor (wthink)
    dark_site: str  # a pump station (xian-integrator)
    maint_site: str  # a monitoring site (nanjing-instruments)
    maint_device: str
    flapping: str  # a shop router (wthink)
    phone: str  # a survey instrument (nanjing-instruments)


def cast(fleet: Fleet) -> Cast:
    def site_of(customer: str, n: int) -> str:
        sites = sorted({d.site for d in fleet.of(customer)}, key=lambda s: int(s.rsplit("-", 1)[1]))
        return sites[min(n, len(sites) - 1)]

    def router(site: str) -> str:
        return f"{site}-gw"

    def first(customer: str, cls: str, avoid: set[str]) -> str:
        devices = fleet.of(customer, cls)
        return next((d.id for d in devices if d.site not in avoid), devices[0].id)

    dark, fading = site_of("acme-water", 0), site_of("acme-water", 1)
    maint = site_of("survey-nj", 0)
    shops = (site_of("wthink-retail", 0), site_of("wthink-retail", 1))
    return Cast(
        fading=router(fading),
        runaway=first("mt-cloud", "cloudbox", set()),
        serial=first("east-grid", "dtu", set()),
        power=router(shops[0]),
        dark_site=dark,
        maint_site=maint,
        maint_device=router(maint),
        flapping=router(shops[1]),
        phone=first("survey-nj", "instrument", {maint}),
    )


def intervals(c: Cast, fleet: Fleet, speed: float) -> dict[str, float]:
    """Each device's reporting interval in wall-clock seconds.

    The script's players report every ``AGENT_INTERVAL_S`` demo seconds (what their faults
    need to be seen in time); the rest of the fleet reports less often when it is large, so
    that the fleet sends at most ``REPORTS_PER_S`` reports a second in all: one process on a
    shared two-core machine keeps up with that.
    """
    fast = max(1.0, AGENT_INTERVAL_S / speed)
    slow = max(fast, len(fleet.agents) / REPORTS_PER_S)
    players = {c.fading, c.runaway, c.serial, c.power, c.flapping, c.phone, c.maint_device}
    return {d.id: fast if d.id in players else slow for d in fleet.devices}


def maintenance(c: Cast, start: datetime, speed: float) -> list[dict[str, str]]:
    """The window announced in the inventory: demo minutes 20 to 35 at the maintenance site."""
    begin = start + timedelta(seconds=1200 / speed)
    end = start + timedelta(seconds=2100 / speed)
    iso = "%Y-%m-%dT%H:%M:%S.%fZ"
    return [
        {
            "site": c.maint_site,
            "start": begin.astimezone(UTC).strftime(iso),
            "end": end.astimezone(UTC).strftime(iso),
        }
    ]


def _each(action: Callable[[str], None], devices: list[str]) -> None:
    for device in devices:
        action(device)


def steps(c: Cast, fleet: Fleet, act: Actions) -> list[Step]:
    dark = [d.id for d in fleet.sites[c.dark_site]]
    out = [
        Step(180, f"{c.fading}: cellular signal starts fading (remote pump station)",
             lambda: act.set(c.fading, rsrp=-104.0)),
        Step(420, f"{c.fading}: signal down to -118 dBm",
             lambda: act.set(c.fading, rsrp=-118.0)),
        Step(240, f"{c.runaway}: CPU runaway (a stuck process at 99 %)",
             lambda: act.set(c.runaway, cpu_busy=0.99)),
        Step(360, f"{c.serial}: DTU serial cable pulled",
             lambda: act.set(c.serial, serial_cable=False)),
        Step(600, f"{c.power}: power cut; the router sends its dying gasp",
             lambda: act.power_cut(c.power)),
        Step(900, f"site {c.dark_site} goes dark ({len(dark)} devices: fibre and mains cut)",
             lambda: _each(act.go_dark, dark)),
        Step(1260, f"{c.maint_device}: offline for planned work (inside its maintenance window)",
             lambda: act.go_dark(c.maint_device)),
        Step(1500, f"{c.maint_device}: back after the planned work",
             lambda: act.power_on(c.maint_device, reboot=False)),
        Step(1800, f"{c.runaway}: process killed, CPU back to normal (recovery)",
             lambda: act.set(c.runaway, cpu_busy=0.1)),
        Step(1980, f"{c.phone}: customer phones the hotline: readings frozen",
             lambda: act.event(c.phone, "phone_report", {"caller": "site engineer"})),
        Step(2100, f"{c.power}: mains back, the router boots",
             lambda: act.power_on(c.power)),
        Step(2400, f"site {c.dark_site}: power and fibre restored",
             lambda: _each(act.power_on, dark)),
        Step(2700, f"{c.serial}: cable plugged back in",
             lambda: act.set(c.serial, serial_cable=True)),
    ]  # fmt: skip
    for n, at in enumerate(range(1200, 3000, 240)):  # the WAN link of a shop flaps
        up = n % 2 == 1
        text = f"{c.flapping}: WAN link {'up' if up else 'down'} (flapping)"
        out.append(Step(float(at), text, lambda up=up: act.set(c.flapping, wan_up=up)))  # type: ignore[misc]
    return sorted(out, key=lambda s: s.at)
