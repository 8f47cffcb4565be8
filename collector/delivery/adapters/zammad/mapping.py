"""Zammad (REST API v1 tickets): create a ticket with a first article, then update it.

Every later event adds an article; the ones that change the desk's state also set ``state``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from collector.delivery.request import MissingRemoteRef, Request, describe, summary

STATES = {
    "acknowledged": "open",
    "onsite": "open",
    "reopened": "open",
    "closed": "closed",
    "cancelled": "closed",
}


@dataclass(frozen=True, slots=True)
class ZammadAdapter:
    uses_refs: ClassVar[bool] = True
    base_url: str
    group: str
    customer: str

    def request(self, event: Mapping[str, Any], ref: str | None) -> Request:
        base = self.base_url.rstrip("/")
        article = {
            "subject": f"{event['ticket']['number']}: {event['type']}",
            "body": describe(event),
            "type": "note",
            "internal": False,
        }
        if event["type"] == "ticket_opened":
            body = {
                "title": summary(event),
                "group": self.group,
                "customer": self.customer,
                "article": article,
            }
            return Request("POST", f"{base}/api/v1/tickets", body)
        if ref is None:
            raise MissingRemoteRef(f"no Zammad ticket for {event['ticket']['number']}")
        update: dict[str, Any] = {"article": article}
        state = STATES.get(event["type"])
        if state is not None:
            update["state"] = state
        return Request("PUT", f"{base}/api/v1/tickets/{ref}", update)

    def ref_from(self, event: Mapping[str, Any], response: Any) -> str | None:
        if event["type"] == "ticket_opened" and isinstance(response, dict) and "id" in response:
            return str(response["id"])
        return None
