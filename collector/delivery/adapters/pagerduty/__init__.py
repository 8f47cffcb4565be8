"""PagerDuty Events API v2: one alert per fault number."""

from collector.delivery.adapters.base import Desk
from collector.delivery.adapters.pagerduty.config import KEYS, from_config
from collector.delivery.adapters.pagerduty.mapping import EVENTS_URL, PagerDutyAdapter

DESK = Desk("pagerduty", KEYS, from_config, credentials_in_body=True)

__all__ = ["DESK", "EVENTS_URL", "PagerDutyAdapter"]
