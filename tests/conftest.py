from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.mosquitto import Broker


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    """A fresh Mosquitto on a free loopback port, stopped after the test."""
    b = Broker(workdir=tmp_path / "mosquitto").start()
    yield b
    b.stop()
