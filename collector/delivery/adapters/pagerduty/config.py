"""Sink keys of PagerDuty: ``routing_key_env`` (required) and ``url`` (the public endpoint)."""

from __future__ import annotations

from collections.abc import Mapping

from collector.delivery.adapters.base import SinkNode
from collector.delivery.adapters.pagerduty.mapping import EVENTS_URL, PagerDutyAdapter

KEYS = frozenset({"url", "routing_key_env"})


def from_config(sink: SinkNode, env: Mapping[str, str]) -> PagerDutyAdapter:
    routing = sink.required_secret("routing_key_env", env, "required for pagerduty")
    return PagerDutyAdapter(routing, sink.url(EVENTS_URL))
