"""PagerDuty Events API v2: trigger, acknowledge, resolve, one alert per fault number.

The fault number is the ``dedup_key``, so repeated triggers update one alert. Events with no
meaning for an alert (comments, pauses) send nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from collector.delivery.request import Request, summary

EVENTS_URL = "https://events.pagerduty.com/v2/enqueue"
_ACTIONS = {
    "ticket_opened": "trigger",
    "reopened": "trigger",
    "escalated": "trigger",
    "breached": "trigger",
    "acknowledged": "acknowledge",
    "onsite": "acknowledge",
    "resolved": "resolve",
    "closed": "resolve",
    "cancelled": "resolve",
}
_SEVERITY = {"outage": "critical", "at_risk": "error", "degraded": "warning"}


@dataclass(frozen=True, slots=True)
class PagerDutyAdapter:
    uses_refs: ClassVar[bool] = False
    routing_key: str
    url: str = EVENTS_URL

    def request(self, event: Mapping[str, Any], ref: str | None) -> Request | None:
        action = _ACTIONS.get(event["type"])
        if action is None:
            return None
        ticket = event["ticket"]
        body: dict[str, Any] = {
            "routing_key": self.routing_key,
            "event_action": action,
            "dedup_key": ticket["number"],
        }
        if action == "trigger":
            text = summary(event)
            if event["type"] in ("escalated", "breached"):
                detail = event["detail"]
                text += f" - {event['type']} {detail['target']} ({detail['action']})"
            body["payload"] = {
                "summary": text,
                "source": ticket["device"] or ticket["site"],
                "severity": _SEVERITY.get(ticket["impact"], "info"),
                "timestamp": event["at"],
                "component": ticket["fault_kind"],
                "custom_details": {
                    "level": ticket["level"],
                    "policy": ticket["policy"],
                    "coverage": ticket["coverage"],
                    "targets": ticket["targets"],
                },
            }
        return Request("POST", self.url, body)

    def ref_from(self, event: Mapping[str, Any], response: Any) -> str | None:
        return None
