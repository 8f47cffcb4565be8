"""Replay a recording through the engine: one JSON line in, zero or more JSON lines out.

The driver is a small pipeline: each recording line lets time pass, is parsed into an input
and fed to the engine; every fault event, and every line the engine does not know, goes
through the stages in order (the fault printer first; later stages such as tickets add their
own lines). Bad lines are reported with their number and skipped, never fatal.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from agent import wire
from collector.rules.engine import Engine
from collector.rules.faults import FaultEvent
from collector.rules.inputs import Input, Maintenance, Trap

Emit = Callable[[Mapping[str, Any]], None]


class BadLine(ValueError):
    """A recording line that cannot be used; the message says why."""


class Stage(Protocol):
    """One step after the engine. Every method may emit output lines.

    ``line_kinds``: the recording line keys (besides ``at``) this stage handles, e.g. ``desk``.
    """

    line_kinds: tuple[str, ...]

    def fault_event(self, event: FaultEvent, emit: Emit) -> None: ...

    def advance(self, at: datetime, emit: Emit) -> None: ...

    def line(self, body: Mapping[str, Any], at: datetime, emit: Emit) -> None:
        """Handle a recording line of one of ``line_kinds`` (after time advanced to ``at``).

        Raises BadLine if the line is malformed.
        """
        ...


class FaultPrinter:
    """The first stage: one output line per fault event."""

    line_kinds: tuple[str, ...] = ()

    def fault_event(self, event: FaultEvent, emit: Emit) -> None:
        emit(event.to_json())

    def advance(self, at: datetime, emit: Emit) -> None:
        pass

    def line(self, body: Mapping[str, Any], at: datetime, emit: Emit) -> None:
        pass


@dataclass(frozen=True, slots=True)
class ReplayResult:
    lines: int
    bad_lines: int
    events: int


_ENGINE_KEYS = ("topic", "trap", "maintenance")


def parse_line(body: object, traps: Mapping[str, str]) -> tuple[datetime, Input | None, bool]:
    """``(at, input or None, is_engine_line)``; raises BadLine naming the problem."""
    if not isinstance(body, dict):
        raise BadLine("not a JSON object")
    at = _ts(body.get("at"), "at")
    if "topic" in body:
        payload = body.get("payload")
        if isinstance(payload, dict):
            raw: bytes | str = json.dumps(payload)
        elif isinstance(payload, str):
            raw = payload
        else:
            raise BadLine("'payload' must be an object or a string")
        msg = wire.decode(str(body["topic"]), raw)
        if isinstance(msg, wire.DecodeError):
            raise BadLine(f"message refused: {msg}")
        return at, msg, True
    if "trap" in body:
        return at, _trap(body["trap"], traps), True
    if "maintenance" in body:
        return at, _maintenance(body["maintenance"]), True
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
    def __init__(self, engine: Engine, stages: Sequence[Stage] = (), *, emit: Emit) -> None:
        self.engine = engine
        self.stages: list[Stage] = [FaultPrinter(), *stages]
        self._emit = emit
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
        at, item, is_engine_line = parse_line(body, self.engine.rules.traps)
        if self._last is not None and at < self._last:
            raise BadLine(f"'at' goes back in time (previous line: {wire.format_ts(self._last)})")
        handler = None
        if not is_engine_line:
            handler = next((s for s in self.stages if set(body) & set(s.line_kinds)), None)
            if handler is None:
                raise BadLine(f"unknown line kind (keys: {', '.join(sorted(body))})")
        self._last = at
        events = self.engine.process(item, at) if item is not None else self.engine.tick(at)
        for event in events:
            for stage in self.stages:
                stage.fault_event(event, self._emit)
        for stage in self.stages:
            stage.advance(at, self._emit)
        if handler is not None:
            handler.line(body, at, self._emit)
        return len(events)
