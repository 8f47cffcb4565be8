"""Custom checks: run a command with a timeout, report its exit status and the first number
it prints (``exec_<name>_exit``, ``exec_<name>_value``).

The command is run directly (no shell) unless the configuration names a shell itself.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

from agent.probes.base import Probe, ProbeResult, Reading, SlotRecord, Unavailable, run_program
from agent.wire import MetricValue

_NUMBER_RE = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")


def first_number(text: str) -> int | float | None:
    match = _NUMBER_RE.search(text)
    if match is None:
        return None
    value = float(match.group(0))
    if not math.isfinite(value):
        return None
    return int(value) if value.is_integer() and abs(value) < 2**53 else value


class ExecProbe(SlotRecord):
    __slots__ = ("check", "command", "timeout_s")

    def __init__(self, check: str, command: tuple[str, ...], timeout_s: float = 5.0) -> None:
        self.check = check
        self.command = command
        self.timeout_s = timeout_s

    @property
    def name(self) -> str:
        return f"exec_{self.check}"

    def collect(self, now: float) -> ProbeResult:
        done = run_program(self.command, self.timeout_s)
        if isinstance(done, Unavailable):
            return done
        metrics: dict[str, MetricValue] = {f"exec_{self.check}_exit": done.returncode}
        value = first_number(done.stdout)
        if value is not None:
            metrics[f"exec_{self.check}_value"] = value
        return Reading(metrics)


def build(check: str, command: tuple[str, ...], timeout_s: float, root: Path) -> Probe:
    return ExecProbe(check, command, timeout_s)
