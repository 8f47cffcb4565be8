"""A SIGKILLed ``fleetdesk demo`` leaves nothing behind: its children die with it (Linux).

The demo cannot clean up after SIGKILL; its outside programs (Mosquitto, VictoriaMetrics,
snmpd) and its agent worker processes are started with PR_SET_PDEATHSIG, so the kernel ends
them. Checked from outside, in /proc: every descendant seen while the demo ran is gone. Its
runtime folder (the simulated hosts and spools, in /dev/shm) is removed by a watchdog that
outlives it: the folder the demo printed is gone too.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG"),
]


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        tree.setdefault(ppid, []).append(int(entry.name))
    return tree


def _descendants(pid: int) -> set[int]:
    tree, found, todo = _children(), set(), [pid]
    while todo:
        for child in tree.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return "?"


def test_sigkill_leaves_no_child_running(tmp_path: Path) -> None:
    workdir = tmp_path / "demo"
    proc = subprocess.Popen(
        [sys.executable, "-m", "collector", "demo", "--workdir", str(workdir),
         *("--devices", "20", "--speed", "60", "--duration", "600")],
        cwd=REPO, env=dict(os.environ, PYTHONPATH=str(REPO)),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    lines, deadline = [], time.monotonic() + 120
    for line in proc.stdout:  # until the fleet runs: services and workers all started
        lines.append(line)
        if "agents powered on" in line or time.monotonic() > deadline:
            break
    assert any("agents powered on" in line for line in lines), "".join(lines)
    runtime = Path(next(line.split()[1] for line in lines if line.startswith("  runtime ")))
    assert runtime.is_dir(), runtime
    children = _descendants(proc.pid)
    assert children, "the demo started no process"
    proc.kill()
    proc.wait(10)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and (
        any(_alive(pid) for pid in children) or runtime.exists()
    ):
        time.sleep(0.2)
    left = [f"{pid}: {_cmdline(pid)}" for pid in children if _alive(pid)]
    for pid in children:  # do not leave them to the next test if the assertion fails
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)
    assert not left, "".join(lines) + "\n".join(left)
    assert not runtime.exists(), f"the runtime folder {runtime} is left behind"
