"""The rules state split by partition and merged back: a partition moves with its own faults
and clocks, and only with them (a real engine's export, pure functions)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from agent import wire
from collector.preset_paths import default_rules_dir
from collector.rules.engine import Engine
from collector.rules.inventory import Device, Inventory
from collector.rules.ruleset import load_rules
from collector.scale import engine_state
from collector.scale.partitions import Partitioning
from collector.scale.scope import Scope
from collector.store import DeviceRow

T0 = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)


def fleet() -> Inventory:
    devices = {
        f"gw-{i}": Device(f"gw-{i}", tenant="acme", site=f"site-{i // 2}", policy="wthink")
        for i in range(12)
    }
    return Inventory(devices)


def engine_with_faults() -> Engine:
    engine = Engine(fleet(), load_rules(default_rules_dir()), default_policy="wthink")
    for i in range(12):
        metrics = {"disk_used_pct": 97.0 if i % 3 == 0 else 10.0}
        msg = wire.Telemetry(device=f"gw-{i}", boot="b", seq=1, ts=T0, metrics=metrics)
        engine.process(msg, T0 + timedelta(seconds=i))
    return engine


def test_split_then_merge_gives_back_the_whole_state() -> None:
    engine = engine_with_faults()
    state = engine.export_state()
    parts = Partitioning(fleet(), 4)
    blobs = engine_state.split(state, parts, range(4))
    assert set(blobs) == {f"rules_engine/p{p:03d}" for p in range(4)}
    for name, blob in blobs.items():  # each blob holds only its partition's devices
        part = int(name[-3:])
        assert all(parts.of_device(d) == part for d in blob["devices"])
    merged = engine_state.merge(blobs.values())
    assert merged is not None
    assert merged["devices"] == state["devices"] and merged["sites"] == state["sites"]


def test_a_new_owner_restores_exactly_the_partitions_it_takes() -> None:
    engine = engine_with_faults()
    parts = Partitioning(fleet(), 4)
    blobs = engine_state.split(engine.export_state(), parts, range(4))
    taken = frozenset({1, 3})
    scope = Scope(parts, taken, tickets=False)
    saved = scope.restored([blobs[n] for n in scope.state_names()], [])
    assert saved is not None
    restored = Engine.restore(
        scope.inventory(), load_rules(default_rules_dir()), saved, default_policy="wthink"
    )
    mine = {f.subject for f in restored.open_faults()}
    expected = {f.subject for f in engine.open_faults() if parts.of_device(f.subject) in taken}
    assert mine == expected and mine  # its faults, open with their onsets, and no others
    onsets = {f.subject: f.onset for f in engine.open_faults()}
    assert all(f.onset == onsets[f.subject] for f in restored.open_faults())


def test_the_registry_moves_a_devices_last_sign_of_life_up() -> None:
    """Reports acknowledged after the partition's blob was saved are not sent again: the
    registry's last_seen (committed with their acknowledgement) counts as seen."""
    engine = engine_with_faults()
    parts = Partitioning(fleet(), 1)
    scope = Scope(parts, frozenset({0}), tickets=False)
    blobs = scope.split(engine.export_state())
    later = (T0 + timedelta(minutes=5)).timestamp()
    saved = scope.restored(blobs.values(), [DeviceRow("gw-1", "acme", last_seen=later)])
    assert saved is not None
    assert saved["devices"]["gw-1"]["last_seen"] == later
    assert saved["devices"]["gw-2"]["last_seen"] < later
    assert saved["now"] == later
    assert engine_state.merge([None, None]) is None


def test_a_fault_pass_saves_only_the_partitions_its_faults_are_in() -> None:
    engine = engine_with_faults()
    parts = Partitioning(fleet(), 4)
    scope = Scope(parts, frozenset(range(4)), tickets=False)
    whole = scope.split(engine.export_state())
    subject = "gw-3"
    part = parts.of_device(subject)
    saved = scope.states_for(engine.state, [subject])
    assert list(saved) == [f"rules_engine/p{part:03d}"]
    assert saved == {name: whole[name] for name in saved}  # the same blob a full export gives
    assert scope.states_for(engine.state, ["not-in-the-inventory"]) == {}
    other = Scope(parts, frozenset(range(4)) - {part}, tickets=False)  # not ours: not saved
    assert other.states_for(engine.state, [subject]) == {}
