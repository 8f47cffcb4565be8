"""Three collector processes share one PostgreSQL and one Mosquitto (docs/scale-out.md).

1,000 simulated devices report every second over MQTT; 50 of them fill their disk at rounds
spread around the kill. The collector holding the tickets lease (it also owns partitions) is
SIGKILLed mid-run, while faults are being ticketed. From outside: the partitions move to the two
survivors; every fault has exactly one ticket; every outbox event reached the desk (the
receiver) under its idempotency key; every report the broker acknowledged is in the shared
device registry with no gap (by device, boot, seq); no device was judged offline; the open
faults of every partition are kept (each collector replaces only its own); each partition has
its rules state.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.support.mosquitto import Broker
from tests.support.pg import fresh_database
from tests.support.receiver import Receiver
from tests.support.scale import Fleet, Group, counts, device_name, write_inventory, write_sinks
from tests.support.services import free_port

DEVICES = 1000
PARTITIONS = 12
INTERVAL_S = 2  # the inventory's report interval: offline after 3 missed (6 s)
KILL_AT_ROUND = 12


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
    inventory = tmp_path / "inventory.csv"
    write_inventory(inventory, DEVICES, INTERVAL_S)
    sinks = tmp_path / "sinks.yaml"
    write_sinks(sinks, receiver)
    group = Group(tmp_path, broker, store_url, inventory, PARTITIONS, sinks)
    # faults at rounds 6..17: some ticketed before the kill, some during, some after
    faulty = {device_name(i): 6 + (i // 20) % 12 for i in range(0, DEVICES, 20)}
    fleet = Fleet(broker, DEVICES, 1.0, faulty)
    try:
        for _ in range(3):
            group.add()
        fleet.start()
        group.wait_settled()
        assert sorted(len(p) for p in group.owned().values()) == [4, 4, 4]
        while fleet.rounds < KILL_AT_ROUND:
            assert fleet.error is None and fleet.is_alive()
            time.sleep(0.05)
        leader = group.leader()
        assert leader is not None
        victim = group.procs[leader]
        # mid-work: it has ticketed faults and is taking reports
        assert victim.value("collector_messages_total", outcome="accepted") > 0
        before = len(receiver.accepted())
        assert 0 < before < len(faulty)
        victim.kill()
        failover_s = group.wait_settled()
        owned = group.owned()
        assert len(owned) == 2 and sorted(p for ps in owned.values() for p in ps) == list(
            range(PARTITIONS)
        )
        assert group.leader() is not None and group.leader() != leader
        while fleet.rounds < KILL_AT_ROUND + 10:  # the last faults (round 17) and beyond
            assert fleet.error is None
            time.sleep(0.05)
        fleet.stop()
        assert fleet.error is None
        expected = {f"device:{d}/disk_full" for d in faulty}
        _wait_for(lambda: set(counts(store_url)["tickets"]) >= expected, "every ticket")
        _wait_for(lambda: _all_delivered(store_url, receiver), "every outbox event at the receiver")
        _wait_for(
            lambda: _reports_in(store_url, fleet.acked), "every acknowledged report committed"
        )
        found = counts(store_url)
    finally:
        if fleet.is_alive():
            fleet.stop()
        group.stop()
        receiver.stop()

    print(f"failover {failover_s:.2f}s")  # shown with -s; bench/scale.py measures it
    assert found["tickets"] == dict.fromkeys(expected, 1)  # each fault once, nothing else
    assert found["fault_kinds"] == {"disk_full": len(faulty)}  # no offline, no site outage
    keys = [r.headers["idempotency-key"] for r in receiver.accepted()]
    outbox = found["outbox"]
    assert isinstance(outbox, dict) and set(keys) == set(outbox)
    assert set(outbox.values()) == {"delivered"}
    assert sum(r.json()["type"] == "ticket_opened" for r in receiver.accepted()) >= len(faulty)
    devices = found["devices"]
    assert isinstance(devices, dict)
    assert {d: devices[d] for d in fleet.acked} == {d: (s, 0) for d, s in fleet.acked.items()}
    engine = sa.create_engine(store_url)
    with engine.connect() as conn:
        open_faults = conn.execute(sa.text("SELECT device, part FROM faults")).all()
        states = conn.execute(
            sa.text("SELECT name FROM service_state WHERE name LIKE 'rules_engine/p%'")
        ).scalars()
        state_names = set(states)
    engine.dispose()
    assert sorted(d for d, _ in open_faults) == sorted(faulty)
    assert len({p for _, p in open_faults}) > 1  # faults of several partitions, all kept
    assert state_names == {f"rules_engine/p{p:03d}" for p in range(PARTITIONS)}


def _all_delivered(store_url: str, receiver: Receiver) -> bool:
    outbox = counts(store_url)["outbox"]
    assert isinstance(outbox, dict)
    keys = {r.headers.get("idempotency-key") for r in receiver.accepted()}
    return bool(outbox) and set(outbox) <= keys


def _reports_in(store_url: str, acked: dict[str, int]) -> bool:
    devices = counts(store_url)["devices"]
    assert isinstance(devices, dict)
    return all(devices.get(d, (-1, 0))[0] >= s for d, s in acked.items())


def _wait_for(predicate: object, what: str, timeout: float = 60.0) -> None:
    assert callable(predicate)
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"not reached in {timeout:g}s: {what}")
        time.sleep(0.2)
