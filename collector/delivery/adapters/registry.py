"""The desk adapters a sink's ``type`` may name: one entry per package in this folder.

Adding a desk: a package ``adapters/<desk>/`` with ``mapping.py`` (the Adapter), ``config.py``
(its sink keys and factory) and ``DESK`` in its ``__init__``; then one line below.
"""

from __future__ import annotations

from collections.abc import Mapping

from collector.delivery.adapters import jira, pagerduty, servicenow, webhook, zammad
from collector.delivery.adapters.base import Desk

DESKS: Mapping[str, Desk] = {
    desk.name: desk
    for desk in (webhook.DESK, jira.DESK, zammad.DESK, servicenow.DESK, pagerduty.DESK)
}


def lookup(name: str) -> Desk | None:
    return DESKS.get(name)


def names() -> tuple[str, ...]:
    return tuple(DESKS)
