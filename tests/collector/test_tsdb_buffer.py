"""The TSDB disk buffer on real files: bounded, resumed at its cursor, a torn tail cut off."""

from __future__ import annotations

from pathlib import Path

import pytest

from collector.metrics import Metrics
from collector.store import tsdb_buffer
from collector.store.tsdb_buffer import BufferFull, DiskBuffer


def _lines(start: int, n: int) -> list[str]:
    return [f"fleet,device=d1,tenant=t cpu_pct={i}.0 {1000 + i}" for i in range(start, start + n)]


def _drain(buffer: DiskBuffer, most: int = 1000) -> list[str]:
    out: list[str] = []
    while True:
        data, count = buffer.peek(most)
        if not count:
            return out
        out += data.decode().splitlines()
        buffer.advance(len(data), count)


def test_lines_are_shipped_in_order_and_the_cursor_survives_a_restart(tmp_path: Path) -> None:
    buffer = DiskBuffer(tmp_path, 1000, Metrics())
    buffer.append(_lines(0, 10))
    buffer.append(_lines(10, 10))
    data, count = buffer.peek(4)
    assert count == 4
    buffer.advance(len(data), count)
    buffer.close()
    again = DiskBuffer(tmp_path, 1000, Metrics())  # a restart: what was shipped is not resent
    assert again.backlog == 16
    assert _drain(again) == _lines(4, 16)
    assert again.backlog == 0


def test_a_full_buffer_refuses_until_lines_are_shipped(tmp_path: Path) -> None:
    metrics = Metrics()
    buffer = DiskBuffer(tmp_path, 10, metrics)
    buffer.append(_lines(0, 8))
    with pytest.raises(BufferFull):
        buffer.append(_lines(8, 5))
    assert metrics.registry.get_sample_value("collector_tsdb_backlog_lines") == 8
    assert _drain(buffer, 3) == _lines(0, 8)
    buffer.append(_lines(8, 5))
    assert _drain(buffer) == _lines(8, 5)


def test_a_torn_last_chunk_is_cut_off_at_start(tmp_path: Path) -> None:
    buffer = DiskBuffer(tmp_path, 1000, Metrics())
    buffer.append(_lines(0, 3))
    buffer.close()
    [segment] = tmp_path.glob("seg-*.lp")
    with segment.open("ab") as fh:  # a crash in the middle of an append (never acknowledged)
        fh.write(b"fleet,device=d1,tenant=t cpu_pct=9")
    again = DiskBuffer(tmp_path, 1000, Metrics())
    assert again.backlog == 3
    again.append(_lines(3, 1))
    assert _drain(again) == _lines(0, 4)


def test_shipped_segments_are_deleted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tsdb_buffer, "SEGMENT_BYTES", 200)
    buffer = DiskBuffer(tmp_path, 1000, Metrics())
    for i in range(10):
        buffer.append(_lines(i * 5, 5))
    assert len(list(tmp_path.glob("seg-*.lp"))) > 3
    assert _drain(buffer, 7) == _lines(0, 50)
    _drain(buffer)  # the reader moves past the emptied segments
    assert len(list(tmp_path.glob("seg-*.lp"))) == 1  # only the one still written
