"""Where the shipped rule, policy, calendar and SNMP profile files live."""

from __future__ import annotations

import os
from pathlib import Path

RULES_ENV = "FLEETDESK_RULES"


def default_rules_dir() -> Path:
    """``$FLEETDESK_RULES`` if set, else the ``rules/`` folder beside the installed packages."""
    override = os.environ.get(RULES_ENV)
    if override:
        return Path(override)
    return Path(__file__).resolve().parent.parent / "rules"
