"""A full disk or a damaged spool never silences the agent (real Mosquitto, real tmpfs).

The spool sits on a 256 KiB tmpfs the test mounts (CI runs as root; a failed mount fails the
test rather than skipping it). The agent must keep publishing live reports, say what is wrong
(a ``spool_failed`` event, ``agent_spool_ok = 0`` and a growing ``agent_spool_errors``), and
come back to its spool once space returns (``spool_recovered``). A spool file of garbage or a
damaged database is set aside as ``spool.db.corrupt-<time>`` and a new one started
(``spool_reset``).
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent import wire
from agent.spool import Spool
from agent.spool_guard import SpoolGuard
from tests.support.agent import AgentProcess, Sink, agent_config, spool_meta, wait_until
from tests.support.mosquitto import Broker

PROBES = "[probes.system]\n"


@pytest.fixture
def tiny_fs(tmp_path: Path) -> Iterator[Path]:
    """A 256 KiB tmpfs, unmounted afterwards (listed before ``agents``: torn down after)."""
    mount = tmp_path / "tiny"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.fail(f"cannot mount a tmpfs (the test needs root): {done.stderr.strip()}")
    yield mount
    if subprocess.run(["umount", str(mount)], capture_output=True, check=False).returncode:
        subprocess.run(["umount", "-l", str(mount)], check=True)


def fill(folder: Path, leave: int = 0) -> Path:
    """Write zeros until the file system is full, or has only ``leave`` bytes free."""
    filler = folder / f"filler-{len(list(folder.glob('filler-*')))}"
    fs = os.statvfs(folder)
    todo = max(0, fs.f_bavail * fs.f_frsize - leave)
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        while todo > 0:
            todo -= os.write(fd, b"\0" * min(todo, 4096))
        if not leave:
            while True:  # whatever the counts left (a file system keeps some back)
                os.write(fd, b"\0" * 512)
    except OSError:
        pass
    finally:
        os.close(fd)
    return filler


def telemetry(sink: Sink) -> list[wire.Telemetry]:
    return list(sink.of(wire.Telemetry, "gw-1"))


def events(sink: Sink, name: str) -> list[wire.Event]:
    return [e for e in sink.of(wire.Event, "gw-1") if e.event == name]


def count_after(sink: Sink, start: int, ok: int) -> int:
    return len([t for t in telemetry(sink)[start:] if t.metrics.get("agent_spool_ok") == ok])


def test_a_full_disk_is_reported_and_live_reports_keep_flowing(
    tiny_fs: Path, tmp_path: Path, broker: Broker, sink: Sink, agents: list[AgentProcess]
) -> None:
    spool = tiny_fs / "spool.db"
    config = agent_config(tmp_path, broker.url, probes=PROBES, spool_path=spool)
    filler = fill(tiny_fs, leave=160 * 1024)  # room for a few reports (the WAL grows)
    agent = AgentProcess.start(config)
    agents.append(agent)
    wait_until(lambda: count_after(sink, 0, 1) >= 2, what="reports through the spool")
    first_boot = telemetry(sink)[0].boot

    wait_until(lambda: events(sink, "spool_failed"), what="the spool_failed event")
    failed = events(sink, "spool_failed")[0]
    assert failed.data["reason"] == "full", failed.data
    start = len(telemetry(sink))
    wait_until(lambda: count_after(sink, start, 0) >= 5, what="live reports without the spool")
    direct = [t for t in telemetry(sink)[start:] if t.metrics["agent_spool_ok"] == 0]
    assert all(int(t.metrics["agent_spool_errors"]) >= 1 for t in direct)
    # Their own epoch, never stored: a restart cannot reuse these numbers in the spool's.
    assert {t.boot for t in direct} != {first_boot}
    seqs = [t.seq for t in direct if t.boot == direct[-1].boot]
    assert seqs == sorted(set(seqs))
    assert agent.proc.poll() is None

    filler.unlink()  # space returns
    wait_until(lambda: events(sink, "spool_recovered"), what="the spool_recovered event")
    start = len(telemetry(sink))
    wait_until(lambda: count_after(sink, start, 1) >= 2, what="reports through the spool again")
    spooled = [t for t in telemetry(sink)[start:] if t.metrics["agent_spool_ok"] == 1]
    assert {t.boot for t in spooled} == {first_boot}  # the spool's epoch continues
    assert agent.stop() == 0
    assert "publishing without it" in agent.text()


def test_an_agent_started_on_a_full_disk_reports_and_recovers(
    tiny_fs: Path, tmp_path: Path, broker: Broker, sink: Sink, agents: list[AgentProcess]
) -> None:
    spool = tiny_fs / "spool.db"
    config = agent_config(tmp_path, broker.url, probes=PROBES, spool_path=spool)
    agent = AgentProcess.start(config)  # a first run leaves a spool behind
    agents.append(agent)
    wait_until(lambda: count_after(sink, 0, 1) >= 1, what="a spooled report")
    assert agent.stop() == 0
    fill(tiny_fs)

    for run in range(2):  # the same spool on a full disk, then no spool file at all
        start = len(telemetry(sink))
        agent = AgentProcess.start(config, tag=f"full{run}")
        agents.append(agent)
        wait_until(lambda n=start: count_after(sink, n, 0) >= 3, what="live reports, full disk")
        assert agent.proc.poll() is None, agent.text()
        assert agent.stop() == 0
        for path in tiny_fs.glob("spool.db*"):
            path.unlink()
        fill(tiny_fs)  # what the spool's files held
    assert [e.data["reason"] for e in events(sink, "spool_failed")] == ["full", "full"]

    for path in tiny_fs.glob("filler-*"):
        path.unlink()
    agent = AgentProcess.start(config, tag="space-back")
    agents.append(agent)
    start = len(telemetry(sink))
    wait_until(lambda: count_after(sink, start, 1) >= 2, what="reports through a new spool")
    assert agent.stop() == 0


def test_a_garbage_spool_file_is_set_aside(
    tmp_path: Path, broker: Broker, sink: Sink, agents: list[AgentProcess]
) -> None:
    spool = tmp_path / "gw-1" / "spool.db"
    spool.parent.mkdir()
    spool.write_bytes(os.urandom(64 * 1024))
    agent = AgentProcess.start(agent_config(tmp_path, broker.url, probes=PROBES))
    agents.append(agent)
    wait_until(lambda: events(sink, "spool_reset"), what="the spool_reset event")
    aside = events(sink, "spool_reset")[0].data["aside"]
    assert aside.startswith("spool.db.corrupt-") and (spool.parent / aside).exists()
    wait_until(lambda: count_after(sink, 0, 1) >= 2, what="reports through a new spool")
    assert agent.stop() == 0


@pytest.mark.parametrize("damage", ["truncated", "overwritten"])
def test_a_damaged_spool_database_is_set_aside(
    damage: str, tmp_path: Path, broker: Broker, sink: Sink, agents: list[AgentProcess]
) -> None:
    spool = tmp_path / "gw-1" / "spool.db"
    old = Spool(spool, 16 * 1024 * 1024, durable=False)
    for _ in range(2000):  # a backlog of about 1.4 MB, as after a long outage
        old.append("fleet/v1/t1/gw-1/telemetry", lambda boot, seq: b"x" * 600)
    old._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    old.close()
    size = spool.stat().st_size
    with spool.open("r+b") as handle:
        if damage == "truncated":
            handle.truncate(size // 2)
        else:
            handle.seek(size // 2)
            handle.write(os.urandom(16 * 4096))
    agent = AgentProcess.start(agent_config(tmp_path, broker.url, probes=PROBES))
    agents.append(agent)
    wait_until(lambda: events(sink, "spool_reset"), what="the spool_reset event")
    wait_until(lambda: count_after(sink, 0, 1) >= 2, what="reports through a new spool")
    assert agent.proc.poll() is None
    assert agent.stop() == 0
    assert list(spool.parent.glob("spool.db.corrupt-*"))


def test_damage_found_while_running_sets_the_spool_aside(tmp_path: Path) -> None:
    """The guard alone, on a real file damaged under the open spool (pages beyond its cache)."""
    path = tmp_path / "spool.db"
    guard = SpoolGuard(path, 16 * 1024 * 1024)
    assert guard.ok and guard.take_notices() == []
    topic = "fleet/v1/t1/gw-1/telemetry"
    for _ in range(3000):
        assert guard.append(topic, lambda boot, seq: os.urandom(300).hex().encode())
    assert guard.spool is not None
    guard.spool._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    old_boot, size, generation = guard.boot, path.stat().st_size, guard.generation
    with path.open("r+b") as handle:
        handle.seek(size // 3)
        handle.write(os.urandom(size // 3))
    assert len(guard.read(0, None, 3000)) < 3000  # stops at the damage
    assert not guard.ok and guard.fault is not None and guard.fault[0] == "corrupt"
    assert guard.append(topic, lambda boot, seq: b"{}") is None  # until the next report
    notices = dict(guard.take_notices())
    assert notices["spool_failed"]["reason"] == "corrupt"
    assert notices["spool_reset"]["aside"].startswith("spool.db.corrupt-")
    assert guard.generation > generation  # the publisher forgets the old file's ids
    generation = guard.generation

    guard.retry()  # the next report: a new spool, a new epoch
    entry = guard.append(topic, lambda boot, seq: b"{}")
    assert entry is not None and entry.seq == 1 and guard.boot != old_boot and guard.ok
    assert guard.generation > generation
    assert "spool_recovered" in dict(guard.take_notices())
    guard.close()
    assert len(list(tmp_path.glob("spool.db.corrupt-*"))) >= 1


def test_a_backlog_on_a_full_disk_still_drains(
    tiny_fs: Path, tmp_path: Path, broker: Broker, sink: Sink, agents: list[AgentProcess]
) -> None:
    spool = tiny_fs / "spool.db"
    config = agent_config(tmp_path, broker.url, probes=PROBES, spool_path=spool)
    fill(tiny_fs, leave=160 * 1024)
    broker.stop()  # the link is down: reports pile up until the disk is full
    agent = AgentProcess.start(config)
    agents.append(agent)
    wait_until(lambda: "publishing without it" in agent.text(), what="the spool failing")
    meta = spool_meta(spool)
    backlog = int(meta["next_seq"]) - 1
    assert backlog >= 3, meta
    broker.start()
    wait_until(
        lambda: (
            {t.seq for t in telemetry(sink) if t.boot == meta["boot"]} >= set(range(1, backlog))
        ),
        what=f"the {backlog} spooled reports",
    )
    wait_until(lambda: events(sink, "spool_failed"), what="the spool_failed event, link back")
    assert agent.proc.poll() is None
    assert agent.stop() == 0
