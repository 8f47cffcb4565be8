"""The generic webhook desk: the event as documented, POSTed as is."""

from collector.delivery.adapters.base import Desk
from collector.delivery.adapters.webhook.config import KEYS, from_config
from collector.delivery.adapters.webhook.mapping import WebhookAdapter

DESK = Desk("webhook", KEYS, from_config)

__all__ = ["DESK", "WebhookAdapter"]
