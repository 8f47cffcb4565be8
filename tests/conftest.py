from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.mosquitto import Broker
from tests.support.pg import fresh_database


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
