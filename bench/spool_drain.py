"""Spool drain: how fast a 100,000-report backlog leaves the spool for a local Mosquitto, beside
``mosquitto_pub`` publishing the same payloads (QoS 1, one per line) in the same run.

Both rates are measured at a ``mosquitto_sub`` (QoS 1) from its first to its last message. The
agent runs as a subprocess with the drain rate unlimited and its default window of 200
publishes in flight; every entry leaves its spool only after the broker's PUBACK.

Prints one JSON object.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

from _support import REPO, Broker, config

from agent import wire
from agent.spool import Spool

BACKLOG = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
TOPIC = "fleet/v1/bench/bench-1/telemetry"


def metrics(seq: int) -> dict[str, wire.MetricValue]:
    """A report like a gateway's: system, one cellular modem, three interfaces."""
    found: dict[str, wire.MetricValue] = {
        "uptime_s": 86_400 + seq * 10,
        "load1": 0.42,
        "cpu_pct": 7.5,
        "mem_used_pct": 41.2,
        "disk_used_pct": 63.0,
        "temp_c": 52.3,
        "rsrp_dbm": -97,
        "rsrq_db": -11,
        "sinr_db": 12.4,
        "rssi_dbm": -68,
        "cell_operator": "CHINA MOBILE",
        "spool_pending": 0,
        "spool_dropped": 0,
    }
    for iface in ("wwan0", "eth0", "br_lan"):
        found |= {
            f"if_{iface}_up": True,
            f"if_{iface}_rx_bytes": 1_000_000 + seq * 1500,
            f"if_{iface}_tx_bytes": 500_000 + seq * 700,
        }
    return found


def fill(spool_path: Path) -> tuple[list[bytes], float]:
    start = time.monotonic()
    spool = Spool(spool_path, 1 << 30, durable=False)
    payloads = []
    ts = datetime.now(UTC)
    for _ in range(BACKLOG):

        def build(boot: str, seq: int) -> bytes:
            report = wire.Telemetry("bench-1", boot, seq, ts, metrics(seq), {"site": "bench"})
            return wire.encode(report)

        payloads.append(spool.append(TOPIC, build).payload)
    spool.close()
    return payloads, time.monotonic() - start


def subscriber(port: int, topic: str) -> subprocess.Popen[bytes]:
    argv = ["mosquitto_sub", "-h", "127.0.0.1", "-p", str(port), "-q", "1", "-t", topic]
    proc = subprocess.Popen([*argv, "-C", str(BACKLOG)], stdout=subprocess.PIPE)
    time.sleep(0.5)  # subscribed before anything is published
    return proc


def receive(proc: subprocess.Popen[bytes], idle_s: float = 10.0) -> tuple[float, int]:
    """(messages per second from the first to the last message, how many arrived); stops at
    BACKLOG messages or after ``idle_s`` without one (mosquitto_pub -l may lose its tail)."""
    assert proc.stdout is not None
    stamps: list[float] = []

    def read() -> None:
        assert proc.stdout is not None
        for _ in proc.stdout:
            stamps.append(time.monotonic())

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    started = time.monotonic()
    while len(stamps) < BACKLOG:
        time.sleep(0.5)
        if time.monotonic() - (stamps[-1] if stamps else started) >= idle_s:
            break
    proc.kill()
    proc.wait(10)
    count = len(stamps)
    if count < 2:
        raise RuntimeError(f"only {count} messages arrived")
    return (count - 1) / (stamps[count - 1] - stamps[0]), count


def feed(publisher: subprocess.Popen[bytes], payloads: list[bytes]) -> None:
    assert publisher.stdin is not None
    publisher.stdin.write(b"\n".join(payloads) + b"\n")
    publisher.stdin.flush()


def main() -> None:
    for program in ("mosquitto_pub", "mosquitto_sub"):
        if shutil.which(program) is None:
            sys.exit(f"{program} is not installed (apt-get install mosquitto-clients)")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        broker = Broker(folder / "mosquitto", persistence=False).start()
        try:
            payloads, fill_s = fill(folder / "spool.db")

            sub = subscriber(broker.port, TOPIC)
            path = config(folder, broker.url, interval=3600, probes="[probes]", drain_rate=1e6)
            started = time.monotonic()
            agent = subprocess.Popen([sys.executable, "-m", "agent.cli", "-c", str(path)], cwd=REPO)
            agent_rate, agent_count = receive(sub)
            agent_total_s = time.monotonic() - started
            agent.terminate()
            agent.wait(30)
            left = Spool(folder / "spool.db", 1 << 30).pending

            sub = subscriber(broker.port, "bench/baseline")
            pub_argv = ["mosquitto_pub", "-h", "127.0.0.1", "-p", str(broker.port), "-q", "1"]
            publisher = subprocess.Popen(
                [*pub_argv, "-t", "bench/baseline", "-l"], stdin=subprocess.PIPE
            )
            # stdin stays open until everything arrived: at end of input mosquitto_pub
            # disconnects without waiting for what it still has queued.
            feeder = threading.Thread(target=feed, args=(publisher, payloads), daemon=True)
            feeder.start()
            pub_rate, pub_count = receive(sub)
            assert publisher.stdin is not None
            publisher.stdin.close()
            publisher.wait(60)
        finally:
            broker.stop()

    print(
        json.dumps(
            {
                "backlog_reports": BACKLOG,
                "payload_bytes_mean": round(sum(map(len, payloads)) / len(payloads)),
                "agent_drain_reports_per_s": round(agent_rate),
                "agent_total_s_including_start": round(agent_total_s, 2),
                "agent_reports_delivered": agent_count,
                "agent_inflight_window": 200,
                "spool_entries_left_after_drain": left,
                "mosquitto_pub_reports_per_s": round(pub_rate),
                "mosquitto_pub_reports_delivered": pub_count,
                "agent_vs_mosquitto_pub": round(agent_rate / pub_rate, 3),
                "spool_fill_s": round(fill_s, 2),
            }
        )
    )


if __name__ == "__main__":
    main()
