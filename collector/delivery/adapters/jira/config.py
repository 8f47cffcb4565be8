"""Sink keys of Jira Service Management: ``url``, ``project``, ``issue_type``, ``transitions``.

``transitions`` maps ticket event types to the project's workflow transition ids; a typo in an
event type would never match, so only known event types are accepted.
"""

from __future__ import annotations

from collections.abc import Mapping

from collector.delivery.adapters.base import SinkNode
from collector.delivery.adapters.jira.mapping import DEFAULT_ISSUE_TYPE, JiraAdapter
from collector.tickets.model import EventKind

KEYS = frozenset({"url", "project", "issue_type", "transitions"})
_EVENTS = frozenset(kind.value for kind in EventKind)


def from_config(sink: SinkNode, env: Mapping[str, str]) -> JiraAdapter:
    return JiraAdapter(
        sink.url(),
        sink.text("project"),
        sink.optional_text("issue_type") or DEFAULT_ISSUE_TYPE,
        sink.text_map("transitions", _EVENTS),
    )
