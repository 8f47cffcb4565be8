"""A real Mosquitto broker started by a test on a free loopback port.

``Broker.stop()`` / ``Broker.start()`` restart it on the same port, so tests can cut the link.
"""

from __future__ import annotations

import getpass
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.services import free_port, require_program, stop_process, wait_for_port


@dataclass
class TlsFiles:
    cafile: Path
    certfile: Path
    keyfile: Path
    require_certificate: bool = True


@dataclass
class Broker:
    workdir: Path
    port: int = field(default_factory=free_port)
    tls: TlsFiles | None = None
    persistence: bool = True
    extra_conf: str = ""
    host: str = "127.0.0.1"
    _proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        scheme = "mqtts" if self.tls else "mqtt"
        return f"{scheme}://{self.host}:{self.port}"

    def _write_conf(self) -> Path:
        self.workdir.mkdir(parents=True, exist_ok=True)
        lines = [
            f"listener {self.port} {self.host}",
            # Started as root, Mosquitto drops to its own user, which can neither write the
            # persistence file in the test's private folder (sessions would not survive a
            # restart) nor read keys made by root; run it as the invoking user instead.
            f"user {getpass.getuser()}",
            "allow_anonymous true",
            f"persistence {'true' if self.persistence else 'false'}",
            f"persistence_location {self.workdir}/",
            "max_queued_messages 1000000",
            "max_inflight_messages 0",
            "log_dest stderr",
            "log_type error",
            "log_type warning",
        ]
        if self.tls:
            lines += [
                f"cafile {self.tls.cafile}",
                f"certfile {self.tls.certfile}",
                f"keyfile {self.tls.keyfile}",
                f"require_certificate {'true' if self.tls.require_certificate else 'false'}",
                "use_identity_as_username true" if self.tls.require_certificate else "",
            ]
        conf = self.workdir / "mosquitto.conf"
        conf.write_text("\n".join(lines) + "\n" + self.extra_conf)
        return conf

    def start(self) -> Broker:
        if self._proc is not None:
            return self
        binary = require_program("mosquitto")
        conf = self._write_conf()
        log = (self.workdir / "mosquitto.log").open("ab")
        self._proc = subprocess.Popen([binary, "-c", str(conf)], stdout=log, stderr=log)
        try:
            wait_for_port(self.port)
        except TimeoutError:
            self.stop()
            raise RuntimeError(
                f"mosquitto did not start: {(self.workdir / 'mosquitto.log').read_text()}"
            ) from None
        return self

    def stop(self) -> None:
        stop_process(self._proc)
        self._proc = None

    def log_text(self) -> str:
        """What the broker logged (its stderr), for tests that read the broker's own view."""
        return (self.workdir / "mosquitto.log").read_text(errors="replace")

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None
