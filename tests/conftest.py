from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.mosquitto import Broker
from tests.support.pg import fresh_database


@pytest.fixture(autouse=True)
def _parse_policies_in_every_test_under_mutation() -> None:
    """Under mutmut only: forget the policies and calendars read so far, so each test that uses
    one parses it again. Without this the process-wide caches hide parsing from every test but
    the first that reads a file, so mutmut (which runs a mutant against only the tests that
    called its function) never runs the tests that check what was parsed."""
    if "MUTANT_UNDER_TEST" in os.environ:
        from collector.sla import calendar, policy

        policy.clear_policy_cache()
        calendar._load_file.cache_clear()


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    """A fresh Mosquitto on a free loopback port, stopped after the test."""
    b = Broker(workdir=tmp_path / "mosquitto").start()
    yield b
    b.stop()


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A throw-away PostgreSQL database on the test server, dropped after the run."""
    with fresh_database("fleetdesk_test") as url:
        yield url
