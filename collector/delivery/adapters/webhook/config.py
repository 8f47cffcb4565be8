"""Sink keys of the generic webhook: ``url`` only (signing is shared by every sink)."""

from __future__ import annotations

from collections.abc import Mapping

from collector.delivery.adapters.base import SinkNode
from collector.delivery.adapters.webhook.mapping import WebhookAdapter

KEYS = frozenset({"url"})


def from_config(sink: SinkNode, env: Mapping[str, str]) -> WebhookAdapter:
    return WebhookAdapter(sink.url())
