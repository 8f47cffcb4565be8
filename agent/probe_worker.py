"""The probe thread: runs the probes for each report and for commands, off the main loop.

A slow ``ping`` or ``mmcli`` must never stall publishing, so the main loop only queues
:class:`Job` objects here and picks up each :class:`JobDone` after the worker wakes it.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from datetime import datetime
from typing import NamedTuple

from agent import wire
from agent.config_types import ReachTarget
from agent.probes import Probe, ProbeResult, Reading, Reason, Unavailable

log = logging.getLogger("fleetdesk.agent")


class Job(NamedTuple):
    kind: str  # "report" | "probe" | "ping"
    ts: datetime
    command: wire.Command | None = None
    target: ReachTarget | None = None
    count: int = 3  # type: ignore[assignment]  # shadows tuple.count (never called)


class JobDone(NamedTuple):
    job: Job
    results: list[tuple[str, ProbeResult]]


def run_probe(probe: Probe, now: float) -> ProbeResult:
    try:
        return probe.collect(now)
    except Exception as exc:  # a probe bug must not stop the agent; it is reported instead
        log.exception("probe %s failed", probe.name)
        return Unavailable(Reason.ERROR, f"{exc.__class__.__name__}: {exc}"[:200])


class ProbeWorker(threading.Thread):
    def __init__(self, probes: list[Probe], wake: Callable[[], None]) -> None:
        super().__init__(name="fleetdesk-probes", daemon=True)
        self.probes = {p.name: p for p in probes}
        self.jobs: queue.Queue[Job | None] = queue.Queue()
        self.done: queue.Queue[JobDone] = queue.Queue()
        self.busy_reports = 0  # report jobs queued or running (main thread's count)
        self._wake = wake

    def run(self) -> None:
        while (job := self.jobs.get()) is not None:
            now = time.monotonic()
            if job.kind == "report":
                results = [(name, run_probe(p, now)) for name, p in self.probes.items()]
            elif job.kind == "probe" and job.command is not None:
                name = str(job.command.args.get("probe"))
                results = [(name, run_probe(self.probes[name], now))]
            else:
                assert job.target is not None
                from agent.probes.reachability import measure  # only for ping commands

                found = measure((job.target,), job.count, 1.0)[job.target.name]
                if isinstance(found, Unavailable):
                    results = [("ping", found)]
                else:
                    metrics: dict[str, wire.MetricValue] = {"loss_pct": found.loss_pct}
                    if found.rtt_ms is not None:
                        metrics["rtt_ms"] = found.rtt_ms
                    metrics["method"] = found.method
                    results = [("ping", Reading(metrics))]
            self.done.put(JobDone(job, results))
            self._wake()

    def stop(self) -> None:
        self.jobs.put(None)
