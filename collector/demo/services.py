"""The demo's outside services on free loopback ports: Mosquitto, VictoriaMetrics, snmpd.

Each is used when its program is installed and left out (said so) when not; the broker falls
back to the embedded one (:mod:`collector.demo.broker`). Every process started here is
stopped by :meth:`Services.stop` (terminate, then kill after 5 s); on Linux each also dies with
the demo when the demo itself is killed (SIGKILL included: :func:`die_with_parent`), and
:func:`remove_when_gone` removes the demo's runtime folder after it, however it ended.
"""

from __future__ import annotations

import ctypes
import getpass
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

_SBIN = ("/usr/sbin", "/usr/local/sbin", "/sbin")
PR_SET_PDEATHSIG = 1


def _load_prctl() -> Any:
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):  # no prctl: Services.stop still cleans up
        return None


# Looked up once, here: the child of a fork in a threaded process must not dlopen.
_PRCTL = _load_prctl()


def die_with_parent(sig: int = signal.SIGTERM) -> None:
    """Linux: the kernel sends ``sig`` to this process when its parent dies (even by SIGKILL).

    The ``preexec_fn`` of the demo's outside programs, and the first thing its agent workers
    do. The parent is the thread that started the process: the demo starts them from its loop
    thread or its executor's, which live until the demo ends. Elsewhere it does nothing.
    """
    if _PRCTL is not None:
        _PRCTL(PR_SET_PDEATHSIG, int(sig), 0, 0, 0)


# The watchdog's whole program: its stdin's other end is held by the demo alone, so EOF means
# the demo has ended (exit, exception or SIGKILL: the kernel closes the descriptors of a dead
# process). The workers die at the same moment (PR_SET_PDEATHSIG) and may still write a file
# or two while the tree goes: it tries again for a few seconds.
_REMOVER = """
import shutil, sys, time
from pathlib import Path
sys.stdin.buffer.read()
folder = Path(sys.argv[1])
for _ in range(50):
    shutil.rmtree(folder, ignore_errors=True)
    if not folder.exists():
        break
    time.sleep(0.1)
"""


def remove_when_gone(folder: Path) -> subprocess.Popen[bytes]:
    """Start a watchdog that removes ``folder`` once this process has ended, however it ended.

    The demo's runtime folder lives in /dev/shm, which no one else cleans until a reboot; after
    SIGKILL the demo runs no clean-up. The watchdog is in a session of its own (a Ctrl-C in the
    terminal does not end it first) and is not killed with the demo: it must outlive it. The
    caller closes its ``stdin`` after removing the folder itself, and the watchdog exits.
    """
    return subprocess.Popen(
        [sys.executable, "-c", _REMOVER, str(folder)],
        stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True,
    )  # fmt: skip


def find_program(name: str) -> str | None:
    found = shutil.which(name)
    if found is not None:
        return found
    for folder in _SBIN:
        if (Path(folder) / name).exists():
            return str(Path(folder) / name)
    return None


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return True
        except OSError:
            time.sleep(0.05)
    return False


@dataclass
class Services:
    workdir: Path
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def _start(
        self, name: str, argv: list[str], env: dict[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        log = (self.workdir / f"{name}.log").open("ab")
        proc = subprocess.Popen(
            argv, stdout=log, stderr=log, stdin=subprocess.DEVNULL, env=env,
            start_new_session=True,  # a Ctrl-C in the terminal is the demo's to handle
            preexec_fn=die_with_parent,  # noqa: PLW1509 (one async-signal-safe prctl call)
        )  # fmt: skip
        self.procs.append(proc)
        return proc

    def mosquitto(self) -> int | None:
        binary = find_program("mosquitto")
        if binary is None:
            return None
        port = free_port()
        conf = self.workdir / "mosquitto.conf"
        conf.write_text(
            "\n".join(
                [
                    f"listener {port} 127.0.0.1",
                    f"user {getpass.getuser()}",
                    "allow_anonymous true",  # loopback only; deploy/mosquitto/ is the real one
                    "persistence false",
                    "max_queued_messages 100000",
                    "log_dest stderr",
                    "log_type error",
                    "",
                ]
            )
        )
        self._start("mosquitto", [binary, "-c", str(conf)])
        return port if wait_for_port(port) else None

    def victoria(self) -> str | None:
        binary = find_program("victoria-metrics")
        if binary is None:
            return None
        port = free_port()
        self._start(
            "victoria",
            [
                binary,
                f"-httpListenAddr=127.0.0.1:{port}",
                f"-storageDataPath={self.workdir / 'victoria'}",
                "-loggerLevel=ERROR",
            ],
        )
        return f"http://127.0.0.1:{port}" if wait_for_port(port, 20) else None

    def snmpd(self) -> int | None:
        binary = find_program("snmpd")
        if binary is None:
            return None
        port = free_port(socket.SOCK_DGRAM)
        conf = self.workdir / "snmpd.conf"
        conf.write_text("rocommunity public 127.0.0.1\n")
        env = dict(os.environ, SNMP_PERSISTENT_DIR=str(self.workdir / "snmp-persist"))
        proc = self._start(
            "snmpd", [binary, "-f", "-Lo", "-C", "-c", str(conf), f"udp:127.0.0.1:{port}"], env
        )
        time.sleep(0.3)
        return port if proc.poll() is None else None

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.procs.clear()
