"""The generic webhook: the event as documented in docs/webhooks.md, POSTed as is.

Signing (Standard Webhooks) is added by the delivery framework for every sink with a secret.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from collector.delivery.request import Request


@dataclass(frozen=True, slots=True)
class WebhookAdapter:
    uses_refs: ClassVar[bool] = False
    url: str

    def request(self, event: Mapping[str, Any], ref: str | None) -> Request:
        return Request("POST", self.url, event)

    def ref_from(self, event: Mapping[str, Any], response: Any) -> str | None:
        return None

    def lookup(self, event: Mapping[str, Any]) -> Request | None:
        return None  # the receiver deduplicates on webhook-id

    def ref_from_lookup(self, response: Any) -> str | None:
        return None
