"""Deadlines per second: random 5wd targets on cn-workdays across two years.

Prints one JSON object: the engine's rate beside the brute-force minute-stepping reference's
rate (tests/support/sla_reference.py), measured in the same run on the same random starts, and
checks that both agree on every deadline the reference computed. Run from the repository root:

    .venv/bin/python bench/sla.py
"""

from __future__ import annotations

import json
import random
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from collector.config.durations import parse_duration
from collector.sla.calendar import load_calendar
from tests.support.sla_reference import REFERENCES, due_minute, to_minute

ENGINE_N = 200_000
REFERENCE_N = 200
FIRST = datetime(2025, 1, 1, tzinfo=UTC)
LAST = datetime(2026, 12, 20, tzinfo=UTC)  # 5wd later is still within chinese-calendar's years


def main() -> None:
    rng = random.Random(20261128)
    first, last = to_minute(FIRST), to_minute(LAST)
    minutes = [rng.randrange(first, last) for _ in range(ENGINE_N)]
    starts = [datetime.fromtimestamp(m * 60, UTC) for m in minutes]

    t0 = time.perf_counter()
    calendar = load_calendar("cn-workdays")
    seconds = parse_duration("5wd").seconds_on(calendar.workday_seconds)
    calendar.add(FIRST, seconds)  # materialise the timeline (two years of open intervals)
    calendar.add(LAST, seconds)
    warm_up = time.perf_counter() - t0

    add = calendar.add
    t0 = time.perf_counter()
    dues = [add(start, seconds) for start in starts]
    engine_elapsed = time.perf_counter() - t0

    is_open = REFERENCES["cn-workdays"]
    target_minutes = int(seconds) // 60
    t0 = time.perf_counter()
    reference = [due_minute(is_open, m, target_minutes) for m in minutes[:REFERENCE_N]]
    reference_elapsed = time.perf_counter() - t0

    mismatches = sum(
        1 for due, expected in zip(dues, reference, strict=False) if to_minute(due) != expected
    )
    engine_rate = ENGINE_N / engine_elapsed
    reference_rate = REFERENCE_N / reference_elapsed
    print(
        json.dumps(
            {
                "benchmark": "sla deadlines, random 5wd on cn-workdays, 2025-01-01..2026-12-20",
                "deadlines_per_second": round(engine_rate),
                "reference_deadlines_per_second": round(reference_rate, 1),
                "speedup": round(engine_rate / reference_rate),
                "goal_deadlines_per_second": 100_000,
                "engine_deadlines": ENGINE_N,
                "reference_deadlines": REFERENCE_N,
                "mismatches": mismatches,
                "load_and_timeline_build_seconds": round(warm_up, 4),
            }
        )
    )


if __name__ == "__main__":
    main()
