"""net-snmp's snmpd started by a test on a free loopback UDP port, with its own config.

v2c community ``public`` (read-only) and a v3 authPriv user (SHA/AES), serving the test
machine's real MIBs. ``snmptrap`` sends real notifications.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.services import free_port, require_program, stop_process

V3_USER = "fduser"
V3_AUTH = "authpass-123"
V3_PRIV = "privpass-123"
TRAP_ENGINE_ID = "0x8000000001020304"


@dataclass
class Snmpd:
    workdir: Path
    port: int = field(default_factory=lambda: free_port(socket.SOCK_DGRAM))
    community: str = "public"
    _proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Snmpd:
        binary = require_program("snmpd")
        self.workdir.mkdir(parents=True, exist_ok=True)
        conf = self.workdir / "snmpd.conf"
        conf.write_text(
            "\n".join(
                [
                    f"rocommunity {self.community} 127.0.0.1",
                    f'createUser {V3_USER} SHA "{V3_AUTH}" AES "{V3_PRIV}"',
                    f"rouser {V3_USER} priv",
                    "",
                ]
            )
        )
        env = dict(os.environ, SNMP_PERSISTENT_DIR=str(self.workdir / "persist"))
        log = (self.workdir / "snmpd.log").open("ab")
        self._proc = subprocess.Popen(
            [binary, "-f", "-Lo", "-C", "-c", str(conf), f"udp:127.0.0.1:{self.port}"],
            stdout=log,
            stderr=log,
            env=env,
        )
        self._wait_ready()
        return self

    def _wait_ready(self, timeout: float = 15.0) -> None:
        getter = require_program("snmpget")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            done = subprocess.run(
                [
                    getter,
                    "-v2c",
                    "-c",
                    self.community,
                    "-t",
                    "0.3",
                    "-r",
                    "0",
                    f"127.0.0.1:{self.port}",
                    "1.3.6.1.2.1.1.3.0",
                ],
                capture_output=True,
                check=False,
            )
            if done.returncode == 0:
                return
            assert self._proc is not None
            if self._proc.poll() is not None:
                break
        raise RuntimeError(f"snmpd did not start: {(self.workdir / 'snmpd.log').read_text()}")

    def stop(self) -> None:
        stop_process(self._proc)
        self._proc = None


def snmptrap(port: int, options: list[str], trap_oid: str, *varbinds: str) -> None:
    """Send one notification with net-snmp's snmptrap to 127.0.0.1:port (uptime left empty)."""
    binary = require_program("snmptrap")
    args = [binary, *options, f"udp:127.0.0.1:{port}", "", trap_oid, *varbinds]
    subprocess.run(args, check=True, capture_output=True)
