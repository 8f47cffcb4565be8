"""Replay a recording through the collector's own pipeline: one JSON line in, zero or more out.

Replay is the live assembly (``collector.pipeline.assembly.assemble``: decode, dedup, registry,
telemetry, rules, fault stages) run on a virtual clock: each recording line lets time pass to its
``at``, becomes an envelope exactly as an MQTT message, an SNMP trap or a maintenance notice would,
and goes down the pipeline. The fault stages print: the fault printer first, then any given
(the ticket stage adds ticket events and handles ``desk`` lines). Nothing is stored: the registry
and the recent samples stay in memory. Bad lines are reported with their number and skipped,
never fatal; a message the live collector would reject is a bad line with the same reason.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from agent import wire
from collector.config.collector import IntakeConfig
from collector.intake.deadletter import Rejects
from collector.intake.envelope import Envelope
from collector.metrics import Metrics
from collector.pipeline.assembly import Pipeline, assemble
from collector.pipeline.dedup import Registry
from collector.pipeline.identity import from_inventory
from collector.rules.engine import Engine
from collector.rules.faults import FaultEvent
from collector.rules.inputs import Maintenance, Trap

Emit = Callable[[Mapping[str, Any]], None]


class BadLine(ValueError):
    """A recording line that cannot be used; the message says why."""


class ReplayStage(Protocol):
    """A fault stage of the replay that may also own recording lines of its own kinds.

    ``line_kinds``: the recording line keys (besides ``at``) this stage handles, e.g. ``desk``.
    """

    line_kinds: tuple[str, ...]

    def on_fault(self, event: FaultEvent) -> None: ...

    def advance(self, now: datetime) -> None: ...

    def line(self, body: Mapping[str, Any], at: datetime) -> None:
        """Handle a recording line of one of ``line_kinds`` (after time advanced to ``at``).

        Raises BadLine if the line is malformed.
        """
        ...


class FaultPrinter:
    """The first fault stage: one output line per fault event."""

    line_kinds: tuple[str, ...] = ()

    def __init__(self, emit: Emit) -> None:
        self.emit = emit

    def on_fault(self, event: FaultEvent) -> None:
        self.emit(event.to_json())

    def advance(self, now: datetime) -> None:
        pass

    def line(self, body: Mapping[str, Any], at: datetime) -> None:
        pass


@dataclass(frozen=True, slots=True)
class ReplayResult:
    lines: int
    bad_lines: int
    events: int


class _Refusals(Rejects):
    """Rejects that remember why, so the replay can name the line (nothing is written)."""

    def __init__(self, metrics: Metrics) -> None:
        super().__init__(metrics, logs_per_minute=0)
        self.last: str | None = None

    def reject(self, topic: str, payload: bytes, at: float, reason: str, detail: str) -> None:
        self.last = f"{reason}: {detail}"

    def take(self) -> str | None:
        last, self.last = self.last, None
        return last


def parse_line(body: object, traps: Mapping[str, str]) -> tuple[datetime, Envelope | None, bool]:
    """``(at, envelope or None, is_pipeline_line)``; raises BadLine naming the problem."""
    if not isinstance(body, dict):
        raise BadLine("not a JSON object")
    at = _ts(body.get("at"), "at")
    arrival = at.timestamp()
    if "topic" in body:
        payload = body.get("payload")
        if isinstance(payload, dict):
            raw = json.dumps(payload).encode()
        elif isinstance(payload, str):
            raw = payload.encode()
        else:
            raise BadLine("'payload' must be an object or a string")
        return at, Envelope(str(body["topic"]), raw, arrival), True
    if "trap" in body:
        trap = _trap(body["trap"], traps)
        return at, Envelope("", b"", arrival, msg=trap, source="trap"), True
    if "maintenance" in body:
        notice = _maintenance(body["maintenance"])
        return at, Envelope("", b"", arrival, msg=notice, source="maintenance"), True
    if set(body) == {"at"}:
        return at, None, True
    return at, None, False


def _ts(value: object, key: str) -> datetime:
    parsed = wire.parse_ts(value)
    if isinstance(parsed, wire.DecodeError):
        raise BadLine(f"{key!r}: {parsed.detail}")
    return parsed


def _trap(raw: object, traps: Mapping[str, str]) -> Trap:
    if not isinstance(raw, dict):
        raise BadLine("'trap' must be an object")
    device = raw.get("device")
    if not isinstance(device, str) or not wire.valid_id(device):
        raise BadLine(f"trap: invalid device {device!r}")
    oid, name = raw.get("oid"), raw.get("name")
    if oid is not None and not isinstance(oid, str):
        raise BadLine("trap: 'oid' must be a string")
    if name is None and oid is not None:
        name = traps.get(oid)
        if name is None:
            raise BadLine(f"trap: unknown OID {oid!r} (name it under 'traps' in a rule file)")
    if not isinstance(name, str) or not name:
        raise BadLine("trap: give 'name' or a known 'oid'")
    varbinds = raw.get("varbinds", {})
    if not isinstance(varbinds, dict):
        raise BadLine("trap: 'varbinds' must be an object")
    return Trap(device=device, name=name, oid=oid, varbinds=varbinds)


def _maintenance(raw: object) -> Maintenance:
    if not isinstance(raw, dict):
        raise BadLine("'maintenance' must be an object")
    device, site = raw.get("device"), raw.get("site")
    if device is not None and (not isinstance(device, str) or not wire.valid_id(device)):
        raise BadLine(f"maintenance: invalid device {device!r}")
    if site is not None and (not isinstance(site, str) or not site):
        raise BadLine(f"maintenance: invalid site {site!r}")
    try:
        return Maintenance(
            start=_ts(raw.get("start"), "maintenance.start"),
            end=_ts(raw.get("end"), "maintenance.end"),
            device=device,
            site=site,
        )
    except ValueError as exc:
        raise BadLine(f"maintenance: {exc}") from None


class Replay:
    def __init__(
        self,
        engine: Engine,
        stages: Sequence[ReplayStage] = (),
        *,
        emit: Emit,
        adopt: Sequence[str] = (),
    ) -> None:
        self.engine = engine
        self.stages: list[ReplayStage] = [FaultPrinter(emit), *stages]
        self._counted = _Counted()
        metrics = Metrics()
        self._refusals = _Refusals(metrics)
        self.pipeline: Pipeline = assemble(
            intake=IntakeConfig(),
            mappings=(),
            metrics=metrics,
            registry=Registry(metrics, identity=from_inventory(engine.inventory, adopt=adopt)),
            rejects=self._refusals,
            measurement="fleet",
            telemetry=None,
            recent=None,
            engine=engine,
            fault_stages=(self._counted, *self.stages),
        )
        self._last: datetime | None = None

    def run(self, lines: Iterable[str], warn: Callable[[str], None]) -> ReplayResult:
        count = bad = events = 0
        for number, text in enumerate(lines, start=1):
            if not text.strip():
                continue
            count += 1
            try:
                events += self.feed(text)
            except BadLine as exc:
                bad += 1
                warn(f"line {number}: {exc}; skipped")
        return ReplayResult(count, bad, events)

    def feed(self, text: str) -> int:
        """One recording line; returns the number of fault events it produced."""
        try:
            body = json.loads(text)
        except ValueError as exc:
            raise BadLine(f"not JSON: {exc}") from None
        at, envelope, is_pipeline_line = parse_line(body, self.engine.rules.traps)
        if self._last is not None and at < self._last:
            raise BadLine(f"'at' goes back in time (previous line: {wire.format_ts(self._last)})")
        handler = None
        if not is_pipeline_line:
            handler = next((s for s in self.stages if set(body) & set(s.line_kinds)), None)
            if handler is None:
                raise BadLine(f"unknown line kind (keys: {', '.join(sorted(body))})")
        previous, self._last = self._last, at
        before = self._counted.events
        if envelope is None:
            self.pipeline.tick(at)
        else:
            self.pipeline([envelope])
            refused = self._refusals.take()
            if refused is not None:
                self._last = previous  # a refused line lets no time pass
                raise BadLine(f"message refused: {refused}")
            self.pipeline.advance(at)
        if handler is not None:
            handler.line(body, at)
        return self._counted.events - before


class _Counted:
    """A fault stage that counts the events (for the summary)."""

    def __init__(self) -> None:
        self.events = 0

    def on_fault(self, event: FaultEvent) -> None:
        self.events += 1

    def advance(self, now: datetime) -> None:
        pass
