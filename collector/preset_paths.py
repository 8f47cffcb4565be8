"""Where the preset rule, policy, calendar and SNMP profile files live.

One copy of them is kept: the checkout's top-level ``rules/`` folder. The wheel ships that
folder as ``collector/presets/`` (a package-dir mapping in ``pyproject.toml``), so an installed
collector finds them beside this module and a checkout finds them in ``rules/``. An operator's
own folder wins over both: ``$FLEETDESK_RULES``, ``rules.dir`` in the collector's config, or
``--rules`` on replay. (This module is not ``collector/presets.py``: that name would shadow the
``collector.presets`` data package in the wheel.)
"""

from __future__ import annotations

import os
from pathlib import Path

RULES_ENV = "FLEETDESK_RULES"
_SINGULAR = {"calendars": "calendar", "policies": "policy"}
_INSTALLED = Path(__file__).resolve().parent / "presets"  # in the wheel
_CHECKOUT = Path(__file__).resolve().parent.parent / "rules"  # editable install, tests


def shipped_rules_dir() -> Path:
    """The presets that came with fleetdesk: the installed ``collector/presets/`` folder when
    this is a wheel install, else the checkout's ``rules/`` folder."""
    return _INSTALLED if _INSTALLED.is_dir() else _CHECKOUT


def default_rules_dir() -> Path:
    """``$FLEETDESK_RULES`` if set, else the shipped presets (:func:`shipped_rules_dir`)."""
    override = os.environ.get(RULES_ENV)
    if override:
        return Path(override)
    return shipped_rules_dir()


def is_file_reference(name_or_path: str | Path) -> bool:
    """A path to a file rather than a preset's name."""
    text = str(name_or_path)
    return isinstance(name_or_path, Path) or "/" in text or text.endswith((".yaml", ".yml"))


def preset_names(kind: str, rules_dir: Path | None = None) -> list[str]:
    """Names of the presets of one kind (``calendars``, ``policies``) in ``rules_dir``."""
    folder = (rules_dir or default_rules_dir()) / kind
    return sorted(p.stem for p in folder.glob("*.yaml")) if folder.is_dir() else []


def find_preset(kind: str, name_or_path: str | Path, rules_dir: Path | None = None) -> Path:
    """The file of a preset by name (``rules_dir/<kind>/<name>.yaml``, falling back to the
    default folder) or the given path. Unknown names raise ValueError listing the known ones."""
    if is_file_reference(name_or_path):
        return Path(name_or_path)
    name = str(name_or_path)
    folders = [d for d in (rules_dir, default_rules_dir()) if d is not None]
    for folder in folders:
        path = folder / kind / f"{name}.yaml"
        if path.is_file():
            return path
    known = sorted({n for d in folders for n in preset_names(kind, d)})
    what = _SINGULAR.get(kind, kind)
    raise ValueError(f"unknown {what} {name!r} (known: {', '.join(known) or 'none'})")
