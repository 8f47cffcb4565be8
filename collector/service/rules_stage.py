"""The rules stage: every accepted input goes to the pure rules engine with its arrival time.

The engine (``collector.rules``) is pure: it takes time as an argument and returns fault
events. This stage and the clock task are its only callers in the service; the events they get
back are counted and recorded by ``FaultLog``, which a writer task persists (fault events and
the open-fault set in one transaction, plus the engine's exported state for restarts).
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Protocol

from collector.service.metrics import Metrics
from collector.service.pipeline import Envelope
from collector.store import OpenFault

log = logging.getLogger("fleetdesk.collector.rules")


class RulesEngine(Protocol):
    def process(self, msg: Any, at: datetime) -> list[Any]: ...

    def tick(self, at: datetime) -> list[Any]: ...

    def open_faults(self) -> Any: ...

    def export_state(self) -> dict[str, Any]: ...


def as_dict(obj: Any) -> dict[str, Any]:
    """A fault or fault event as JSON-ready data, whatever shape the engine returns."""
    if hasattr(obj, "to_json"):
        obj = obj.to_json()
    if isinstance(obj, str | bytes):
        obj = json.loads(obj)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        obj = dataclasses.asdict(obj)
    if not isinstance(obj, dict):
        return {"value": str(obj)}
    return json.loads(json.dumps(obj, default=str))  # type: ignore[no-any-return]


def _epoch(value: Any, default: float) -> float:
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
        except ValueError:
            return default
    return default


class FaultLog:
    """Fault events waiting to be written, and the open faults as last reported."""

    def __init__(self, engine: RulesEngine, metrics: Metrics) -> None:
        self.engine = engine
        self.metrics = metrics
        self.pending: list[tuple[float, str, str, dict[str, Any]]] = []
        self.changed = False

    def add(self, events: list[Any], at: float) -> None:
        for event in events:
            body = as_dict(event)
            kind = str(body.get("kind") or body.get("fault") or body.get("type") or "unknown")
            device = str(body.get("device") or body.get("site") or "")
            self.pending.append((at, device, kind, body))
            self.metrics.fault_events.labels(kind).inc()
        self.changed = True

    def take(self) -> tuple[list[tuple[float, str, str, dict[str, Any]]], list[OpenFault]]:
        events, self.pending = self.pending, []
        self.changed = False
        open_now = []
        for fault in self.engine.open_faults() or ():
            body = as_dict(fault)
            kind = str(body.get("kind") or "unknown")
            device = str(body.get("device") or body.get("site") or "")
            key = str(
                body.get("id") or body.get("fault_id") or body.get("key") or f"{device}/{kind}"
            )
            opened = _epoch(body.get("onset") or body.get("opened_at") or body.get("at"), 0.0)
            open_now.append(OpenFault(key, device, kind, opened, body))
        self.metrics.open_faults.set(len(open_now))
        return events, open_now


class RulesStage:
    def __init__(
        self,
        engine: RulesEngine,
        faults: FaultLog,
        to_input: Callable[[Envelope], Any] = lambda env: env.msg,
    ) -> None:
        self.engine = engine
        self.faults = faults
        self.to_input = to_input

    def __call__(self, batch: list[Envelope]) -> list[Envelope]:
        process = self.engine.process
        for env in batch:
            item = self.to_input(env)
            if item is None:
                continue
            try:
                events = process(item, datetime.fromtimestamp(env.at, UTC))
            except Exception:  # one bad input must not stop evaluation of the others
                log.exception("rules engine failed on %s", type(item).__name__)
                continue
            if events:
                self.faults.add(events, env.at)
        return batch

    def tick(self, now: float) -> None:
        events = self.engine.tick(datetime.fromtimestamp(now, UTC))
        if events:
            self.faults.add(events, now)
