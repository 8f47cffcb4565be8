"""Jira Service Management: a customer request per ticket (``/rest/servicedeskapi``).

Opening creates a request (``POST /rest/servicedeskapi/request`` with the service desk's id,
the request type's id and ``requestFieldValues``); its labels carry the fault number, so a
retried create first asks JQL (``labels = "<number>"``) whether the request exists already.
Events with a configured transition move the request through the desk's workflow (transition
ids differ per project, hence config) with the event as the transition's comment; every other
event becomes a comment, public (the customer sees it) or internal (agents only) by event type:
what the customer is waiting for (acknowledged, on site, resolved ...) is public, SLA
mechanics (escalations, breaches, level changes, pauses) are internal.

Jira platform issues (``/rest/api/3/issue``) are not an adapter of their own: a team on Jira
Software without Service Management takes the generic webhook into an Automation rule.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar
from urllib.parse import quote, urlencode

from collector.delivery.request import MissingRemoteRef, Request, describe, summary

PUBLIC_EVENTS = frozenset({"acknowledged", "onsite", "resolved", "reopened", "closed", "cancelled"})


@dataclass(frozen=True, slots=True)
class JiraAdapter:
    uses_refs: ClassVar[bool] = True
    base_url: str
    service_desk_id: str
    request_type_id: str
    transitions: Mapping[str, str] = field(default_factory=dict)  # event type -> transition id
    public_events: frozenset[str] = PUBLIC_EVENTS

    def request(self, event: Mapping[str, Any], ref: str | None) -> Request:
        base = self.base_url.rstrip("/") + "/rest/servicedeskapi/request"
        ticket = event["ticket"]
        if event["type"] == "ticket_opened":
            body = {
                "serviceDeskId": self.service_desk_id,
                "requestTypeId": self.request_type_id,
                "requestFieldValues": {
                    "summary": summary(event),
                    "description": describe(event),
                    "labels": ["fleetdesk", ticket["number"]],
                },
            }
            return Request("POST", base, body)
        if ref is None:
            raise MissingRemoteRef(f"no Jira request for {ticket['number']}")
        key = quote(ref, safe="")
        transition = self.transitions.get(event["type"])
        if transition is not None:
            move = {"id": transition, "additionalComment": {"body": describe(event)}}
            return Request("POST", f"{base}/{key}/transition", move)
        comment = {"body": describe(event), "public": event["type"] in self.public_events}
        return Request("POST", f"{base}/{key}/comment", comment)

    def ref_from(self, event: Mapping[str, Any], response: Any) -> str | None:
        if isinstance(response, dict):
            key = response.get("issueKey")
            return str(key) if isinstance(key, str | int) and key else None
        return None

    def lookup(self, event: Mapping[str, Any]) -> Request:
        jql = f'labels = "{event["ticket"]["number"]}" ORDER BY created ASC'
        query = urlencode({"jql": jql, "fields": "key", "maxResults": "1"})
        return Request("GET", f"{self.base_url.rstrip('/')}/rest/api/3/search/jql?{query}", None)

    def ref_from_lookup(self, response: Any) -> str | None:
        issues = response.get("issues") if isinstance(response, dict) else None
        if isinstance(issues, list) and issues and isinstance(issues[0], dict):
            key = issues[0].get("key")
            return str(key) if isinstance(key, str) and key else None
        return None
