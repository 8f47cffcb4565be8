"""JSON-able snapshots of faults, so that a restarted collector keeps open faults and clocks."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from agent.wire import format_ts
from collector.rules.faults import Exemption, Fault, Impact, Scope


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
