"""Debian's VictoriaMetrics started by a test on a free loopback port (InfluxDB v2 write API)."""

from __future__ import annotations

import json
import subprocess
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.support.services import free_port, require_program, stop_process, wait_for_port


@dataclass
class Victoria:
    workdir: Path
    port: int = field(default_factory=free_port)
    _proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Victoria:
        binary = require_program("victoria-metrics")
        self.workdir.mkdir(parents=True, exist_ok=True)
        log = (self.workdir / "victoria.log").open("ab")
        self._proc = subprocess.Popen(
            [
                binary,
                f"-httpListenAddr=127.0.0.1:{self.port}",
                f"-storageDataPath={self.workdir / 'data'}",
                "-retentionPeriod=100y",
                "-search.latencyOffset=0s",
                "-search.disableCache",
                "-loggerLevel=ERROR",
            ],
            stdout=log,
            stderr=log,
        )
        wait_for_port(self.port, timeout=20)
        return self

    def stop(self) -> None:
        stop_process(self._proc)
        self._proc = None

    def export(self, match: str) -> list[dict[str, Any]]:
        """Every stored series matching the selector, as /api/v1/export returns them."""
        query = urllib.parse.urlencode({"match[]": match, "start": "0"})
        with urllib.request.urlopen(f"{self.url}/api/v1/export?{query}", timeout=10) as resp:
            return [json.loads(line) for line in resp.read().decode().splitlines() if line]

    def samples(self, match: str) -> dict[str, list[tuple[int, float]]]:
        """Samples by device label: (timestamp ms, value), sorted."""
        out: dict[str, list[tuple[int, float]]] = {}
        for series in self.export(match):
            pairs = zip(series["timestamps"], series["values"], strict=True)
            out.setdefault(series["metric"].get("device", ""), []).extend(pairs)
        return {k: sorted(v) for k, v in out.items()}

    def wait_for_samples(
        self, match: str, count: int, timeout: float = 30.0
    ) -> dict[str, list[tuple[int, float]]]:
        """Polls until ``count`` samples in all are visible (VictoriaMetrics flushes each ~1 s)."""
        deadline = time.monotonic() + timeout
        found: dict[str, list[tuple[int, float]]] = {}
        while time.monotonic() < deadline:
            found = self.samples(match)
            if sum(len(v) for v in found.values()) >= count:
                return found
            time.sleep(0.3)
        return found
