"""The disk spool: durable FIFO, the sequence epoch across restarts, the size bound and its
drop counter, survival of kill -9 during writes, and an unreadable file."""

from __future__ import annotations

import errno
import logging
import re
import signal
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from agent.spool import Entry, Spool, fault_kind, read_only_meta, set_aside
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


def sized(size: int) -> Callable[[str, int], bytes]:
    """A payload of exactly ``size`` bytes (with the topic "t": an entry of ``size + 1``)."""
    return lambda boot, seq: b"x" * size


def test_a_fresh_spool_is_durable_and_records_its_schema(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "s.db"  # missing folders are made
    spool = Spool(path, 1 << 20)
    assert spool.path == path and spool.set_aside is None
    assert spool.last_id() == 0 and spool.pending == 0 and spool.next_seq == 1
    assert spool._db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    assert spool._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert read_only_meta(path) == {"schema": "1", "boot": spool.boot, "next_seq": "1"}
    assert re.fullmatch(r"[0-9a-f]+-[0-9a-f]{8}", spool.boot)
    fast = Spool(tmp_path / "fast.db", 1 << 20, durable=False)
    assert fast._db.execute("PRAGMA synchronous").fetchone()[0] == 0  # OFF


def test_appended_entries_read_back_exactly(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "s.db", 1 << 20)
    entry = spool.append("fleet/v1/t/d/telemetry", lambda boot, seq: b"payload-%d" % seq)
    assert entry == Entry(1, 1, "fleet/v1/t/d/telemetry", b"payload-1")
    assert spool.read(0) == [entry]
    for _ in range(149):
        spool.append("t", sized(1))
    assert len(spool.read(0)) == 100  # the default page
    assert spool.ack([]) == 0


def test_a_spool_is_usable_from_another_thread(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "s.db", 1 << 20)
    done: list[Entry] = []
    worker = threading.Thread(target=lambda: done.append(spool.append("t", sized(3))))
    worker.start()
    worker.join()
    assert [e.seq for e in done] == [1] and spool.pending == 1


def test_free_form_values_are_kept_beside_the_entries(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "s.db", 1 << 20)
    assert spool.get("pid") is None
    spool.put("pid", "1234")
    assert spool.get("pid") == "1234"
    spool.put("pid", None)
    assert spool.get("pid") is None


def test_room_is_made_down_to_the_exact_byte(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "s.db", 100)
    first = spool.append("t", sized(49))  # 50 bytes
    spool.append("t", sized(49))  # 100: exactly the bound, nothing dropped
    assert spool.dropped_total == 0
    spool.append("t", sized(0))  # one byte over: the oldest goes
    assert [e.id for e in spool.read(0)] == [first.id + 1, first.id + 2]
    assert (spool.pending, spool.pending_bytes, spool.dropped_total) == (2, 51, 1)


def test_room_made_exactly_drops_no_more(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    spool = Spool(tmp_path / "s.db", 30)
    ids = [spool.append("t", sized(9)).id for _ in range(3)]  # 3 x 10 bytes
    with caplog.at_level(logging.WARNING, logger="agent.spool"):
        spool.append("t", sized(19))  # 20 bytes: exactly the two oldest make room
    assert [e.id for e in spool.read(0)] == [ids[2], ids[2] + 1]
    assert (spool.pending, spool.pending_bytes, spool.dropped_total) == (2, 30, 2)
    assert "spool full (30 bytes): dropped the 2 oldest reports" in caplog.messages


def test_an_entry_in_flight_is_skipped_and_the_next_oldest_dropped(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "s.db", 30)
    ids = [spool.append("t", sized(9)).id for _ in range(3)]
    spool.append("t", sized(9), spare={ids[0]})
    assert [e.id for e in spool.read(0)] == [ids[0], ids[2], ids[2] + 1]


def test_room_for_a_large_entry_is_made_past_one_page_of_entries(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    spool = Spool(path, 3000, durable=False)
    for _ in range(300):
        spool.append("t", sized(9))  # 300 x 10 bytes: full
    spool.append("t", sized(2899))  # 2900 bytes: 290 of them must go, more than a page of 256
    assert spool.dropped_total == 290
    assert (spool.pending, spool.pending_bytes) == (11, 3000)
    spool.close()
    again = Spool(path, 3000)  # the counts kept in memory match the file
    assert (again.pending, again.pending_bytes, again.dropped_total) == (11, 3000, 290)


def test_a_failed_write_leaves_the_spool_usable_and_the_seq_unused(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "s.db", 1 << 20)
    kept = spool.append("t", sized(3))
    with pytest.raises(sqlite3.Error):
        spool.ack([object()])  # type: ignore[list-item]  # not an id SQLite can bind
    with pytest.raises(sqlite3.Error):
        spool.append("t", lambda boot, seq: [seq])  # type: ignore[arg-type,return-value]
    after = spool.append("t", sized(3))  # no transaction left open, the seq not given away
    assert after.seq == kept.seq + 1
    assert [e.seq for e in spool.read(0)] == [1, 2] and spool.pending == 2


@pytest.mark.parametrize(
    ("code", "kind"),
    [
        (sqlite3.SQLITE_CORRUPT, "corrupt"),
        (sqlite3.SQLITE_NOTADB, "corrupt"),
        (267, "corrupt"),  # SQLITE_CORRUPT_VTAB: an extended code of a corrupt database
        (sqlite3.SQLITE_FULL, "full"),
        (sqlite3.SQLITE_IOERR, "io"),
        (778, "io"),  # SQLITE_IOERR_WRITE
        (sqlite3.SQLITE_READONLY, "io"),
        (sqlite3.SQLITE_BUSY, "io"),
    ],
)
def test_an_sqlite_error_is_classed_by_its_primary_code(code: int, kind: str) -> None:
    exc = sqlite3.OperationalError("from SQLite")
    exc.sqlite_errorcode = code  # what the sqlite3 module sets on the errors it raises
    assert fault_kind(exc) == kind


def test_errors_without_an_sqlite_code_are_classed_by_their_type() -> None:
    assert fault_kind(OSError(errno.ENOSPC, "No space left on device")) == "full"
    assert fault_kind(OSError(errno.EIO, "Input/output error")) == "io"
    assert fault_kind(sqlite3.DatabaseError("damaged meta table")) == "corrupt"
    assert fault_kind(sqlite3.OperationalError("disk I/O error")) == "io"
    assert fault_kind(ValueError("other")) == "io"
    with pytest.raises(sqlite3.DatabaseError) as real:
        sqlite3.connect(":memory:").execute("SELEC 1")
    assert fault_kind(real.value) == "io"  # a syntax error is not damage


def test_a_damaged_meta_value_sets_the_spool_aside_and_says_why(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "s.db"
    spool = Spool(path, 1 << 20)
    spool.append("t", sized(3))
    spool._db.execute("UPDATE meta SET value = 'many' WHERE key = 'next_seq'")
    spool.close()
    with caplog.at_level(logging.ERROR, logger="agent.spool"):
        fresh = Spool(path, 1 << 20)
    aside = fresh.set_aside
    assert aside is not None and aside.name.startswith("s.db.corrupt-") and aside.exists()
    assert fresh.pending == 0 and fresh.next_seq == 1 and fresh.boot != spool.boot
    assert caplog.messages == [
        f"spool {path} is unreadable (damaged meta table: invalid literal for int() with base"
        f" 10: 'many'); moved to {aside}"
    ]


def test_setting_aside_moves_the_wal_with_the_file_and_drops_the_shared_memory(
    tmp_path: Path,
) -> None:
    path = tmp_path / "s.db"
    for suffix, content in (("", b"db"), ("-wal", b"wal"), ("-shm", b"shm")):
        Path(f"{path}{suffix}").write_bytes(content)
    aside = set_aside(path, sqlite3.DatabaseError("file is not a database"))
    assert aside.name.startswith("s.db.corrupt-")
    assert aside.read_bytes() == b"db" and Path(f"{aside}-wal").read_bytes() == b"wal"
    assert sorted(p.name for p in tmp_path.iterdir()) == [aside.name, f"{aside.name}-wal"]
