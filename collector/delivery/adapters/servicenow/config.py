"""Sink keys of ServiceNow: ``url``, ``assignment_group``, ``states``, ``close_code``,
``hold_reason``.

``states`` maps ticket event types to the instance's incident state values (merged over the
base system's defaults in ``servicenow.mapping.DEFAULT_STATES``; only known event types).
"""

from __future__ import annotations

from collections.abc import Mapping

from collector.delivery.adapters.base import SinkNode
from collector.delivery.adapters.servicenow.mapping import (
    DEFAULT_CLOSE_CODE,
    DEFAULT_HOLD_REASON,
    DEFAULT_STATES,
    ServiceNowAdapter,
)
from collector.tickets.model import EventKind

KEYS = frozenset({"url", "assignment_group", "states", "close_code", "hold_reason"})
_EVENTS = frozenset(kind.value for kind in EventKind)


def from_config(sink: SinkNode, env: Mapping[str, str]) -> ServiceNowAdapter:
    return ServiceNowAdapter(
        sink.url(),
        sink.optional_text("assignment_group"),
        {**DEFAULT_STATES, **sink.text_map("states", _EVENTS)},
        sink.optional_text("close_code") or DEFAULT_CLOSE_CODE,
        sink.optional_text("hold_reason") or DEFAULT_HOLD_REASON,
    )
