"""The fault-to-ticket hand-off as stored: a fault event's ticket input, as one JSON text.

The intake commit writes it beside the fault event (``fault_events.signal``); the ticket runtime
reads it back behind its cursor. Timestamps are ISO 8601 with their offset.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from collector.rules.faults import FaultEvent
from collector.tickets.from_rules import signal_of
from collector.tickets.inputs import FaultSignal


def encode(event: FaultEvent) -> str:
    s = signal_of(event)
    body: dict[str, Any] = {
        "event": s.event,
        "at": s.at.isoformat(),
        "fault_id": s.fault_id,
        "kind": s.kind,
        "impact": s.impact,
        "device": s.device,
        "site": s.site,
        "onset": s.onset.isoformat(),
        "policy": s.policy,
        "level": s.level,
        "exempt": s.exempt,
    }
    return json.dumps(body, separators=(",", ":"))


def decode(text: str) -> FaultSignal:
    d = json.loads(text)
    return FaultSignal(
        event=d["event"],
        at=datetime.fromisoformat(d["at"]),
        fault_id=d["fault_id"],
        kind=d["kind"],
        impact=d["impact"],
        device=d["device"],
        site=d["site"],
        onset=datetime.fromisoformat(d["onset"]),
        policy=d["policy"],
        level=d["level"],
        exempt=d["exempt"],
    )
