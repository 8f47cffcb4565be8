"""Zammad (REST API v1 tickets): create a ticket with a first article, then update it.

The ticket is tagged with the fault number, so a retried create first searches
``tags:"<number>"`` for the ticket the desk may already have. Every later event adds an article
(internal for SLA mechanics, visible to the customer otherwise); the ones that change the
desk's state also set ``state``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar
from urllib.parse import urlencode

from collector.delivery.request import MissingRemoteRef, Request, describe, summary

STATES = {
    "acknowledged": "open",
    "onsite": "open",
    "reopened": "open",
    "closed": "closed",
    "cancelled": "closed",
}
INTERNAL_EVENTS = frozenset({"escalated", "breached", "level_changed", "paused", "resumed"})


@dataclass(frozen=True, slots=True)
class ZammadAdapter:
    uses_refs: ClassVar[bool] = True
    base_url: str
    group: str
    customer: str

    def request(self, event: Mapping[str, Any], ref: str | None) -> Request:
        base = self.base_url.rstrip("/")
        number = event["ticket"]["number"]
        article = {
            "subject": f"{number}: {event['type']}",
            "body": describe(event),
            "type": "note",
            "internal": event["type"] in INTERNAL_EVENTS,
        }
        if event["type"] == "ticket_opened":
            body = {
                "title": summary(event),
                "group": self.group,
                "customer": self.customer,
                "tags": f"fleetdesk,{number}",
                "article": article,
            }
            return Request("POST", f"{base}/api/v1/tickets", body)
        if ref is None:
            raise MissingRemoteRef(f"no Zammad ticket for {number}")
        update: dict[str, Any] = {"article": article}
        state = STATES.get(event["type"])
        if state is not None:
            update["state"] = state
        return Request("PUT", f"{base}/api/v1/tickets/{ref}", update)

    def ref_from(self, event: Mapping[str, Any], response: Any) -> str | None:
        if isinstance(response, dict) and isinstance(response.get("id"), int | str):
            return str(response["id"])
        return None

    def lookup(self, event: Mapping[str, Any]) -> Request:
        query = urlencode(
            {"query": f'tags:"{event["ticket"]["number"]}"', "expand": "true", "limit": "1"}
        )
        return Request("GET", f"{self.base_url.rstrip('/')}/api/v1/tickets/search?{query}", None)

    def ref_from_lookup(self, response: Any) -> str | None:
        # expand=true answers a list of tickets; without it {"tickets": [ids], "assets": ...}
        found: Any = response
        if isinstance(response, dict):
            found = response.get("tickets")
        if not isinstance(found, list) or not found:
            return None
        first = found[0]
        if isinstance(first, dict):
            first = first.get("id")
        return str(first) if isinstance(first, int | str) and str(first) else None
