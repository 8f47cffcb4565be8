"""ServiceNow Table API: an ``incident`` created at opening and updated by ``sys_id`` after.

Incident states: 1 New, 2 In Progress, 3 On Hold, 6 Resolved, 7 Closed, 8 Canceled.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from collector.delivery.request import MissingRemoteRef, Request, describe, summary

_IMPACT = {"outage": "1", "at_risk": "2"}  # 1 High, 2 Medium, 3 Low
_STATE: dict[str, dict[str, str]] = {
    "acknowledged": {"state": "2"},
    "onsite": {"state": "2"},
    "resumed": {"state": "2"},
    "reopened": {"state": "2"},
    "paused": {"state": "3", "hold_reason": "1"},  # On Hold, awaiting caller
    "resolved": {"state": "6", "close_code": "Solved (Permanently)"},
    "closed": {"state": "7"},
    "cancelled": {"state": "8"},
}


@dataclass(frozen=True, slots=True)
class ServiceNowAdapter:
    uses_refs: ClassVar[bool] = True
    base_url: str
    assignment_group: str | None = None

    def request(self, event: Mapping[str, Any], ref: str | None) -> Request:
        base = self.base_url.rstrip("/")
        ticket = event["ticket"]
        if event["type"] == "ticket_opened":
            level = _IMPACT.get(ticket["impact"], "3")
            body = {
                "short_description": summary(event),
                "description": describe(event),
                "impact": level,
                "urgency": level,
                "correlation_id": ticket["number"],
                "correlation_display": "fleetdesk",
            }
            if self.assignment_group:
                body["assignment_group"] = self.assignment_group
            return Request("POST", f"{base}/api/now/table/incident", body)
        if ref is None:
            raise MissingRemoteRef(f"no ServiceNow incident for {ticket['number']}")
        update = {"work_notes": describe(event), **_STATE.get(event["type"], {})}
        if event["type"] == "resolved":
            update["close_notes"] = describe(event)
        return Request("PATCH", f"{base}/api/now/table/incident/{ref}", update)

    def ref_from(self, event: Mapping[str, Any], response: Any) -> str | None:
        if event["type"] == "ticket_opened" and isinstance(response, dict):
            sys_id = response.get("result", {}).get("sys_id")
            return str(sys_id) if sys_id else None
        return None
