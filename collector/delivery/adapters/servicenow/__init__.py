"""ServiceNow: an incident per ticket, updated by ``sys_id``."""

from collector.delivery.adapters.base import Desk
from collector.delivery.adapters.servicenow.config import KEYS, from_config
from collector.delivery.adapters.servicenow.mapping import ServiceNowAdapter

DESK = Desk("servicenow", KEYS, from_config)

__all__ = ["DESK", "ServiceNowAdapter"]
