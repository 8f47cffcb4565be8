"""``fleetdesk demo`` end to end: the real command, its summary, the desk's journal, no leftovers.

The demo starts its own Mosquitto, VictoriaMetrics and snmpd (all installed here by
scripts/ensure-system-packages.sh); the second test forces the embedded broker and stops the
demo with SIGINT as Ctrl-C would.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from standardwebhooks.webhooks import Webhook

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def _leftovers(workdir: Path) -> list[str]:
    """Processes whose command line names the demo's folder (its Mosquitto, snmpd, ...)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if str(workdir) in cmdline:
            found.append(f"{proc.name}: {cmdline}")
    return found


def _demo(workdir: Path, *args: str, secret: str) -> subprocess.Popen[str]:
    env = dict(os.environ, PYTHONPATH=str(REPO), FLEETDESK_DEMO_DESK_SECRET=secret)
    return subprocess.Popen(
        [sys.executable, "-m", "collector", "demo", "--workdir", str(workdir), *args],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _journal(workdir: Path, secret: str) -> list[dict[str, Any]]:
    """Every webhook the desk received, checked again with the standardwebhooks library."""
    hook = Webhook(secret)
    events = []
    for line in (workdir / "webhooks.jsonl").read_text().splitlines():
        entry = json.loads(line)
        events.append(hook.verify(entry["body"], entry["headers"]))  # raises when forged
    return events


def _secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


def test_demo_runs_the_fleet_through_the_fault_script(tmp_path: Path) -> None:
    workdir, secret = tmp_path / "demo", _secret()
    summary_file = tmp_path / "S.json"
    proc = _demo(
        workdir,
        *("--devices", "50", "--speed", "60", "--duration", "60"),
        *("--summary", str(summary_file)),
        secret=secret,
    )
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, out
    summary = json.loads(summary_file.read_text())
    tickets, cast = summary["tickets"], summary["cast"]

    by_policy = tickets["by_policy_level"]
    assert len(by_policy) >= 3, by_policy
    assert sum(len(levels) for levels in by_policy.values()) >= 4, by_policy  # several levels
    power = [t for t in tickets["exempt"] if t["device"] == cast["power"]]
    assert [t["kind"] for t in power] == ["device_offline"], tickets["exempt"]
    assert power[0]["exempt"] == "power_outage"
    dark = [t for t in tickets["site_outage"] if t["site"] == cast["dark_site"]]
    assert len(dark) == 1, tickets["site_outage"]  # one ticket for the site ...
    assert len(dark[0]["devices"]) >= 2  # ... listing its devices
    assert all(d.startswith(cast["dark_site"] + "-") for d in dark[0]["devices"])
    kinds = tickets["by_kind"]
    for kind in ("serial_link_down", "cpu_high", "flapping", "reported_by_phone"):
        assert kinds.get(kind), (kind, kinds)
    assert tickets["closed_after_followup"] >= 1

    hooks = summary["webhooks"]
    events = _journal(workdir, secret)
    assert hooks["received"] == len(events) == hooks["verified"] > 0
    assert hooks["refused"] == 0 and hooks["delivered"] >= len({e["id"] for e in events})
    numbers = {e["ticket"]["number"] for e in events}
    assert dark[0]["number"] in numbers and power[0]["number"] in numbers
    assert hooks["acks_accepted"] >= 1  # the desk's signed answers were taken
    assert summary["sla"]["met"] >= 1

    assert summary["http"]["/healthz"] == 200 and summary["http"]["/metrics"] == 200
    # the board's API answered the viewer token the demo printed
    assert summary["http"]["/api/v1/tickets"] == 200 and summary["http"]["/api/v1/devices"] == 200
    assert summary["services"]["broker"] == "mosquitto"
    assert not summary["agent_errors"]
    assert not _leftovers(workdir)
    assert not Path(summary["services"]["runtime"]).exists()  # hosts and spools removed
    assert "tickets by policy and level" in out and "fault script:" in out


def test_ctrl_c_stops_the_demo_cleanly_on_the_embedded_broker(tmp_path: Path) -> None:
    workdir, secret = tmp_path / "demo", _secret()
    summary_file = tmp_path / "S.json"
    proc = _demo(
        workdir,
        *("--devices", "40", "--speed", "60", "--duration", "600", "--embedded-broker"),
        *("--summary", str(summary_file)),
        secret=secret,
    )
    assert proc.stdout is not None
    lines = []
    deadline = time.monotonic() + 120
    for line in proc.stdout:  # until the power cut of the script is printed
        lines.append(line)
        if "power cut" in line or time.monotonic() > deadline:
            break
    assert any("embedded" in line for line in lines), "".join(lines)
    time.sleep(4)  # its dying gasp and a few reports through the embedded broker
    proc.send_signal(signal.SIGINT)
    rest, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, "".join(lines) + rest
    summary = json.loads(summary_file.read_text())
    assert summary["interrupted"] is True
    assert summary["services"]["broker"].startswith("embedded")
    assert summary["tickets"]["total"] >= 1  # data went through the embedded broker
    assert summary["webhooks"]["verified"] == summary["webhooks"]["received"]
    assert not _leftovers(workdir)
    assert not Path(summary["services"]["runtime"]).exists()
