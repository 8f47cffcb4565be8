"""De-duplication on (device, boot, seq) and gap counting, as tables of arrivals."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from collector.intake.deadletter import RateLimit
from collector.pipeline.dedup import DUPLICATE, JUMP, LATE, NEW, OLD, REWOUND, Device


def _run(arrivals: list[tuple[str, int]], window: int = 8) -> tuple[list[int], Device]:
    dev = Device("d", "t", "mqtt", False)
    return [dev.see(boot, seq, window) for boot, seq in arrivals], dev


def _timed(arrivals: list[tuple[int, float]], window: int = 8, max_jump: int = 1000) -> list[int]:
    """Arrivals of one boot as (seq, report ts)."""
    dev = Device("d", "t", "mqtt", False)
    return [dev.see("a", seq, window, ts, max_jump) for seq, ts in arrivals]


@pytest.mark.parametrize(
    ("arrivals", "verdicts", "gaps"),
    [
        ([("a", 0), ("a", 1), ("a", 2)], [NEW, NEW, NEW], 0),
        ([("a", 0), ("a", 1), ("a", 1), ("a", 0)], [NEW, NEW, DUPLICATE, DUPLICATE], 0),
        ([("a", 0), ("a", 4)], [NEW, 3], 3),  # three lost upstream
        ([("a", 0), ("a", 4), ("a", 2), ("a", 2)], [NEW, 3, LATE, DUPLICATE], 2),  # replay fills
        ([("a", 5), ("b", 0), ("b", 1)], [NEW, NEW, NEW], 0),  # a reboot starts a new epoch
        ([("a", 0), ("a", 20), ("a", 3)], [NEW, 19, OLD], 19),  # older than the window: kept
    ],
)
def test_verdicts(arrivals: list[tuple[str, int]], verdicts: list[int], gaps: int) -> None:
    seen, _dev = _run(arrivals)
    assert seen == verdicts
    net = sum(v for v in seen if v > 0) - seen.count(LATE)
    assert net == gaps


@pytest.mark.parametrize(
    ("arrivals", "verdicts"),
    [
        # a spool restored from a copy: the counter goes back far, the reports are new
        (
            [(100, 100.0), (101, 101.0), (5, 102.0), (6, 103.0), (6, 103.0)],
            [NEW, NEW, REWOUND, NEW, DUPLICATE],
        ),
        # ... or a little (inside the window): newer than all, so not a repeat either
        ([(10, 10.0), (11, 11.0), (9, 12.0), (10, 13.0)], [NEW, NEW, REWOUND, NEW]),
        # a long backlog draining beside live reports: old stamps, accepted, not remembered
        ([(100, 100.0), (3, 3.0), (4, 4.0), (101, 101.0)], [NEW, OLD, OLD, NEW]),
        # a repeat keeps its original stamp: still a duplicate
        ([(10, 10.0), (11, 11.0), (10, 10.0)], [NEW, NEW, DUPLICATE]),
        # absurd jumps are refused, the epoch stays; a sane one after them is fine
        (
            [(1, 1.0), (2**62, 2.0), (2, 3.0), (1002, 4.0), (2**63 - 1, 5.0)],
            [NEW, JUMP, NEW, 999, JUMP],
        ),
    ],
)
def test_rewinds_backlogs_and_jumps(arrivals: list[tuple[int, float]], verdicts: list[int]) -> None:
    assert _timed(arrivals) == verdicts


def test_a_huge_gap_costs_no_memory() -> None:
    dev = Device("d", "t", "mqtt", False)
    dev.see("a", 0, 4096)
    assert dev.see("a", 2**62, 4096, 1.0, 2**63) == 2**62 - 1  # allowed: O(1) all the same
    assert dev.mask == 0 and dev.high == 2**62
    assert dev.see("a", 0, 4096, 0.5, 2**63) == OLD  # far below: no 1 << 2**62 either


@given(st.lists(st.integers(0, 40), min_size=1, max_size=200))
def test_every_seq_is_accepted_at_most_once(seqs: list[int]) -> None:
    dev = Device("d", "t", "mqtt", False)
    accepted = [s for s in seqs if dev.see("a", s, 64) != DUPLICATE]
    assert len(accepted) == len(set(accepted))
    # all within the window: every distinct seq gets in, once
    assert set(accepted) == set(seqs)


def test_reject_logging_is_rate_limited() -> None:
    limit = RateLimit(2)  # two lines a minute
    assert [limit.allow(0.0) for _ in range(4)] == [True, True, False, False]
    assert limit.suppressed == 2
    assert limit.allow(10.0) is False  # a third of a token back
    assert limit.allow(31.0) is True  # one token back after 30 s


def test_a_restored_spool_is_not_dropped_as_duplicates() -> None:
    """Same device and boot, the counter back at 1 (spool restored from a copy): the reports are
    newer than any seen, so a new epoch starts; nothing is dropped, the rewind is counted."""
    from datetime import UTC, datetime, timedelta

    from agent import wire
    from collector.intake.envelope import Envelope
    from collector.metrics import Metrics
    from collector.pipeline.dedup import DedupStage, Registry

    metrics = Metrics()
    stage = DedupStage(Registry(metrics, window=64), metrics)
    t0 = datetime(2026, 1, 1, tzinfo=UTC)

    def env(seq: int, second: int) -> Envelope:
        msg = wire.Telemetry("gw", "b1", seq, t0 + timedelta(seconds=second), {"x": 1.0})
        return Envelope("fleet/v1/t/gw/telemetry", b"", 0.0, msg=msg, tenant="t")

    assert len(stage([env(s, s) for s in range(1, 501)])) == 500
    restored = [env(s, 1000 + s) for s in range(1, 301)]  # seq 1.. again, newer stamps
    assert len(stage(restored)) == 300
    assert metrics.registry.get_sample_value("collector_seq_rewinds_total") == 1
    assert stage([env(300, 1300)]) == []  # and a repeat of them is a duplicate again
