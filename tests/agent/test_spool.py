"""The disk spool: durable FIFO, the sequence epoch across restarts, the size bound and its
drop counter, survival of kill -9 during writes, and an unreadable file."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from agent.spool import Spool, read_only_meta
from tests.support.agent import REPO


def payload(size: int = 100) -> Callable[[str, int], bytes]:
    def build(boot: str, seq: int) -> bytes:
        return f"{boot}:{seq}:".encode().ljust(size, b".")

    return build


def test_entries_keep_order_and_leave_only_when_acked(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "s.db", 1 << 20)
    entries = [spool.append("t/a", payload()) for _ in range(5)]
    assert [e.seq for e in entries] == [1, 2, 3, 4, 5]
    assert [e.id for e in spool.read(0)] == [e.id for e in entries]
    assert [e.seq for e in spool.read(entries[1].id, entries[4].id)] == [3, 4]
    assert spool.ack([entries[0].id, entries[2].id, 999_999]) == 2
    assert [e.seq for e in spool.read(0)] == [2, 4, 5]
    assert spool.pending == 3 and spool.pending_bytes == 3 * (3 + 100)
    assert spool.read(0)[0].payload.startswith(f"{spool.boot}:2:".encode())


def test_boot_and_seq_survive_a_restart(tmp_path: Path) -> None:
    first = Spool(tmp_path / "s.db", 1 << 20)
    boot = first.boot
    kept = [first.append("t", payload()).id for _ in range(3)]
    first.ack(kept[:1])
    first.close()
    second = Spool(tmp_path / "s.db", 1 << 20)
    assert second.boot == boot and second.next_seq == 4 and second.pending == 2
    assert second.append("t", payload()).seq == 4
    assert second.last_id() == kept[-1] + 1  # ids are never reused
    other = Spool(tmp_path / "other.db", 1 << 20)
    assert other.boot != boot


def test_full_spool_drops_oldest_and_counts_it(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "s.db", 1024)
    for _ in range(20):
        spool.append("t", payload(200))
    seqs = [e.seq for e in spool.read(0)]
    assert seqs == list(range(20 - len(seqs) + 1, 21))  # the newest survive, in order
    assert spool.pending_bytes <= 1024
    assert spool.dropped_total == 20 - len(seqs) and spool.unreported_drops == spool.dropped_total
    # The entry that reports the drops marks them reported, durably.
    spool.append("t/event", payload(10), reports_drops=True)
    assert spool.unreported_drops == 1  # the report itself pushed one more out
    spool.close()
    again = Spool(tmp_path / "s.db", 1024)
    assert again.dropped_total == 20 - len(seqs) + 1 and again.unreported_drops == 1


def test_an_entry_larger_than_the_bound_is_kept_alone(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "s.db", 1024)
    spool.append("t", payload(100))
    big = spool.append("t", payload(4000))
    assert [e.id for e in spool.read(0)] == [big.id] and spool.dropped_total == 1


WRITER = """
import sys
from pathlib import Path
from agent.spool import Spool
spool = Spool(Path(sys.argv[1]), 1 << 30)
while True:
    entry = spool.append("t", lambda boot, seq: b"x" * 500 + str(seq).encode())
    if entry.seq % 7 == 0:
        spool.ack([entry.id - 3])
    print(entry.seq, flush=True)
"""


def test_kill_9_while_writing_loses_no_committed_entry(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(path)], cwd=REPO, stdout=subprocess.PIPE, text=True
    )
    assert writer.stdout is not None
    confirmed = 0
    for line in writer.stdout:
        confirmed = int(line)
        if confirmed >= 300:
            break
    writer.send_signal(signal.SIGKILL)
    writer.wait(10)

    db = sqlite3.connect(path)
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    db.close()
    spool = Spool(path, 1 << 30)
    seqs = {e.seq for e in spool.read(0, limit=10_000)}
    # Printed seqs were appended (and their acks done) before the print; the writer ran on
    # until the kill, so later appends may have acknowledged a few more.
    acked = {s - 3 for s in range(7, confirmed + 1, 7)}
    maybe_acked = {s - 3 for s in range(7, spool.next_seq, 7)}
    # Every append that returned is there, unless it was acknowledged.
    assert set(range(1, confirmed + 1)) - maybe_acked <= seqs
    assert not acked & seqs
    assert spool.next_seq > confirmed


def test_an_unreadable_spool_is_set_aside_and_a_new_epoch_starts(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    path.write_bytes(b"this is not a database" * 100)
    spool = Spool(path, 1 << 20)
    assert spool.pending == 0 and spool.next_seq == 1 and spool.boot
    assert len(list(tmp_path.glob("s.db.corrupt-*"))) == 1


def test_meta_is_readable_by_another_process(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "s.db", 1 << 20)
    spool.put("pid", "1234")
    meta = read_only_meta(tmp_path / "s.db")
    assert meta["x:pid"] == "1234" and meta["boot"] == spool.boot
    spool.put("pid", None)
    assert "x:pid" not in read_only_meta(tmp_path / "s.db")
    assert read_only_meta(tmp_path / "missing.db") == {}


def test_entries_in_flight_are_not_dropped_to_make_room(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "s.db", 1024)
    first = [spool.append("t", payload(200)) for _ in range(5)]
    in_flight = {first[0].id, first[1].id}
    spool.append("t", payload(200), spare=in_flight)
    left = [e.id for e in spool.read(0)]
    assert first[0].id in left and first[1].id in left and first[2].id not in left
    assert spool.dropped_total == 1
