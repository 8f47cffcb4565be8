"""Fixtures for the collector tests; the helpers live in tests/support/collector.py."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.victoria import Victoria


@pytest.fixture
def victoria(tmp_path: Path) -> Iterator[Victoria]:
    vm = Victoria(tmp_path / "victoria").start()
    yield vm
    vm.stop()
