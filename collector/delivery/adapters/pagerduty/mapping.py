"""PagerDuty Events API v2: trigger, acknowledge, resolve, one alert per fault number.

The fault number is the ``dedup_key``, so repeated triggers update one alert. PagerDuty sends
no notification for a trigger on an alert that is already acknowledged, so an escalation or a
breach after the acknowledgement would reach nobody: it is triggered as an alert of its own,
``<number>/<target>`` (one per SLA target, at the escalation's severity), which notifies the
escalation policy again. Acknowledging and resolving the ticket acknowledge and resolve those
alerts too (PagerDuty accepts an acknowledge or resolve for a key it never saw and ignores it).
Events with no meaning for an alert (comments, pauses) send nothing.
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
_LOUDER = {"info": "warning", "warning": "error", "error": "critical", "critical": "critical"}


@dataclass(frozen=True, slots=True)
class PagerDutyAdapter:
    uses_refs: ClassVar[bool] = False
    routing_key: str
    url: str = EVENTS_URL

    def request(
        self, event: Mapping[str, Any], ref: str | None
    ) -> Request | tuple[Request, ...] | None:
        action = _ACTIONS.get(event["type"])
        if action is None:
            return None
        ticket = event["ticket"]
        number = ticket["number"]
        target_keys = [f"{number}/{t['name']}" for t in ticket.get("targets", [])]
        if action != "trigger":  # the ticket's alert and any escalation alerts
            return tuple(self._post(key, action) for key in (number, *target_keys))
        severity = _SEVERITY.get(ticket["impact"], "info")
        text = summary(event)
        key = number
        if event["type"] in ("escalated", "breached"):
            detail = event["detail"]
            text += f" - {event['type']} {detail['target']} ({detail['action']})"
            severity = _LOUDER[severity]
            if ticket.get("acknowledged_at") is not None:
                key = f"{number}/{detail['target']}"
        payload = {
            "summary": text[:1024],
            # never empty: PagerDuty refuses an event without a source
            "source": ticket["device"] or ticket["site"] or f"fleetdesk {number}",
            "severity": severity,
            "timestamp": event["at"],
            "component": ticket["fault_kind"],
            "custom_details": {
                "level": ticket["level"],
                "policy": ticket["policy"],
                "coverage": ticket["coverage"],
                "targets": ticket["targets"],
            },
        }
        return self._post(key, "trigger", payload)

    def _post(self, key: str, action: str, payload: Mapping[str, Any] | None = None) -> Request:
        body: dict[str, Any] = {
            "routing_key": self.routing_key,
            "event_action": action,
            "dedup_key": key,
        }
        if payload is not None:
            body["payload"] = payload
        return Request("POST", self.url, body)

    def ref_from(self, event: Mapping[str, Any], response: Any) -> str | None:
        return None

    def lookup(self, event: Mapping[str, Any]) -> Request | None:
        return None  # the dedup key makes triggers idempotent

    def ref_from_lookup(self, response: Any) -> str | None:
        return None
