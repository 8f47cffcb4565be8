"""PostgreSQL goes down while the collector runs, and comes back: what the registry could not
write meanwhile is written once the database answers again, nothing is lost.

The database is a private cluster of this test (tests/support/pg.py), never the shared server.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from tests.support.collector import (
    Publisher,
    collector_yaml,
    eventually,
    make_config,
    running,
    telemetry,
)
from tests.support.mosquitto import Broker
from tests.support.pg import PrivateCluster, libpq


def topic(device: str) -> str:
    return f"fleet/v1/acme/{device}/telemetry"


@pytest.fixture
def cluster() -> Iterator[PrivateCluster]:
    pg = PrivateCluster().start()
    yield pg
    pg.remove()


def stored(url: str) -> dict[str, tuple[str, int, int]]:
    """device -> (boot, last_seq, gaps) as the database has it; {} while it is down."""
    try:
        with psycopg.connect(libpq(url), connect_timeout=3) as conn:
            rows = conn.execute("SELECT id, boot, last_seq, gaps FROM devices").fetchall()
    except psycopg.Error:
        return {}
    return {r[0]: (r[1], r[2], r[3]) for r in rows}


async def test_registry_rows_written_after_the_database_comes_back(
    tmp_path: Path, broker: Broker, cluster: PrivateCluster
) -> None:
    cfg = make_config(tmp_path, collector_yaml(tmp_path, broker, store_url=cluster.url))
    pub = Publisher(broker)
    async with running(cfg) as service:
        errors = service.metrics.store_errors

        def failed_commits() -> float:  # the intake commit's storage errors, retried
            return errors.labels("intake-commit")._value.get()  # type: ignore[no-any-return]

        await asyncio.to_thread(pub.publish, topic("d1"), telemetry("d1", 0, boot="e1"))
        await eventually(lambda: stored(cluster.url).get("d1") == ("e1", 0, 0))

        await asyncio.to_thread(cluster.stop)
        await asyncio.to_thread(
            pub.many,
            [(topic("d2"), telemetry("d2", s, boot="e2")) for s in (0, 1, 3)]
            + [(topic("d1"), telemetry("d1", 1, boot="e1"))],
        )

        def high(device: str) -> int:
            dev = service.registry.devices.get(device)
            return dev.high if dev is not None else -1

        await eventually(lambda: high("d2") == 3 and high("d1") == 1)
        # Two failed flushes after both changes were in memory: at least one of them took
        # the rows and could not write them.
        before = failed_commits()
        await eventually(lambda: failed_commits() >= before + 2)

        await asyncio.to_thread(cluster.start)
        await eventually(lambda: stored(cluster.url).get("d2") == ("e2", 3, 1))
        assert stored(cluster.url)["d1"] == ("e1", 1, 0)
    pub.close()
    assert stored(cluster.url) == {"d1": ("e1", 1, 0), "d2": ("e2", 3, 1)}
