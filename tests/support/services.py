"""Helpers to start the real services tests talk to, on free loopback ports.

A missing program is a test failure, never a skip: CI installs them
(scripts/ensure-system-packages.sh).
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

_SBIN = ("/usr/sbin", "/usr/local/sbin", "/sbin")


def require_program(name: str) -> str:
    """Absolute path of a program the test needs; fails the test when it is not installed."""
    found = shutil.which(name)
    if found is None:
        for folder in _SBIN:
            candidate = Path(folder) / name
            if candidate.exists():
                return str(candidate)
        pytest.fail(
            f"required program {name!r} is not installed (run scripts/ensure-system-packages.sh)"
        )
    return found


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, timeout: float = 10.0, host: str = "127.0.0.1") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.02)
    raise TimeoutError(f"nothing listening on {host}:{port} after {timeout}s")


def stop_process(proc: subprocess.Popen[bytes] | None) -> None:
    """Terminate a service the test started, killing it if it does not stop within 10 s."""
    if proc is None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
