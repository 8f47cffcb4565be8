"""Classification of a fault into the level of its subject's contract, and its SLA deadlines.

The policies themselves (their first-match classification tables, targets and calendars) belong
to the SLA engine (``collector.sla``); this module only asks them, through a small protocol, so
that the rules engine can be tested with any policy source.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Protocol


class Policy(Protocol):
    @property
    def name(self) -> str: ...

    def classify(self, kind: str, impact: str, scope: str, criticality: str) -> str | None: ...

    def deadlines(
        self, level: str, start: datetime, pauses: Sequence[tuple[datetime, datetime]] = ()
    ) -> Mapping[str, datetime]: ...


PolicyLoader = Callable[[str], Policy]


class PolicyError(ValueError):
    """A policy named by the inventory or the config cannot be loaded."""


def sla_loader(rules_dir: Path | None = None, base: Path | None = None) -> PolicyLoader:
    """Policies from the SLA engine: preset names, or files (relative paths against ``base``)."""

    def load(ref: str) -> Policy:
        from collector.sla.policy import load_policy

        target = ref
        if base is not None and ref.endswith((".yaml", ".yml")) and not Path(ref).is_absolute():
            target = str(base / ref)
        return load_policy(target, rules_dir=rules_dir)

    return load


class PolicyBook:
    """``get`` raises PolicyError naming the policy and the reason. It keeps no copies: the
    SLA engine's ``load_policy`` is the one policy cache (a dict lookup once read)."""

    def __init__(self, loader: PolicyLoader) -> None:
        self._loader = loader

    def get(self, ref: str) -> Policy:
        try:
            return self._loader(ref)
        except (OSError, ValueError, KeyError, LookupError) as exc:
            raise PolicyError(f"policy {ref!r}: {exc}") from None
