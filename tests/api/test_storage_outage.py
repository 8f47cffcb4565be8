"""The REST API while its PostgreSQL is down and after it came back: a JSON 503 to retry, never
a traceback, and answers again without a restart of the collector (no pool pre-ping: the pool
drops its dead connections at the first failure). The database is a private cluster of this
test (tests/support/pg.py), never the shared server."""

from __future__ import annotations

import time
from pathlib import Path

from starlette.testclient import TestClient

from tests.support.api import Api
from tests.support.pg import PrivateCluster

V1 = "/api/v1"


def test_the_api_answers_503_while_the_database_is_down_then_recovers(tmp_path: Path) -> None:
    cluster = PrivateCluster().start()
    api = Api(tmp_path, sink_url="http://127.0.0.1:9/hook", store_url=cluster.url)
    try:
        with TestClient(api.app, raise_server_exceptions=False) as client:
            api.report("gw-1", 1, disk_used_pct=97.0)
            first = client.get(f"{V1}/tickets", headers=api.auth("viewer"))
            assert first.status_code == 200, first.text
            tickets = [t["number"] for t in first.json()["items"]]
            assert len(tickets) == 1, first.json()
            # the device's page reads its tickets from the database (the list above is the
            # ticket book's, in memory)
            page = client.get(f"{V1}/devices/gw-1", headers=api.auth("viewer"))
            assert page.status_code == 200, page.text

            cluster.stop()
            down = client.get(f"{V1}/devices/gw-1", headers=api.auth("viewer"))
            assert down.status_code == 503, down.text
            assert down.json()["error"] == "storage_unavailable"
            assert down.headers["retry-after"] == "1"

            cluster.start()
            deadline = time.monotonic() + 30
            answers = []
            while time.monotonic() < deadline:
                again = client.get(f"{V1}/devices/gw-1", headers=api.auth("viewer"))
                answers.append(again.status_code)
                if again.status_code == 200:
                    break
                assert again.status_code == 503, again.text
                time.sleep(0.2)
            assert answers[-1] == 200, answers
            assert len(answers) <= 2, answers  # at most the one request that met a dead connection
            assert [t["number"] for t in again.json()["tickets"]] == tickets
    finally:
        api.close()
        cluster.remove()
