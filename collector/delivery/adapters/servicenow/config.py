"""Sink keys of ServiceNow: ``url`` and an optional ``assignment_group``."""

from __future__ import annotations

from collections.abc import Mapping

from collector.delivery.adapters.base import SinkNode
from collector.delivery.adapters.servicenow.mapping import ServiceNowAdapter

KEYS = frozenset({"url", "assignment_group"})


def from_config(sink: SinkNode, env: Mapping[str, str]) -> ServiceNowAdapter:
    return ServiceNowAdapter(sink.url(), sink.optional_text("assignment_group"))
