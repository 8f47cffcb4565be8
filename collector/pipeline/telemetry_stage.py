"""The telemetry stage: samples to the time-series database (line protocol), or kept in memory."""

from __future__ import annotations

from agent import wire
from collector.intake.envelope import Envelope
from collector.metrics import Metrics
from collector.store.tsdb import RecentSamples, TelemetryWriter, line


class TsdbStage:
    def __init__(
        self,
        measurement: str,
        metrics: Metrics,
        sink: TelemetryWriter | None,
        recent: RecentSamples | None,
    ) -> None:
        self.measurement = measurement
        self.metrics = metrics
        self.sink = sink
        self.recent = recent

    def __call__(self, batch: list[Envelope]) -> list[Envelope]:
        if self.sink is not None:
            lines = []
            for env in batch:
                msg = env.msg
                if isinstance(msg, wire.Telemetry):
                    text = line(self.measurement, env.tenant, msg)
                    if text is not None:
                        lines.append(text)
            if lines:
                self.sink.submit(lines)
        if self.recent is not None and self.recent.size:  # the board's device charts
            kept = 0
            for env in batch:
                if isinstance(env.msg, wire.Telemetry):
                    self.recent.add(env.msg)
                    kept += 1
            if kept and self.sink is None:  # counted as the only copy kept
                self.metrics.tsdb_lines.labels("kept").inc(kept)
        return batch
