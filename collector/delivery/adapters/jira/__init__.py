"""Jira Service Management: a customer request per ticket, moved by configured transitions."""

from collector.delivery.adapters.base import Desk
from collector.delivery.adapters.jira.config import KEYS, from_config
from collector.delivery.adapters.jira.mapping import JiraAdapter

DESK = Desk("jira", KEYS, from_config)

__all__ = ["DESK", "JiraAdapter"]
