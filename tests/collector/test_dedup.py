"""De-duplication on (device, boot, seq) and gap counting, as tables of arrivals."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from collector.intake.deadletter import RateLimit
from collector.pipeline.dedup import DUPLICATE, LATE, NEW, Device


def _run(arrivals: list[tuple[str, int]], window: int = 8) -> tuple[list[int], Device]:
    dev = Device("d", "t", "mqtt", False)
    return [dev.see(boot, seq, window) for boot, seq in arrivals], dev


@pytest.mark.parametrize(
    ("arrivals", "verdicts", "gaps"),
    [
        ([("a", 0), ("a", 1), ("a", 2)], [NEW, NEW, NEW], 0),
        ([("a", 0), ("a", 1), ("a", 1), ("a", 0)], [NEW, NEW, DUPLICATE, DUPLICATE], 0),
        ([("a", 0), ("a", 4)], [NEW, 3], 3),  # three lost upstream
        ([("a", 0), ("a", 4), ("a", 2), ("a", 2)], [NEW, 3, LATE, DUPLICATE], 2),  # replay fills
        ([("a", 5), ("b", 0), ("b", 1)], [NEW, NEW, NEW], 0),  # a reboot starts a new epoch
        ([("a", 0), ("a", 20), ("a", 3)], [NEW, 19, DUPLICATE], 19),  # older than the window
    ],
)
def test_verdicts(arrivals: list[tuple[str, int]], verdicts: list[int], gaps: int) -> None:
    seen, _dev = _run(arrivals)
    assert seen == verdicts
    net = sum(v for v in seen if v > 0) - seen.count(LATE)
    assert net == gaps


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
