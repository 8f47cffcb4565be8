"""A throw-away PKI for TLS tests, made with the ``openssl`` program: a CA, a server
certificate for 127.0.0.1 and client certificates (P-256 keys: fast to make)."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from tests.support.services import require_program

_KEY = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]


@dataclass(frozen=True)
class Pki:
    folder: Path
    ca_cert: Path
    ca_key: Path

    @classmethod
    def create(cls, folder: Path, name: str = "test-ca") -> Pki:
        folder.mkdir(parents=True, exist_ok=True)
        cert, key = folder / f"{name}.pem", folder / f"{name}.key"
        _openssl(
            "req", "-x509", *_KEY, "-keyout", key, "-out", cert, "-days", "2",
            "-subj", f"/CN={name}",
        )  # fmt: skip
        return cls(folder, cert, key)

    def issue(
        self, name: str, *, server: bool = False, hosts: str = "IP:127.0.0.1,DNS:localhost"
    ) -> tuple[Path, Path]:
        """A certificate (and key) signed by this CA: CN=name; a server one is for ``hosts``
        (a subjectAltName list; the default is loopback, another name makes a wrong-host one)."""
        cert, key = self.folder / f"{name}.pem", self.folder / f"{name}.key"
        csr, ext = self.folder / f"{name}.csr", self.folder / f"{name}.ext"
        usage = "serverAuth" if server else "clientAuth"
        san = f"subjectAltName={hosts}\n" if server else ""
        ext.write_text(f"{san}extendedKeyUsage={usage}\n")
        _openssl("req", *_KEY, "-keyout", key, "-out", csr, "-subj", f"/CN={name}")
        _openssl(
            "x509", "-req", "-in", csr, "-CA", self.ca_cert, "-CAkey", self.ca_key,
            "-CAcreateserial", "-out", cert, "-days", "2", "-extfile", ext,
        )  # fmt: skip
        return cert, key


def _openssl(*args: str | Path) -> None:
    program = require_program("openssl")
    done = subprocess.run([program, *map(str, args)], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"openssl {args[0]} failed: {done.stderr.strip()}")
