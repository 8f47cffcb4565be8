"""The rules stage: every accepted input goes to the pure rules engine with its arrival time.

The engine (``collector.rules``) takes time as an argument and returns fault events. This stage
and the clock task are its only callers in the service; the events they get back are counted
and kept by ``FaultLog`` until the state writer persists them (fault events and the open-fault
set in one transaction; the engine's exported state separately, for restarts).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from collector.config.collector import CollectorConfig
from collector.intake.envelope import Envelope
from collector.intake.snmp_traps import TrapNotice
from collector.metrics import Metrics
from collector.pipeline import fault_handoff
from collector.pipeline.stage import FaultStage
from collector.preset_paths import default_rules_dir
from collector.rules.engine import Engine
from collector.rules.faults import FaultEvent
from collector.rules.inputs import Input, Maintenance, Trap
from collector.rules.inventory import Inventory
from collector.rules.ruleset import RuleSet
from collector.rules.snapshot import fault_to_dict
from collector.store import OpenFault
from collector.store.store import FaultRecord, OpenSet

log = logging.getLogger("fleetdesk.collector.rules")


@dataclass(frozen=True, slots=True)
class RulesSetup:
    inventory: Inventory
    rules: RuleSet
    default_policy: str
    policies_dir: Path | None  # the rules folder's own policies first, then the presets


def load_setup(cfg: CollectorConfig) -> RulesSetup | None:
    """Inventory and rules for ``rules.inventory`` (none configured: no rules stage)."""
    if cfg.rules.inventory is None:
        return None
    return setup_from(cfg.rules.inventory, cfg.rules.rules_dir, cfg.rules.default_policy)


def setup_from(inventory: Path, rules_dir: Path | None, default_policy: str) -> RulesSetup:
    """Inventory, rules and policies, checked now (fail at start, not at the first fault).

    ``rules_dir``: a rules folder (``rules.d/``, ``policies/``, ``calendars/``) or one rule file;
    None: the shipped presets. Raises ConfigError (one line: file, line, key, reason)."""
    from collector.rules.inventory import load_inventory
    from collector.rules.ruleset import load_rules

    rules_path = rules_dir or default_rules_dir()
    setup = RulesSetup(
        load_inventory(inventory),
        load_rules(rules_path),
        default_policy,
        # policies and calendars: the rules folder's own first, then the shipped presets
        rules_path if rules_path.is_dir() else None,
    )
    new_engine(setup, None)  # policies are checked here
    return setup


def new_engine(setup: RulesSetup, state: dict[str, Any] | None) -> Engine:
    """A fresh engine, or one continuing from a saved state (a stale state is dropped)."""
    kwargs: dict[str, Any] = {
        "default_policy": setup.default_policy,
        "rules_dir": setup.policies_dir,
    }
    if state is not None:
        try:
            return Engine.restore(setup.inventory, setup.rules, state, **kwargs)
        except (ValueError, KeyError, TypeError) as exc:
            log.warning("saved rules state not usable (%s); starting fresh", exc)
    return Engine(setup.inventory, setup.rules, **kwargs)


def to_input(env: Envelope) -> Input | None:
    msg = env.msg
    if isinstance(msg, TrapNotice):
        return Trap(device=msg.device, name=msg.name, oid=msg.oid, varbinds=msg.varbinds)
    return msg  # type: ignore[no-any-return]


class FaultLog:
    """A fault stage: fault events waiting to be written, and the open faults as last reported.

    The state writer takes them (``take``) and writes events and the open-fault set in one
    transaction; what it could not write is put back for the next flush."""

    def __init__(self, engine: Engine, metrics: Metrics, *, tickets: bool = False) -> None:
        self.engine = engine
        self.metrics = metrics
        self.tickets = tickets  # store each event's ticket input: the durable hand-off
        self.pending: list[FaultRecord] = []
        self.changed = False
        self._dirty: set[str] = set()  # fault ids with events since the last take
        self._full_at: float | None = None  # monotonic time of the last full open-set write

    def on_fault(self, event: FaultEvent) -> None:
        fault = event.fault
        signal = fault_handoff.encode(event) if self.tickets else None
        self.pending.append(
            (event.at.timestamp(), fault.subject, fault.kind, event.to_json(), signal)
        )
        self.metrics.fault_events.labels(fault.kind).inc()
        self._dirty.add(fault.id)
        if event.into is not None:
            self._dirty.add(event.into)
        self.changed = True

    def advance(self, now: datetime) -> None:
        pass

    def open_now(self) -> list[OpenFault]:
        faults = self.engine.open_faults()
        self.metrics.open_faults.set(len(faults))
        return [
            OpenFault(f.id, f.subject, f.kind, f.onset.timestamp(), fault_to_dict(f))
            for f in faults
        ]

    @property
    def open_set_changed(self) -> bool:
        """Events were taken without their change to the open-fault set (``take_events``)."""
        return bool(self._dirty) or self._full_at is None

    def take_events(self) -> list[FaultRecord]:
        """The events since the last take, alone: the open-fault change waits for ``take``
        (a fault's own pass stays small; the stored open set is for display and restarts)."""
        events, self.pending = self.pending, []
        self.changed = False
        return events

    def take(self, now: float | None = None) -> tuple[list[FaultRecord], OpenSet]:
        """The events since the last take, and the change to the open-fault set: the faults
        touched since the last ``take`` (still open: written; closed: removed), or the whole
        set at the first take and every ``FULL_OPEN_SET_S`` (``now``: monotonic seconds)."""
        now = time.monotonic() if now is None else now
        events, self.pending = self.pending, []
        dirty, self._dirty = self._dirty, set()
        self.changed = False
        if self._full_at is None or now - self._full_at >= FULL_OPEN_SET_S:
            self._full_at = now
            return events, OpenSet(self.open_now(), full=True)
        faults = self.engine.open_faults()
        self.metrics.open_faults.set(len(faults))
        touched = [f for f in faults if f.id in dirty]
        still = {f.id for f in touched}
        return events, OpenSet(
            [
                OpenFault(f.id, f.subject, f.kind, f.onset.timestamp(), fault_to_dict(f))
                for f in touched
            ],
            removed=sorted(dirty - still),
        )


FULL_OPEN_SET_S = 60.0  # a full rewrite now and then: nothing the deltas missed stays stale
MAX_HELD = 100_000  # inputs kept back while not listening (SNMP, traps); past it, applied


class RulesStage:
    """The last intake stage: each input to the pure engine with its arrival time; the fault
    events it returns go, one by one and in order, to every fault stage.

    Devices the rules do not judge (``judged``: unassigned, not adopted) are skipped. While the
    collector is not listening to MQTT (``pause``: starting, or the broker is away) the engine's
    time stands still: other inputs (SNMP, traps) wait, so that their instants cannot let MQTT
    devices' absence timers run; ``resume`` (the first MQTT batch, or the clock after a grace)
    rebases the absence timers by the time not listened to, then applies what waited."""

    def __init__(
        self,
        engine: Engine,
        fault_stages: Sequence[FaultStage],
        judged: Callable[[str, str], bool] | None = None,
    ) -> None:
        self.engine = engine
        self.fault_stages = tuple(fault_stages)
        self.judged = judged
        self.paused = False
        self._held: list[Envelope] = []

    def pause(self) -> None:
        self.paused = True

    def resume(self, at: float) -> None:
        """Listening again since ``at`` (epoch seconds)."""
        if not self.paused:
            return
        self.paused = False
        self.engine.resume(datetime.fromtimestamp(at, UTC))
        held, self._held = self._held, []
        if held:
            self(held)

    def __call__(self, batch: list[Envelope]) -> list[Envelope]:
        if self.paused and len(self._held) + len(batch) <= MAX_HELD:
            self._held.extend(batch)
            return batch
        process = self.engine.process
        judged = self.judged
        for env in batch:
            item = to_input(env)
            if item is None:
                continue
            if (
                judged is not None
                and not isinstance(item, Maintenance)
                and not judged(item.device, env.tenant)
            ):
                continue  # unknown, reporting: listed in the registry, not judged
            try:
                events = process(item, datetime.fromtimestamp(env.at, UTC))
            except Exception:  # one bad input must not stop evaluation of the others
                log.exception("rules engine failed on %s", type(item).__name__)
                continue
            if events:
                self._hand_on(events)
        return batch

    def tick(self, now: datetime) -> None:
        events = self.engine.tick(now)
        if events:
            self._hand_on(events)

    def cancel_maintenance(self, window_id: str, now: datetime) -> None:
        """An operator cancelled a window (KeyError: unknown id); faults it held are raised."""
        self._hand_on(self.engine.cancel_maintenance(window_id, now))

    def _hand_on(self, events: Sequence[FaultEvent]) -> None:
        stages = self.fault_stages
        for event in events:
            for stage in stages:
                stage.on_fault(event)
