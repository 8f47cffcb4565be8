from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from tests.support.api import Api


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    built = Api(tmp_path, sink_url="http://127.0.0.1:9/hook")  # deliveries stay pending
    yield built
    built.close()


@pytest.fixture
def client(api: Api) -> Iterator[TestClient]:
    with TestClient(api.app) as c:
        yield c
