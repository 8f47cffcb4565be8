"""JSON-able snapshots of the engine's state (``state.EngineState``), so that a restarted
collector keeps open faults and their clocks. Timers are not stored: the engine re-arms them
from the restored state (``Engine.restore``)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any, Final

from agent.wire import format_ts
from collector.rules.faults import Exemption, Fault, Hold, Impact, Scope
from collector.rules.inventory import Device, unassigned
from collector.rules.maintenance import MaintenanceBook, Window
from collector.rules.ruleset import Flapping, Offline, RuleSet
from collector.rules.state import DeviceState, EngineState, KindState
from collector.rules.timers import TimerKind, TimerQueue

STATE_VERSION: Final = 1


def export_state(state: EngineState) -> dict[str, Any]:
    devices: dict[str, Any] = {}
    for name, st in state.devices.items():
        entry: dict[str, Any] = {
            "interval": st.interval,
            "last_seen": st.last_seen,
            "last_ts": None if st.last_ts == float("-inf") else st.last_ts,
            "armed": st.armed,
            "gasp_at": st.gasp_at,
            "conds": {key: list(values) for key, values in st.conds.items()},
            "kinds": {
                kind: {
                    "rule": ks.rule.name,
                    "active": dict(ks.active),
                    "fault": fault_to_dict(ks.fault) if ks.fault else None,
                    "held": ks.held.value if ks.held else None,
                    "detail": dict(ks.detail) if ks.detail else None,
                }
                for kind, ks in st.kinds.items()
            },
            "expiry": dict(st.expiry) if st.expiry else None,
            "flaps": {k: list(v) for k, v in st.flaps.items()} if st.flaps else None,
            "flapping": {k: fault_to_dict(f) for k, f in (st.flapping or {}).items()},
        }
        if not st.dev.assigned:
            entry["unassigned"] = {
                "model": st.dev.model,
                "labels": dict(st.dev.labels),
                "policy": st.dev.policy,
            }
        devices[name] = entry
    return {
        "version": STATE_VERSION,
        "now": state.now,
        "devices": devices,
        "sites": {site: fault_to_dict(f) for site, f in state.site_faults.items()},
        "sites_cleared": dict(state.site_cleared),
        "maintenance": [
            [w.id, w.start, w.end, w.device, w.site] for w in state.maintenance.windows.values()
        ],
    }


def load_state(
    state: EngineState,
    saved: Mapping[str, Any],
    *,
    rules: RuleSet,
    new_device: Callable[[Device], DeviceState],
) -> frozenset[str]:
    """Restore ``saved`` into ``state`` (built from the current inventory): state of rules or
    devices that no longer exist is dropped; unassigned devices are added with ``new_device``.
    Returns the devices the snapshot knew (the others are new since)."""
    if saved.get("version") != STATE_VERSION:
        raise ValueError(f"engine state version {saved.get('version')!r} is not {STATE_VERSION}")
    by_name = {rule.name: rule for rule in rules.rules}
    watched = bool(rules.of_type(Offline))
    flapping = bool(rules.of_type(Flapping))
    state.now = saved["now"]
    state.maintenance = MaintenanceBook()  # the state holds the inventory's windows too
    for w in saved["maintenance"]:
        state.maintenance.restore(Window(w[0], w[1], w[2], w[3], w[4]))
    for name, entry in saved["devices"].items():
        extra = entry.get("unassigned")
        if extra is not None and name not in state.devices:
            dev = replace(
                unassigned(name, extra["policy"], model=extra["model"]), labels=extra["labels"]
            )
            state.devices[name] = new_device(dev)
        st = state.devices.get(name)
        if st is None:
            continue  # no longer in the inventory
        st.interval = entry["interval"]
        st.last_seen = entry["last_seen"]
        st.last_ts = entry["last_ts"] if entry["last_ts"] is not None else float("-inf")
        st.gasp_at = entry["gasp_at"]
        st.conds = {k: v for k, v in entry["conds"].items() if k.split("|")[0] in by_name}
        for kind, k in entry["kinds"].items():
            rule = by_name.get(k["rule"])
            if rule is None:
                continue
            ks = st.kinds[kind] = KindState(rule)
            ks.active = dict(k["active"])
            ks.fault = fault_from_dict(k["fault"]) if k["fault"] else None
            ks.held = Hold(k["held"]) if k["held"] else None
            ks.detail = k["detail"]
        st.armed = bool(entry["armed"]) and watched
        if entry["expiry"]:
            st.expiry = dict(entry["expiry"])
        if entry["flaps"]:
            st.flaps = {k: list(v) for k, v in entry["flaps"].items()}
        if entry["flapping"] and flapping:
            st.flapping = {k: fault_from_dict(f) for k, f in entry["flapping"].items()}
    state.site_faults = {site: fault_from_dict(f) for site, f in saved["sites"].items()}
    state.site_cleared = dict(saved["sites_cleared"])
    return frozenset(saved["devices"])


def rearm(state: EngineState, rules: RuleSet, timers: TimerQueue) -> None:
    """Push the timers that follow from a (restored) state: maintenance ends not yet handled,
    pending absences, event-like instances timing out, flapping faults that may end."""
    now = state.now
    for window in state.maintenance.windows.values():
        if now is None or window.end > now:
            timers.push(window.end, TimerKind.MAINTENANCE_END, window.id)
    offline = [r.condition for r in rules.of_type(Offline)]
    missed = offline[0].missed if offline and isinstance(offline[0], Offline) else 0
    flap = [r.condition for r in rules.of_type(Flapping)]
    within = flap[0].within_s if flap and isinstance(flap[0], Flapping) else 0.0
    for name, st in state.devices.items():
        if st.armed:
            timers.push(st.last_seen + missed * st.interval, TimerKind.ABSENCE, name)
        for key, due in (st.expiry or {}).items():
            timers.push(due, TimerKind.CLEAR_AFTER, name, key)
        for kind in st.flapping or {}:
            last = (st.flaps or {}).get(kind, [now or 0.0])[-1]
            timers.push(last + within, TimerKind.FLAP_END, name, kind)


def rebase(state: EngineState, at: float) -> None:
    """Time from ``state.now`` to ``at`` was not listened to (collector or broker down): every
    device awaiting a report gets it back, as if its last report came that much later. The
    pending absence timers then find the later due instant and wait for it (lazy re-arm); a
    device that stays silent is still found absent, ``missed`` intervals of listening later."""
    if state.now is None or at <= state.now:
        return
    gap = at - state.now
    for st in state.devices.values():
        if st.armed:
            st.last_seen += gap
    state.now = at


def fault_to_dict(f: Fault) -> dict[str, Any]:
    return {
        "kind": f.kind,
        "impact": f.impact.value,
        "scope": f.scope.value,
        "subject": f.subject,
        "onset": format_ts(f.onset),
        "policy": f.policy,
        "level": f.level,
        "deadlines": {k: format_ts(v) for k, v in f.deadlines.items()},
        "exempt": f.exempt.value if f.exempt else None,
        "devices": list(f.devices),
        "rule": f.rule,
        "key": f.key,
        "detail": dict(f.detail),
    }


def _ts(text: str) -> datetime:
    return datetime.fromisoformat(text)


def fault_from_dict(d: dict[str, Any]) -> Fault:
    return Fault(
        kind=d["kind"],
        impact=Impact(d["impact"]),
        scope=Scope(d["scope"]),
        subject=d["subject"],
        onset=_ts(d["onset"]),
        policy=d["policy"],
        level=d["level"],
        deadlines={k: _ts(v) for k, v in d["deadlines"].items()},
        exempt=Exemption(d["exempt"]) if d["exempt"] else None,
        devices=tuple(d["devices"]),
        rule=d["rule"],
        key=d["key"],
        detail=d["detail"],
    )
