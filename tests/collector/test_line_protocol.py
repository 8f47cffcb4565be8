"""Line protocol built by hand: one line per report (and one per string metric), escaped,
integers as floats."""

from __future__ import annotations

from datetime import UTC, datetime

from agent import wire
from collector.store.tsdb import line

TS = datetime(2026, 1, 1, 0, 0, 0, 123_000, tzinfo=UTC)


def test_types_escapes_and_timestamp() -> None:
    msg = wire.Telemetry(
        "gw-1",
        "b",
        1,
        TS,
        {"cpu_pct": 12.5, "up": True, "down": False, "rx": 3, "op": 'say "hi" \\ now'},
        {"site": "pump 3,a=b", "empty": ""},
    )
    assert line("fleet", "acme", msg) == (
        r"fleet,device=gw-1,tenant=acme,site=pump\ 3\,a\=b "
        r"cpu_pct=12.5,up=true,down=false,rx=3.0 1767225600123"
        "\n"
        r'fleet_text,device=gw-1,tenant=acme,site=pump\ 3\,a\=b,value=say\ "hi"\ \\\ now '
        r"op=1.0 1767225600123"
    )


def test_a_report_without_metrics_has_no_line() -> None:
    assert line("fleet", "acme", wire.Telemetry("gw-1", "b", 1, TS, {})) is None
