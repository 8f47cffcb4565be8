"""Durations in rule files: ``30s``, ``5m``, ``1h``, ``1h30m``, ``0s``."""

from __future__ import annotations

import re
from typing import Final

_DURATION_RE: Final = re.compile(r"(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?")


def parse_duration(text: object) -> float:
    """Seconds in a duration string; raises ValueError naming the bad value."""
    if not isinstance(text, str) or not text:
        raise ValueError(f"duration must be a string like 30s, 5m, 1h30m: {text!r}")
    match = _DURATION_RE.fullmatch(text.strip())
    if match is None or not any(match.groups()):
        raise ValueError(f"duration must be a string like 30s, 5m, 1h30m: {text!r}")
    hours, minutes, seconds = (int(g) if g else 0 for g in match.groups())
    return float(hours * 3600 + minutes * 60 + seconds)


def format_duration(seconds: float) -> str:
    whole = int(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    text = (f"{hours}h" if hours else "") + (f"{minutes}m" if minutes else "")
    return text + (f"{secs}s" if secs or not text else "")
