"""ServiceNow Table API: an ``incident`` created at opening and updated by ``sys_id`` after.

``correlation_id`` is the fault number, so a retried create first queries
``correlation_id=<number>`` for the incident the instance may already have. States and the
close code come from the sink (choice lists differ per instance); the defaults are the base
system's: 2 In Progress, 3 On Hold, 6 Resolved, 7 Closed, 8 Canceled, close code
"Solved (Permanently)".
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar
from urllib.parse import urlencode

from collector.delivery.request import MissingRemoteRef, Request, describe, summary

_IMPACT = {"outage": "1", "at_risk": "2"}  # 1 High, 2 Medium, 3 Low
DEFAULT_STATES: Mapping[str, str] = {
    "acknowledged": "2",
    "onsite": "2",
    "resumed": "2",
    "reopened": "2",
    "paused": "3",
    "resolved": "6",
    "closed": "7",
    "cancelled": "8",
}
DEFAULT_CLOSE_CODE = "Solved (Permanently)"
DEFAULT_HOLD_REASON = "1"  # awaiting caller


@dataclass(frozen=True, slots=True)
class ServiceNowAdapter:
    uses_refs: ClassVar[bool] = True
    base_url: str
    assignment_group: str | None = None
    states: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_STATES))
    close_code: str = DEFAULT_CLOSE_CODE
    hold_reason: str = DEFAULT_HOLD_REASON

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
        update = {"work_notes": describe(event)}
        state = self.states.get(event["type"])
        if state is not None:
            update["state"] = state
        if event["type"] == "paused":
            update["hold_reason"] = self.hold_reason
        if event["type"] == "resolved":
            update["close_code"] = self.close_code
            update["close_notes"] = describe(event)
        return Request("PATCH", f"{base}/api/now/table/incident/{ref}", update)

    def ref_from(self, event: Mapping[str, Any], response: Any) -> str | None:
        result = response.get("result") if isinstance(response, dict) else None
        if isinstance(result, list):  # some instances' scripted APIs answer a list
            result = result[0] if result else None
        sys_id = result.get("sys_id") if isinstance(result, dict) else None
        return sys_id if isinstance(sys_id, str) and sys_id else None

    def lookup(self, event: Mapping[str, Any]) -> Request:
        query = urlencode(
            {
                "sysparm_query": f"correlation_id={event['ticket']['number']}"
                "^ORDERBYsys_created_on",
                "sysparm_fields": "sys_id",
                "sysparm_limit": "1",
            }
        )
        return Request("GET", f"{self.base_url.rstrip('/')}/api/now/table/incident?{query}", None)

    def ref_from_lookup(self, response: Any) -> str | None:
        return self.ref_from({"type": "ticket_opened"}, response)
