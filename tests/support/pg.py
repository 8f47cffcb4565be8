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
from collections.abc import Iterator

import pytest

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
