"""``fleetdesk deliver`` on PostgreSQL is woken by the commit that queued a ticket's events
(LISTEN on the outbox trigger's channel), not by its next poll; a requeued dead row wakes it
too, and so does a database that comes back after an outage; it serves its own metrics.

Each worker here polls once a minute, so an event that arrives within seconds was woken for.
"""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from collector.store.tickets import TicketStore
from tests.support.agent import wait_until
from tests.support.pg import PrivateCluster, reset_schema
from tests.support.receiver import Answer, Receiver
from tests.support.services import free_port
from tests.support.tickets import make_events

ROOT = Path(__file__).resolve().parents[2]
POLL_S = 60.0
WOKEN_S = 10.0  # well inside one poll interval


def _listening(url: str) -> bool:
    """Seen from the server: a session of this database is listening (pg_stat_activity)."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            found = conn.execute(
                sa.text(
                    "SELECT count(*) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND query LIKE 'LISTEN %'"
                )
            ).scalar_one()
    except sa.exc.OperationalError:
        return False
    finally:
        engine.dispose()
    return int(found) > 0


@pytest.fixture
def deliver(tmp_path: Path) -> Iterator[Callable[[str, Receiver], subprocess.Popen[bytes]]]:
    procs: list[subprocess.Popen[bytes]] = []

    def start(url: str, receiver: Receiver) -> subprocess.Popen[bytes]:
        sinks = tmp_path / "sinks.yaml"
        sinks.write_text(f"sinks:\n  - {{name: desk, type: webhook, url: {receiver.url}}}\n")
        cmd = [sys.executable, "-m", "collector", "deliver", "--db", url, "--sinks", str(sinks)]
        log = (tmp_path / "deliver.log").open("ab")
        proc = subprocess.Popen([*cmd, "--poll", str(POLL_S)], cwd=ROOT, stdout=log, stderr=log)
        procs.append(proc)
        wait_until(lambda: _listening(url), 30, "fleetdesk deliver never listened")
        return proc

    yield start
    for proc in procs:
        proc.terminate()
        assert proc.wait(timeout=30) == 0, (tmp_path / "deliver.log").read_text()


def test_a_commit_and_a_requeue_wake_the_worker(
    pg_database: str, deliver: Callable[[str, Receiver], subprocess.Popen[bytes]]
) -> None:
    reset_schema(pg_database)
    store = TicketStore(pg_database)
    store.migrate()
    refuse = True
    receiver = Receiver(free_port(), lambda _n: Answer(400) if refuse else Answer(200))
    receiver.start()
    try:
        deliver(pg_database, receiver)
        time.sleep(1.0)  # the worker has polled and is asleep for a minute
        make_events(store, devices=1)  # opened (refused: dead), three held behind it
        wait_until(
            lambda: store.outbox_counts()["dead"] == 1, WOKEN_S, "the commit did not wake it"
        )
        assert len(receiver.received) == 1
        refuse = False
        assert store.requeue_dead(time.time()) == 1
        wait_until(
            lambda: store.outbox_counts() == {"pending": 0, "delivered": 4, "dead": 0},
            WOKEN_S,
            "the requeue did not wake it",
        )
    finally:
        receiver.stop()
        store.close()


def test_the_worker_listens_again_after_the_database_comes_back(
    deliver: Callable[[str, Receiver], subprocess.Popen[bytes]],
) -> None:
    cluster = PrivateCluster().start()
    receiver = Receiver(free_port(), lambda _n: Answer(200))
    receiver.start()
    try:
        store = TicketStore(cluster.url)
        store.migrate()
        proc = deliver(cluster.url, receiver)
        cluster.stop()  # immediate: the listening connection breaks as in a crash
        time.sleep(1.0)
        cluster.start()
        wait_until(lambda: _listening(cluster.url), 30, "it did not listen again")
        assert proc.poll() is None
        store.engine.dispose()  # this side's pooled connections died with the server too
        make_events(store, devices=1)
        wait_until(lambda: len(receiver.accepted()) == 4, WOKEN_S, "not woken after the outage")
        store.close()
    finally:
        receiver.stop()
        cluster.remove()


def test_deliver_serves_its_metrics_and_refuses_a_bad_address(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 't.db'}"
    store = TicketStore(db)
    store.migrate()
    receiver = Receiver(free_port(), lambda _n: Answer(400))  # dead at once
    receiver.start()
    sinks = tmp_path / "sinks.yaml"
    sinks.write_text(f"sinks:\n  - {{name: desk, type: webhook, url: {receiver.url}}}\n")
    cmd = [sys.executable, "-m", "collector", "deliver", "--db", db, "--sinks", str(sinks)]
    bad = subprocess.run(
        [*cmd, "--metrics", "nowhere"], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines() == [
        "fleetdesk deliver: --metrics 'nowhere': expected HOST:PORT, e.g. 127.0.0.1:9201"
    ]
    port = free_port()
    proc = subprocess.Popen([*cmd, "--poll", "0.05", "--metrics", f"127.0.0.1:{port}"], cwd=ROOT)
    try:
        make_events(store, devices=1)

        def scrape() -> str:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as r:
                    return str(r.read().decode())
            except OSError:
                return ""

        wait_until(lambda: "fleetdesk_outbox_dead 1.0" in scrape(), 30, "the dead gauge")
        assert 'fleetdesk_webhook_attempts_total{outcome="dead",sink="desk"} 1.0' in scrape()
    finally:
        proc.terminate()
        assert proc.wait(timeout=30) == 0
        receiver.stop()
        store.close()
