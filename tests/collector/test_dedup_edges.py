"""De-duplication at the exact edge of the window, and the gap count a late report repairs,
through the real ``DedupStage`` (its per-device count and its metrics), not a formula."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from agent import wire
from collector.intake.envelope import Envelope
from collector.metrics import Metrics
from collector.pipeline.dedup import (
    DUPLICATE,
    LATE,
    NEW,
    OLD,
    DedupStage,
    Device,
    Registry,
    RegistryStage,
)

T0 = datetime(2026, 11, 28, tzinfo=UTC)


def envelope(seq: int, boot: str = "b1", device: str = "d1") -> Envelope:
    msg = wire.Telemetry(device=device, boot=boot, seq=seq, ts=T0, metrics={"cpu_pct": 1.0})
    # arrival = the report's own stamp: a restored device judges repeats by its last sighting
    return Envelope(
        "fleet/v1/t/d1/telemetry", b"", T0.timestamp(), msg=msg, source="mqtt", tenant="t"
    )


def stage(window: int) -> tuple[DedupStage, Registry, Metrics]:
    metrics = Metrics()
    registry = Registry(metrics, window=window)
    return DedupStage(registry, metrics), registry, metrics


def passed(dedup: DedupStage, seqs: list[int]) -> list[int]:
    return [env.msg.seq for env in dedup([envelope(s) for s in seqs])]


@pytest.mark.parametrize("window", [1, 4, 64])
def test_a_report_exactly_window_behind_is_still_let_in_once(window: int) -> None:
    high = 100
    dev = Device("d", "t", "mqtt", False)
    assert dev.see("b", high - window - 1, window) == NEW
    assert dev.see("b", high, window) == window  # skipped high-window .. high-1
    assert dev.see("b", high - window, window) == LATE  # the last slot the window holds
    assert dev.see("b", high - window, window) == DUPLICATE
    # beyond the window the bitmap cannot tell: accepted, not remembered (a long backlog
    # draining beside live reports; the time-series database stores a repeat once)
    assert dev.see("b", high - window - 1, window) == OLD


def test_one_past_the_window_is_accepted_but_not_remembered() -> None:
    dev = Device("d", "t", "mqtt", False)
    assert dev.see("b", 0, 4) == NEW
    assert dev.see("b", 10, 4) == 9
    assert dev.see("b", 5, 4) == OLD  # 5 behind, window 4: cannot tell, let in
    assert dev.see("b", 5, 4) == OLD  # and not remembered
    assert dev.see("b", 6, 4) == LATE  # 4 behind: in the window
    assert dev.see("b", 6, 4) == DUPLICATE


def test_window_edge_through_the_stage() -> None:
    dedup, registry, metrics = stage(window=4)
    assert passed(dedup, [0, 10, 6, 5, 6, 9]) == [0, 10, 6, 5, 9]  # 5: beyond, let in
    dev = registry.devices["d1"]
    # 9 skipped (1..9); 6 and 9 came late inside the window: 7 still counted missing.
    assert dev.gaps == 7
    assert metrics.seq_gaps._value.get() == 9
    assert metrics.seq_late._value.get() == 2
    assert metrics.duplicate._value.get() == 1


def test_late_reports_reduce_the_gap_count_one_each() -> None:
    dedup, registry, metrics = stage(window=64)
    passed(dedup, [1, 5])
    dev = registry.devices["d1"]
    assert dev.gaps == 3
    assert passed(dedup, [3]) == [3]
    assert dev.gaps == 2
    assert passed(dedup, [2, 4]) == [2, 4]
    assert dev.gaps == 0
    assert passed(dedup, [2, 3, 4]) == []  # repeats change nothing
    assert dev.gaps == 0
    assert metrics.seq_late._value.get() == 3


def test_the_gap_count_never_goes_below_zero() -> None:
    dedup, registry, _ = stage(window=64)
    passed(dedup, [1, 3])
    dev = registry.devices["d1"]
    dev.gaps = 0  # e.g. restored from a store written before the gap was counted
    assert passed(dedup, [2]) == [2]
    assert dev.gaps == 0


def test_a_reboot_starts_a_new_epoch_without_gaps() -> None:
    dedup, registry, _ = stage(window=8)
    passed(dedup, [1, 2, 3])
    assert [e.msg.seq for e in dedup([envelope(0, boot="b2"), envelope(1, boot="b2")])] == [0, 1]
    assert registry.devices["d1"].gaps == 0


# -- the registry and its stage: what the state writer gets ---------------------------------


def arrival(msg: object, at: float, source: str = "mqtt") -> Envelope:
    return Envelope("t", b"", at, msg=msg, source=source, tenant="acme")


def test_registry_stage_keeps_sightings_and_marks_devices_dirty() -> None:
    metrics = Metrics()
    registry = Registry(metrics, known=lambda d: d != "stranger")
    stage_ = RegistryStage(registry, metrics)
    birth = wire.Birth("gw", "b1", T0, "WR5120", "SN1", "fw2", "agent-1", 60)
    batch = [
        arrival("no device attribute", 9.0),  # skipped; the rest of the batch still counts
        arrival(birth, 10.0),
        arrival(wire.State("gw", wire.DeviceState.DYING_GASP, T0), 11.0),
        arrival(wire.Telemetry("stranger", "b", 0, T0, {"x": 1.0}), 12.0, source="snmp"),
    ]
    assert stage_(batch) is batch
    assert metrics.accepted._value.get() == 4
    assert metrics.devices._value.get() == 2
    rows = {r.id: r for r in registry.take_dirty()}
    assert registry.dirty == set() and registry.take_dirty() == []
    gw, stranger = rows["gw"], rows["stranger"]
    assert (gw.model, gw.serial, gw.firmware) == ("WR5120", "SN1", "fw2")
    assert (gw.state, gw.last_seen, gw.tenant, gw.source, gw.unassigned) == (
        "dying_gasp", 11.0, "acme", "mqtt", False,
    )  # fmt: skip
    assert (stranger.state, stranger.source, stranger.unassigned) == ("online", "snmp", True)


def test_a_birth_sets_online_and_a_report_keeps_a_known_state() -> None:
    metrics = Metrics()
    registry = Registry(metrics)
    stage_ = RegistryStage(registry, metrics)
    stage_([arrival(wire.State("gw", wire.DeviceState.OFFLINE, T0), 1.0)])
    stage_([arrival(wire.Telemetry("gw", "b", 0, T0, {"x": 1.0}), 2.0)])
    assert registry.devices["gw"].state == "offline"  # a report does not overrule it
    stage_([arrival(wire.Birth("gw", "b2", T0, "m", "s", "f", "a", 60), 3.0)])
    assert registry.devices["gw"].state == "online"
    assert registry.devices["gw"].unassigned is False  # no inventory: nobody is unassigned


def test_restore_gives_back_what_row_wrote() -> None:
    metrics = Metrics()
    first = Registry(metrics, window=8)
    dedup = DedupStage(first, metrics)
    dedup([envelope(0), envelope(5), envelope(3)])
    RegistryStage(first, metrics)([envelope(5)])
    [row] = first.take_dirty()
    assert (row.boot, row.last_seq, row.gaps, row.seen_mask) == (
        "b1",
        5,
        3,
        0b10010,
    )  # 0 and 3 seen below 5
    second = Registry(Metrics(), window=8)
    second.restore([row])
    assert second.devices["d1"].row() == row
    # The restored sequence state goes on deduplicating where the first left off.
    assert [
        e.msg.seq for e in DedupStage(second, Metrics())([envelope(s) for s in (3, 4, 0, 6)])
    ] == [4, 6]
