"""Fixtures for the collector tests; the helpers live in tests/support/collector.py."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.pg import fresh_database
from tests.support.victoria import Victoria


@pytest.fixture
def victoria(tmp_path: Path) -> Iterator[Victoria]:
    vm = Victoria(tmp_path / "victoria").start()
    yield vm
    vm.stop()


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A throw-away PostgreSQL database on the test server, dropped after the run."""
    with fresh_database("fleetdesk_test") as url:
        yield url
