"""What the benches share: a config writer, process accounting from /proc, the broker, and
the MQTT 5 clients that build and drain a backlog."""

from __future__ import annotations

import os
import sqlite3
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import paho.mqtt.client as mqtt  # noqa: E402
from paho.mqtt.enums import CallbackAPIVersion  # noqa: E402
from paho.mqtt.packettypes import PacketTypes  # noqa: E402
from paho.mqtt.properties import Properties  # noqa: E402

from tests.support.mosquitto import Broker  # noqa: E402

__all__ = [
    "REPO",
    "Broker",
    "config",
    "cpu_seconds",
    "mqtt5_client",
    "peak_rss_kb",
    "publish_backlog",
    "session_props",
    "spool_next_seq",
    "status_kb",
]

TICKS = os.sysconf("SC_CLK_TCK")


def config(folder: Path, url: str, *, interval: float, probes: str, drain_rate: float = 50) -> Path:
    path = folder / "agent.toml"
    path.write_text(
        f"""interval_s = {interval}
log_level = "warning"
[device]
id = "bench-1"
tenant = "bench"
model = "bench"
serial = "bench"
firmware = "bench"
[broker]
url = "{url}"
[spool]
path = "{folder / "spool.db"}"
max_size = "256MiB"
drain_rate = {drain_rate}
{probes}
"""
    )
    return path


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and its waited-for children (probe helpers)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    utime, stime, cutime, cstime = (int(v) for v in fields[11:15])
    return (utime + stime + cutime + cstime) / TICKS


def status_kb(pid: int, field: str) -> int:
    """A memory figure of /proc/<pid>/status (VmHWM: peak RSS; RssAnon: private memory)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field}")


def peak_rss_kb(pid: int) -> int:
    return status_kb(pid, "VmHWM")


def spool_next_seq(spool: Path) -> int:
    try:
        db = sqlite3.connect(f"file:{spool}?mode=ro", uri=True, timeout=5)
        try:
            row = db.execute("SELECT value FROM meta WHERE key = 'next_seq'").fetchone()
        finally:
            db.close()
    except sqlite3.Error:
        return 0
    return int(row[0]) if row else 0


def mqtt5_client(client_id: str) -> mqtt.Client:
    return mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)


def session_props() -> Properties:
    """CONNECT properties of a persistent session (kept an hour)."""
    props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    props.SessionExpiryInterval = 3600
    return props


def publish_backlog(port: int, items: list[tuple[str, bytes]]) -> None:
    """Publish every (topic, payload) at QoS 1 and wait for each PUBACK."""
    client = mqtt5_client("bench-publisher")
    client.max_inflight_messages_set(1000)
    client.max_queued_messages_set(0)
    client.connect("127.0.0.1", port)
    client.loop_start()
    for start in range(0, len(items), 20_000):  # message ids wrap at 65,535
        infos = [client.publish(t, p, qos=1) for t, p in items[start : start + 20_000]]
        for info in infos:
            info.wait_for_publish(timeout=120)
    client.disconnect()
    client.loop_stop()
