"""Three collector processes share one PostgreSQL and one Mosquitto (docs/scale-out.md).

1,000 simulated devices report every second over MQTT; 50 of them fill their disk at rounds
spread around the kill (``tests.support.scale.run_failover``). The collector holding the tickets
lease (it also owns partitions) is SIGKILLed mid-run, while faults are being ticketed. From
outside: the partitions move to the two survivors; every fault has exactly one ticket; every
outbox event reached the desk (the receiver) under its idempotency key; every report the broker
acknowledged is in the shared device registry with no gap (by device, boot, seq); no device was
judged offline; the open faults of every partition are kept (each collector replaces only its
own); each partition has its rules state.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.support.mosquitto import Broker
from tests.support.pg import fresh_database
from tests.support.receiver import Receiver
from tests.support.scale import run_failover
from tests.support.services import free_port

PARTITIONS = 12


@pytest.fixture
def store_url() -> Iterator[str]:
    with fresh_database("fleetdesk_scale") as url:
        yield url


def test_sigkill_of_one_of_three_collectors_loses_and_doubles_nothing(
    tmp_path: Path, broker: Broker, store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = "whsec_" + base64.b64encode(b"scale-out-secret-0123456789ab").decode()
    monkeypatch.setenv("DESK_OUT_SECRET", secret)
    receiver = Receiver(free_port())
    receiver.start()
    try:
        run = run_failover(tmp_path, broker, store_url, receiver, partitions=PARTITIONS)
    finally:
        receiver.stop()

    assert sorted(len(p) for p in run.owned_before.values()) == [4, 4, 4]
    # the kill came mid-work: the victim was taking reports and some tickets were out already
    assert run.victim_accepted > 0
    assert 0 < run.delivered_before_kill < len(run.faulty)
    assert len(run.owned_after) == 2 and run.victim not in run.owned_after
    assert sorted(p for ps in run.owned_after.values() for p in ps) == list(range(PARTITIONS))
    assert run.leader_after is not None and run.leader_after != run.victim
    print(f"failover {run.failover_s:.2f}s")  # shown with -s; bench/scale.py reports it

    expected = {f"device:{d}/disk_full" for d in run.faulty}
    assert run.found["tickets"] == dict.fromkeys(expected, 1)  # each fault once, nothing else
    assert run.duplicate_tickets == 0
    assert run.found["fault_kinds"] == {"disk_full": len(run.faulty)}  # no offline, no outage
    keys = [r.headers["idempotency-key"] for r in run.received]
    outbox = run.found["outbox"]
    assert isinstance(outbox, dict) and set(keys) == set(outbox)
    assert set(outbox.values()) == {"delivered"}
    opened = {
        r.json()["ticket"]["number"] for r in run.received if r.json()["type"] == "ticket_opened"
    }
    assert len(opened) == len(run.faulty)
    devices = run.found["devices"]
    assert isinstance(devices, dict)
    assert {d: devices[d] for d in run.acked} == {d: (s, 0) for d, s in run.acked.items()}
    assert run.lost_reports == 0

    engine = sa.create_engine(store_url)
    with engine.connect() as conn:
        open_faults = conn.execute(sa.text("SELECT device, part FROM faults")).all()
        states = conn.execute(
            sa.text("SELECT name FROM service_state WHERE name LIKE 'rules_engine/p%'")
        ).scalars()
        state_names = set(states)
    engine.dispose()
    assert sorted(d for d, _ in open_faults) == sorted(run.faulty)
    assert len({p for _, p in open_faults}) > 1  # faults of several partitions, all kept
    assert state_names == {f"rules_engine/p{p:03d}" for p in range(PARTITIONS)}
