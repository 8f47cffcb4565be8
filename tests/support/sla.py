"""Helpers for the SLA tests: aware datetimes and throw-away rule folders."""

from __future__ import annotations

import textwrap
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

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
