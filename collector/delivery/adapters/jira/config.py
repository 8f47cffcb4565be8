"""Sink keys of Jira Service Management: ``url``, ``service_desk_id``, ``request_type_id``,
``transitions`` and ``public_events``.

``transitions`` maps ticket event types to the project's workflow transition ids;
``public_events`` lists the event types whose comments the customer sees (default
``jira.mapping.PUBLIC_EVENTS``). A typo in an event type would never match, so only known event
types are accepted.
"""

from __future__ import annotations

from collections.abc import Mapping

from collector.delivery.adapters.base import SinkNode
from collector.delivery.adapters.jira.mapping import PUBLIC_EVENTS, JiraAdapter
from collector.tickets.model import EventKind

KEYS = frozenset({"url", "service_desk_id", "request_type_id", "transitions", "public_events"})
_EVENTS = frozenset(kind.value for kind in EventKind)


def from_config(sink: SinkNode, env: Mapping[str, str]) -> JiraAdapter:
    public = PUBLIC_EVENTS
    node = sink.keys.get("public_events")
    if node is not None and not node.is_null():
        public = frozenset(item.text() for item in node.items())
        unknown = sorted(public - _EVENTS)
        if unknown:
            raise node.error(f"not event types: {', '.join(unknown)}")
    return JiraAdapter(
        sink.url(),
        sink.text("service_desk_id"),
        sink.text("request_type_id"),
        sink.text_map("transitions", _EVENTS),
        public,
    )
