"""The collector as a separate process (``python -m collector collector --config ...``), so a test
can SIGKILL it mid-work, and read its /metrics and /healthz from outside."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class CollectorProcess:
    config: Path
    http_port: int
    log: Path
    _proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def start(self) -> CollectorProcess:
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        out = self.log.open("ab")
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "collector", "collector", "--config", str(self.config)],
            stdout=out,
            stderr=out,
            env=env,
            cwd=str(self.config.parent),
        )
        return self

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def kill(self) -> None:
        """SIGKILL: no drain, no last commit, nothing flushed (nothing if not running)."""
        if self._proc is None:
            return
        if self._proc.poll() is None:
            self._proc.send_signal(signal.SIGKILL)
        self._proc.wait(timeout=10)
        self._proc = None

    def wait_subscribed(self, timeout: float = 30.0) -> CollectorProcess:
        """Until ``/healthz`` says ``mqtt_subscribed`` (after the broker's SUBACK)."""
        self.wait_until(lambda: self.health().get("mqtt_subscribed"), timeout, "subscribed")
        return self

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM and wait for the drain; the exit code."""
        if self._proc is None:
            return 0
        self._proc.send_signal(signal.SIGTERM)
        try:
            code = self._proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            code = self._proc.wait(timeout=10)
        self._proc = None
        return code

    def _get(self, path: str) -> str:
        url = f"http://127.0.0.1:{self.http_port}{path}"
        with urllib.request.urlopen(url, timeout=5) as resp:
            return str(resp.read().decode())

    def metrics(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        """Every sample: (name, sorted labels) -> value; empty while not yet listening."""
        try:
            text = self._get("/metrics")
        except OSError:
            return {}
        out: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
        for family in text_string_to_metric_families(text):
            for s in family.samples:
                out[(s.name, tuple(sorted(s.labels.items())))] = s.value
        return out

    def value(self, name: str, **labels: str) -> float:
        return self.metrics().get((name, tuple(sorted(labels.items()))), 0.0)

    def health(self) -> dict[str, Any]:
        try:
            found: dict[str, Any] = json.loads(self._get("/healthz"))
        except OSError:
            return {}
        return found

    def wait_until(self, predicate: Any, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            if not self.running:
                raise AssertionError(f"collector exited while waiting for {what}:\n{self.tail()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"not reached in {timeout:g}s: {what}\n{self.tail()}")
            time.sleep(0.02)

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return ""
