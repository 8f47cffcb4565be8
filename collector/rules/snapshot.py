"""JSON-able snapshots of the engine, so that a restarted collector keeps open faults and
their clocks. Timers are not stored: they follow from the state and are re-armed on load.
(Part of the engine, split out for size: it reads and writes the engine's private state.)"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final

from agent.wire import format_ts
from collector.rules.evaluators import DeviceState
from collector.rules.faults import Exemption, Fault, Impact, Scope
from collector.rules.inventory import unassigned
from collector.rules.ruleset import Flapping, Offline
from collector.rules.suppression import Hold, MaintenanceBook, Window
from collector.rules.timers import TimerKind, TimerQueue

if TYPE_CHECKING:
    from collector.rules.engine import Engine

STATE_VERSION: Final = 1


def export_state(engine: Engine) -> dict[str, Any]:
    devices: dict[str, Any] = {}
    for name, st in engine._devices.items():
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
        "now": engine._now,
        "devices": devices,
        "sites": {site: fault_to_dict(f) for site, f in engine._site_faults.items()},
        "sites_cleared": dict(engine._site_cleared),
        "maintenance": [
            [w.id, w.start, w.end, w.device, w.site] for w in engine._maintenance.windows.values()
        ],
    }


def load_state(engine: Engine, state: Mapping[str, Any]) -> None:
    if state.get("version") != STATE_VERSION:
        raise ValueError(f"engine state version {state.get('version')!r} is not {STATE_VERSION}")
    from collector.rules.engine import KindState

    rules = engine._rules_by_name
    engine._now = state["now"]
    engine._timers = TimerQueue()  # re-armed below from the state alone
    engine._maintenance = MaintenanceBook()  # the state holds the inventory's windows too
    for w in state["maintenance"]:
        window = Window(w[0], w[1], w[2], w[3], w[4])
        engine._maintenance.restore(window)
        if engine._now is None or window.end > engine._now:  # its end has not been handled
            engine._timers.push(window.end, TimerKind.MAINTENANCE_END, window.id)
    for name, entry in state["devices"].items():
        extra = entry.get("unassigned")
        if extra is not None and name not in engine._devices:
            dev = replace(
                unassigned(name, extra["policy"], model=extra["model"]), labels=extra["labels"]
            )
            engine._devices[name] = DeviceState(dev, engine._plan(dev))
        found = engine._devices.get(name)
        if found is None:
            continue  # no longer in the inventory
        st = found
        st.interval = entry["interval"]
        st.last_seen = entry["last_seen"]
        st.last_ts = entry["last_ts"] if entry["last_ts"] is not None else float("-inf")
        st.gasp_at = entry["gasp_at"]
        st.conds = {k: v for k, v in entry["conds"].items() if k.split("|")[0] in rules}
        for kind, k in entry["kinds"].items():
            rule = rules.get(k["rule"])
            if rule is None:
                continue
            ks = st.kinds[kind] = KindState(rule)
            ks.active = dict(k["active"])
            ks.fault = fault_from_dict(k["fault"]) if k["fault"] else None
            ks.held = Hold(k["held"]) if k["held"] else None
            ks.detail = k["detail"]
        if entry["armed"] and engine._offline is not None:
            assert isinstance(engine._offline.condition, Offline)
            due = st.last_seen + engine._offline.condition.missed * st.interval
            engine._timers.push(due, TimerKind.ABSENCE, name)
            st.armed = True
        if entry["expiry"]:
            st.expiry = dict(entry["expiry"])
            for key, due in st.expiry.items():
                engine._timers.push(due, TimerKind.CLEAR_AFTER, name, key)
        if entry["flaps"]:
            st.flaps = {k: list(v) for k, v in entry["flaps"].items()}
        if entry["flapping"] and engine._flap is not None:
            assert isinstance(engine._flap.condition, Flapping)
            st.flapping = {k: fault_from_dict(f) for k, f in entry["flapping"].items()}
            for kind in st.flapping:
                last = (st.flaps or {}).get(kind, [engine._now or 0.0])[-1]
                due = last + engine._flap.condition.within_s
                engine._timers.push(due, TimerKind.FLAP_END, name, kind)
    engine._site_faults = {site: fault_from_dict(f) for site, f in state["sites"].items()}
    engine._site_cleared = dict(state["sites_cleared"])
    if engine._now is not None:  # devices added to the inventory since: watched from now on
        for name, st in engine._devices.items():
            if name not in state["devices"]:
                engine._seen(st, engine._now, report=False)


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
