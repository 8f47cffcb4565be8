"""Classification of a fault into the level of its subject's contract, and its SLA deadlines.

The policies themselves (their first-match classification tables, targets and calendars) belong
to the SLA engine (``collector.sla``); this module only asks them, through a small protocol, so
that the rules engine can be tested with any policy source.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from collector.config.errors import ConfigError
from collector.rules.faults import Criticality, Exemption, Fault, Scope, utc
from collector.rules.inventory import Device
from collector.rules.ruleset import Rule


class Policy(Protocol):
    @property
    def name(self) -> str: ...

    def classify(self, kind: str, impact: str, scope: str, criticality: str) -> str | None: ...

    def deadlines(
        self, level: str, start: datetime, pauses: Sequence[tuple[datetime, datetime]] = ()
    ) -> Mapping[str, datetime]: ...

    def opening_deadlines(self, level: str, onset: datetime) -> Mapping[str, datetime]:
        """Those known at opening (not the targets a desk action starts later)."""
        ...


PolicyLoader = Callable[[str], Policy]


PolicyError = ConfigError  # the old name: a policy that cannot be loaded


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
    """``get`` raises ConfigError naming the policy and the reason: the policy file's own
    error, or one against ``source`` (the file naming the policy). It keeps no copies: the SLA
    engine's ``load_policy`` is the one policy cache (a dict lookup once read)."""

    def __init__(self, loader: PolicyLoader, source: str = "<policies>") -> None:
        self._loader = loader
        self._source = source

    def get(self, ref: str) -> Policy:
        try:
            return self._loader(ref)
        except ConfigError:
            raise  # names the policy file, line and key already
        except (OSError, ValueError, KeyError, LookupError) as exc:
            raise ConfigError(self._source, "policy", f"{ref!r}: {exc}") from None


class FaultMaker:
    """Builds faults classified by their subject's policy, with the level's SLA deadlines from
    the onset (none when exempt)."""

    __slots__ = ("_book", "_default")

    def __init__(self, book: PolicyBook, default_policy: str) -> None:
        self._book, self._default = book, default_policy

    def make(  # noqa: PLR0917  # called on every fault, positional like the engine
        self,
        kind: str,
        rule: Rule,
        scope: Scope,
        subject: str,
        onset: float,
        dev: Device,
        *,
        exempt: Exemption | None = None,
        detail: Mapping[str, Any] | None = None,
        devices: tuple[str, ...] = (),
        criticality: Criticality | None = None,
        key: str = "",
    ) -> Fault:
        policy = self._book.get(dev.policy or self._default)
        crit = criticality or dev.criticality
        level = policy.classify(kind, rule.impact.value, scope.value, crit.value)
        onset_dt = utc(onset)
        deadlines = (
            policy.opening_deadlines(level, onset_dt)
            if level is not None and exempt is None
            else {}
        )
        return Fault(
            kind=kind,
            impact=rule.impact,
            scope=scope,
            subject=subject,
            onset=onset_dt,
            policy=policy.name,
            level=level,
            deadlines=dict(deadlines),
            exempt=exempt,
            devices=devices,
            rule=rule.name,
            key=key,
            detail=dict(detail) if detail else {},
        )
