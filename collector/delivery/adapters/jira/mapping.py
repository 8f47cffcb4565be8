"""Jira Service Management (Jira Cloud REST API v3): create an issue, then transition it.

Opening creates an issue (labels carry the fault number); events with a configured transition
move the issue through the desk's workflow (transition ids differ per project, hence config);
every other event becomes a comment. Rich text is Atlassian Document Format.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from collector.delivery.request import MissingRemoteRef, Request, describe, summary

DEFAULT_ISSUE_TYPE = "[System] Incident"


def _adf(text: str) -> dict[str, Any]:
    paragraph = {"type": "paragraph", "content": [{"type": "text", "text": text}]}
    return {"type": "doc", "version": 1, "content": [paragraph]}


@dataclass(frozen=True, slots=True)
class JiraAdapter:
    uses_refs: ClassVar[bool] = True
    base_url: str
    project: str
    issue_type: str = DEFAULT_ISSUE_TYPE
    transitions: Mapping[str, str] = field(default_factory=dict)  # event type -> transition id

    def request(self, event: Mapping[str, Any], ref: str | None) -> Request:
        base = self.base_url.rstrip("/")
        ticket = event["ticket"]
        if event["type"] == "ticket_opened":
            fields = {
                "project": {"key": self.project},
                "issuetype": {"name": self.issue_type},
                "summary": summary(event),
                "description": _adf(describe(event)),
                "labels": ["fleetdesk", ticket["number"], f"coverage-{ticket['coverage']}"],
            }
            return Request("POST", f"{base}/rest/api/3/issue", {"fields": fields})
        if ref is None:
            raise MissingRemoteRef(f"no Jira issue for {ticket['number']}")
        transition = self.transitions.get(event["type"])
        if transition is not None:
            body = {
                "transition": {"id": transition},
                "update": {"comment": [{"add": {"body": _adf(describe(event))}}]},
            }
            return Request("POST", f"{base}/rest/api/3/issue/{ref}/transitions", body)
        return Request(
            "POST", f"{base}/rest/api/3/issue/{ref}/comment", {"body": _adf(describe(event))}
        )

    def ref_from(self, event: Mapping[str, Any], response: Any) -> str | None:
        if event["type"] == "ticket_opened" and isinstance(response, dict):
            key = response.get("key")
            return str(key) if key else None
        return None
