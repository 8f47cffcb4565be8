"""The one place the pipeline is put together, for the live collector and for replay alike.

    envelope -> decode -> identity -> dedup -> registry -> telemetry -> rules
        -> fault stages: registry state | fault log (store) | tickets -> outbox | printer (replay)

The live service (``collector.service.app``) passes the wall clock, the SQL store's fault log
and the ticket runtime (tickets and their outbox rows in one transaction, delivered by the
worker); ``fleetdesk replay`` (``collector.pipeline.replay``) passes a virtual clock, an
in-memory ticket book and a printer. Everything between is the same code.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from collector.config.collector import IntakeConfig, MetricMapping
from collector.intake.deadletter import Rejects
from collector.intake.decode import DecodeStage
from collector.intake.envelope import Envelope
from collector.metrics import Metrics
from collector.pipeline.dedup import DedupStage, Registry, RegistryFaults, RegistryStage
from collector.pipeline.identity import Identity, IdentityStage
from collector.pipeline.rules_stage import RulesStage
from collector.pipeline.stage import FaultStage, Stage
from collector.pipeline.telemetry_stage import TsdbStage
from collector.rules.engine import Engine
from collector.store.tsdb import RecentSamples, TelemetryWriter


class Pipeline:
    """Intake stages in order, the rules stage last; ``tick`` lets time pass."""

    def __init__(
        self,
        stages: Sequence[tuple[str, Stage]],
        *,
        rules: RulesStage | None = None,
        fault_stages: Sequence[FaultStage] = (),
    ) -> None:
        self.stages = tuple(stages) + ((("rules", rules),) if rules is not None else ())
        self.rules = rules
        self.fault_stages = tuple(fault_stages)

    def names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.stages)

    def __call__(self, batch: list[Envelope]) -> list[Envelope]:
        for _name, stage in self.stages:
            if not batch:
                break
            batch = stage(batch)
        return batch

    def feed(self, raw: list[tuple[str, bytes, float]]) -> None:
        """Entry point for MQTT intake: (topic, payload, arrival) tuples. The first batch after
        the collector was not listening resumes the rules (``listening.ListeningClock``)."""
        if raw and self.rules is not None and self.rules.paused:
            self.rules.resume(raw[0][2])
        self([Envelope(t, p, a) for t, p, a in raw])

    def tick(self, now: datetime) -> None:
        """Let time pass: the rules' timers (absence, ``for``), then the fault stages' own."""
        if self.rules is not None:
            self.rules.tick(now)
        self.advance(now)

    def advance(self, now: datetime) -> None:
        """Let time pass for the fault stages alone (after an input was processed at ``now``)."""
        for stage in self.fault_stages:
            stage.advance(now)


def assemble(
    *,
    intake: IntakeConfig,
    mappings: tuple[MetricMapping, ...],
    metrics: Metrics,
    registry: Registry,
    rejects: Rejects,
    measurement: str,
    telemetry: TelemetryWriter | None,
    recent: RecentSamples | None,
    engine: Engine | None,
    fault_stages: Sequence[FaultStage] = (),
) -> Pipeline:
    """The stages in order. Without an engine there is no rules stage (and no fault stages);
    with one, the registry's device state follows its offline faults (``RegistryFaults``)."""
    identity = registry.identity or Identity()
    stages: list[tuple[str, Stage]] = [
        ("decode", DecodeStage(intake, mappings, rejects, metrics)),
        ("identity", IdentityStage(identity, registry.bound, rejects)),
        ("dedup", DedupStage(registry, metrics, rejects, intake.max_seq_jump)),
        ("registry", RegistryStage(registry, metrics)),
        ("telemetry", TsdbStage(measurement, metrics, telemetry, recent)),
    ]
    if engine is None:
        return Pipeline(stages)
    fault_stages = (RegistryFaults(registry, engine), *fault_stages)
    return Pipeline(
        stages,
        rules=RulesStage(engine, fault_stages, identity.judged),
        fault_stages=fault_stages,
    )
