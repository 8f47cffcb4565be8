"""Zammad: a ticket per fault, an article per event."""

from collector.delivery.adapters.base import Desk
from collector.delivery.adapters.zammad.config import KEYS, from_config
from collector.delivery.adapters.zammad.mapping import ZammadAdapter

DESK = Desk("zammad", KEYS, from_config)

__all__ = ["DESK", "ZammadAdapter"]
