"""Reachability probe: packet loss and round-trip time to configured targets.

ICMP through the system's ``ping`` (iputils or BusyBox) when it is installed, otherwise (or
when asked) a TCP connect to ``host:port``, where a refused or timed-out connect counts as a
lost probe. ``ping_loss_pct`` is the worst target's loss and ``ping_rtt_ms`` the mean of the
targets' mean round-trip times; each target also gets ``ping_<name>_loss_pct`` and
``ping_<name>_rtt_ms``.
"""

from __future__ import annotations

import re
import shutil
import socket
import time
from pathlib import Path
from typing import NamedTuple

from agent.config_types import ReachTarget
from agent.probes.base import Probe, ProbeResult, Reading, Reason, SlotRecord, Unavailable
from agent.wire import MetricValue

_SENT_RE = re.compile(r"(\d+) packets transmitted, (\d+) (?:packets )?received")
_RTT_RE = re.compile(r"(?:rtt|round-trip) min/avg/max(?:/mdev)? = [\d.]+/([\d.]+)/")


class TargetResult(NamedTuple):
    loss_pct: float
    rtt_ms: float | None  # None when nothing came back
    method: str


def parse_ping(output: str) -> TargetResult | None:
    """Loss and mean RTT from iputils or BusyBox ``ping -c`` output."""
    sent = _SENT_RE.search(output)
    if sent is None or int(sent.group(1)) == 0:
        return None
    transmitted, received = int(sent.group(1)), int(sent.group(2))
    rtt = _RTT_RE.search(output)
    loss = round(100.0 * (transmitted - received) / transmitted, 1)
    return TargetResult(loss, float(rtt.group(1)) if rtt and received else None, "icmp")


def tcp_ping(host: str, port: int, count: int, timeout: float) -> TargetResult:
    rtts = []
    for _ in range(count):
        start = time.monotonic()
        try:
            with socket.create_connection((host, port), timeout=timeout):
                rtts.append((time.monotonic() - start) * 1000.0)
        except OSError:
            continue
    loss = round(100.0 * (count - len(rtts)) / count, 1)
    return TargetResult(loss, round(sum(rtts) / len(rtts), 3) if rtts else None, "tcp")


def _method(target: ReachTarget) -> str | Unavailable:
    if target.method == "tcp" or (target.method == "auto" and shutil.which("ping") is None):
        if target.port is None:
            return Unavailable(Reason.NO_PROGRAM, f"{target.host}: no ping and no port for TCP")
        return "tcp"
    if shutil.which("ping") is None:
        return Unavailable(Reason.NO_PROGRAM, "ping is not installed")
    return "icmp"


def measure(
    targets: tuple[ReachTarget, ...], count: int, timeout: float
) -> dict[str, TargetResult | Unavailable]:
    """Measure every target; ICMP targets run side by side, TCP ones after."""
    import subprocess  # lazily: most gateways measure with the system probes alone

    results: dict[str, TargetResult | Unavailable] = {}
    pings: dict[str, subprocess.Popen[str]] = {}
    for target in targets:
        method = _method(target)
        if isinstance(method, Unavailable):
            results[target.name] = method
        elif method == "icmp":
            wait = str(max(1, round(timeout)))
            argv = ["ping", "-n", "-c", str(count), "-W", wait, target.host]
            pings[target.name] = subprocess.Popen(
                argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
            )
    for target in targets:
        if target.name not in results and target.name not in pings:
            assert target.port is not None
            results[target.name] = tcp_ping(target.host, target.port, count, timeout)
    for name, proc in pings.items():
        try:
            output, _ = proc.communicate(timeout=count * (1 + timeout) + 2)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            results[name] = Unavailable(Reason.TIMEOUT, "ping did not finish")
            continue
        parsed = parse_ping(output)
        results[name] = parsed or Unavailable(Reason.FAILED, output.strip()[-120:])
    return results


class ReachabilityProbe(SlotRecord):
    __slots__ = ("targets", "count", "timeout_s", "name")  # noqa: RUF023 (field order)

    def __init__(
        self,
        targets: tuple[ReachTarget, ...],
        count: int = 3,
        timeout_s: float = 1.0,
        name: str = "reachability",
    ) -> None:
        self.targets = targets
        self.count = count
        self.timeout_s = timeout_s
        self.name = name

    def collect(self, now: float) -> ProbeResult:
        results = measure(self.targets, self.count, self.timeout_s)
        metrics: dict[str, MetricValue] = {}
        losses, rtts = [], []
        for name, result in results.items():
            if isinstance(result, Unavailable):
                continue
            metrics[f"ping_{name}_loss_pct"] = result.loss_pct
            losses.append(result.loss_pct)
            if result.rtt_ms is not None:
                metrics[f"ping_{name}_rtt_ms"] = result.rtt_ms
                rtts.append(result.rtt_ms)
        if not losses:
            reasons = [r for r in results.values() if isinstance(r, Unavailable)]
            first = reasons[0] if reasons else Unavailable(Reason.NO_DATA, "no target")
            return Unavailable(first.reason, "; ".join(r.detail for r in reasons)[:200])
        metrics["ping_loss_pct"] = max(losses)
        if rtts:
            metrics["ping_rtt_ms"] = round(sum(rtts) / len(rtts), 3)
        return Reading(metrics)


def build(targets: tuple[ReachTarget, ...], count: int, timeout_s: float, root: Path) -> Probe:
    return ReachabilityProbe(targets, count, timeout_s)
