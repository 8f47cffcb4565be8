"""Helpers for the SLA tests: aware datetimes and throw-away rule folders."""

from __future__ import annotations

import textwrap
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from collector.config.errors import ConfigError
from collector.sla.policy import Policy, load_policy

SH = ZoneInfo("Asia/Shanghai")


def sh(text: str) -> datetime:
    """A wall-clock time in Beijing, e.g. ``sh("2026-10-01T03:00")``."""
    return datetime.fromisoformat(text).replace(tzinfo=SH)


def write_rules(root: Path, files: dict[str, str]) -> Path:
    """Write ``{"calendars/x.yaml": text, ...}`` under ``root`` and return ``root``."""
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")
    return root


def policy_from_text(root: Path, text: str) -> Policy:
    """The policy ``text``, written as ``root/policies/p.yaml`` and loaded from there."""
    write_rules(root, {"policies/p.yaml": text})
    return load_policy("p", root)


def policy_refusal(root: Path, text: str) -> ConfigError:
    """The error loading the policy ``text`` raises (the test fails if it loads)."""
    with pytest.raises(ConfigError) as info:
        policy_from_text(root, text)
    return info.value
