"""Sink keys of Zammad: ``url``, ``group`` and ``customer`` of the tickets it creates."""

from __future__ import annotations

from collections.abc import Mapping

from collector.delivery.adapters.base import SinkNode
from collector.delivery.adapters.zammad.mapping import ZammadAdapter

KEYS = frozenset({"url", "group", "customer"})


def from_config(sink: SinkNode, env: Mapping[str, str]) -> ZammadAdapter:
    return ZammadAdapter(sink.url(), sink.text("group"), sink.text("customer"))
