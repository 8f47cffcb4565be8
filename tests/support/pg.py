"""The one place the tests learn where PostgreSQL is.

``FLEETDESK_TEST_PG_URL`` names an admin connection (a database the tests may connect to and
create others from); the default is the local server with trust auth for ``postgres``, which
``scripts/ensure-system-packages.sh`` installs and starts. Each test run makes its own
throw-away databases on it and drops them afterwards.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.services import free_port, wait_for_port

DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
ADMIN_URL = os.environ.get("FLEETDESK_TEST_PG_URL", DEFAULT_URL)


def url_for(database: str, admin: str = ADMIN_URL) -> str:
    """``admin`` with its database name replaced (SQLAlchemy URL, psycopg driver)."""
    return admin.rsplit("/", 1)[0] + "/" + database


def libpq(url: str) -> str:
    """The same URL for psycopg itself (no ``+psycopg`` driver suffix)."""
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


@contextlib.contextmanager
def fresh_database(prefix: str, admin: str = ADMIN_URL) -> Iterator[str]:
    """A new, empty database on the server ``admin`` points at; dropped on exit. Fails the
    test (never skips) when the server cannot be reached."""
    import psycopg

    name = f"{prefix}_{secrets.token_hex(5)}"
    try:
        conn = psycopg.connect(libpq(admin), autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        pytest.fail(f"PostgreSQL at {admin} is required (FLEETDESK_TEST_PG_URL): {exc}")
    with conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield url_for(name, admin)
    finally:
        with psycopg.connect(libpq(admin), autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def reset_schema(url: str) -> None:
    """Empties the database ``url`` names: its public schema dropped and made anew."""
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("DROP SCHEMA public CASCADE"))
        conn.execute(sa.text("CREATE SCHEMA public"))
    engine.dispose()


def _pg_bin(program: str) -> str:
    """A PostgreSQL server program from Debian's versioned folder (newest first)."""
    found = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{program}"), reverse=True)
    if not found:
        pytest.fail(f"{program} not found under /usr/lib/postgresql (apt-get install postgresql)")
    return str(found[0])


class PrivateCluster:
    """A PostgreSQL cluster of the test's own, on a free loopback port, in a temporary folder.

    For tests that take the database down while the collector runs: the shared server must
    never be stopped. ``initdb`` and the server refuse to run as root, so as root they run as
    the ``postgres`` user (the folder is theirs).
    """

    def __init__(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="fleetdesk-pg-"))
        self.data = self.folder / "data"
        self.port = free_port()
        self._as: list[str] = []
        if os.geteuid() == 0:
            self._as = ["runuser", "-u", "postgres", "--"]
            shutil.chown(self.folder, "postgres", "postgres")
        self._run(_pg_bin("initdb"), "-D", str(self.data), "-U", "postgres", "-A", "trust")

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *argv: str) -> None:
        done = subprocess.run(
            [*self._as, *argv], capture_output=True, text=True, check=False, timeout=60
        )
        if done.returncode != 0:
            raise RuntimeError(f"{Path(argv[0]).name} failed: {done.stderr.strip()}")

    def start(self) -> PrivateCluster:
        options = f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.folder} -c fsync=off"
        log = str(self.folder / "server.log")
        self._run(_pg_bin("pg_ctl"), "-D", str(self.data), "-l", log, "-o", options, "-w", "start")
        wait_for_port(self.port)
        return self

    def stop(self) -> None:
        """Immediate shutdown: the clients' connections break as in a crash."""
        if (self.data / "postmaster.pid").exists():
            self._run(_pg_bin("pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop")

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)
