"""Helpers for the agent's end-to-end tests: a config writer, the agent as a real subprocess,
and a sink that subscribes to ``fleet/v1/#`` on the test's Mosquitto and decodes everything.
Their fixtures are in tests/agent/conftest.py.
"""

from __future__ import annotations

import signal
import sqlite3
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from agent import wire
from tests.support.mosquitto import Broker

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "agent" / "fixtures"
SYNC_TOPIC = "fleet/v1/_sync/"  # the sink's own markers: not decoded, not kept
WAIT_S = 20.0  # generous: the machine is shared; tests wait for behaviour, never on timing


def wait_until(predicate: Callable[[], bool], timeout: float = WAIT_S, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what or predicate}")


def agent_config(
    tmp: Path,
    url: str,
    *,
    device: str = "gw-1",
    interval: float = 0.2,
    spool_size: str = "16MiB",
    drain_rate: float = 1000,
    probes: str = '[probes.system]\n[[probes.exec]]\nname = "answer"\ncommand = ["echo", "42"]\n',
    tls: str = "",
    name: str = "agent.toml",
    extra: str = "",
    spool_path: Path | None = None,
) -> Path:
    path = tmp / name
    path.write_text(
        f"""
interval_s = {interval}
log_level = "info"

[device]
id = "{device}"
tenant = "t1"
model = "WR5120"
serial = "SN-{device}"
firmware = "test-fw"

[broker]
urls = ["{url}"]
reconnect_min_s = 0.1
reconnect_max_s = 0.5
connect_timeout_s = 3
{tls}

[spool]
path = "{spool_path or tmp / device / "spool.db"}"
max_size = "{spool_size}"
drain_rate = {drain_rate}
inflight = 50

{probes}
{extra}
"""
    )
    return path


@dataclass
class AgentProcess:
    config: Path
    log: Path
    proc: subprocess.Popen[bytes]

    @classmethod
    def start(cls, config: Path, tag: str = "agent") -> AgentProcess:
        log = config.parent / f"{tag}.log"
        handle = log.open("ab")
        proc = subprocess.Popen(
            [sys.executable, "-m", "agent.cli", "--config", str(config)],
            cwd=REPO,
            stdout=handle,
            stderr=handle,
        )
        return cls(config, log, proc)

    def send(self, signum: int) -> None:
        self.proc.send_signal(signum)

    def stop(self, signum: int = signal.SIGTERM, timeout: float = 15) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signum)
        return self.proc.wait(timeout)

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait(10)

    def text(self) -> str:
        return self.log.read_text(errors="replace")


def spool_meta(spool: Path) -> dict[str, str]:
    """The spool's meta table ({} while the agent is still creating the file)."""
    if not spool.exists():
        return {}
    db = sqlite3.connect(f"file:{spool}?mode=ro", uri=True, timeout=5)
    try:
        return dict(db.execute("SELECT key, value FROM meta").fetchall())
    except sqlite3.OperationalError:
        return {}
    finally:
        db.close()


def spool_pending(spool: Path) -> int:
    db = sqlite3.connect(f"file:{spool}?mode=ro", uri=True, timeout=5)
    try:
        return int(db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0])
    finally:
        db.close()


@dataclass
class Sink:
    """Subscribes to everything under fleet/v1 with a persistent session and decodes it."""

    broker: Broker
    client_id: str = "test-sink"
    tls: tuple[Path, Path, Path] | None = None  # ca, cert, key
    messages: list[tuple[str, wire.Message | wire.DecodeError]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _client: paho.Client | None = None
    _synced: threading.Event = field(default_factory=threading.Event)

    def start(self) -> Sink:
        client = paho.Client(
            CallbackAPIVersion.VERSION2, client_id=self.client_id, clean_session=False
        )
        client.reconnect_delay_set(0.1, 0.5)
        if self.tls:
            ca, cert, key = self.tls
            client.tls_set(str(ca), str(cert), str(key), cert_reqs=ssl.CERT_REQUIRED)
        subscribed = threading.Event()

        def on_connect(c: paho.Client, _u: Any, _f: Any, rc: Any, _p: Any) -> None:
            c.subscribe("fleet/v1/#", qos=1)

        def on_subscribe(_c: paho.Client, _u: Any, _mid: int, _rc: Any, _p: Any) -> None:
            subscribed.set()  # SUBACK: from now on every publish reaches this session

        def on_message(_c: paho.Client, _u: Any, msg: paho.MQTTMessage) -> None:
            if msg.topic.startswith(SYNC_TOPIC):
                self._synced.set()
                return
            decoded = wire.decode(msg.topic, msg.payload)
            with self._lock:
                self.messages.append((msg.topic, decoded))

        client.on_connect = on_connect
        client.on_subscribe = on_subscribe
        client.on_message = on_message
        client.connect(self.broker.host, self.broker.port, keepalive=10)
        client.loop_start()
        assert subscribed.wait(WAIT_S), "sink could not subscribe"
        self._client = client
        return self

    def stop(self) -> None:
        if self._client is not None:
            self._client.loop_stop()
            self._client.disconnect()

    def publish(self, topic: str, payload: bytes | str, *, retain: bool = False) -> None:
        assert self._client is not None
        self._client.publish(topic, payload, qos=1, retain=retain).wait_for_publish(10)

    def sync(self) -> None:
        """A marker through the broker and back: what the broker had to send before it (a
        will after a client's socket closed, say) has reached this sink when this returns."""
        self._synced.clear()
        self.publish(f"{SYNC_TOPIC}marker", b"")
        assert self._synced.wait(WAIT_S), "sync marker not back"

    def of(self, kind: type[Any], device: str | None = None) -> list[Any]:
        with self._lock:
            found = [m for _, m in self.messages if isinstance(m, kind)]
        return [m for m in found if device is None or getattr(m, "device", None) == device]

    def seqs(self, device: str) -> list[int]:
        """Sequence numbers of telemetry and events, in arrival order (duplicates kept)."""
        with self._lock:
            return [
                m.seq
                for _, m in self.messages
                if isinstance(m, wire.Telemetry | wire.Event) and m.device == device
            ]

    def unique(self, device: str) -> set[tuple[str, str, int]]:
        with self._lock:
            return {
                (m.device, m.boot, m.seq)
                for _, m in self.messages
                if isinstance(m, wire.Telemetry | wire.Event) and m.device == device
            }

    def rejects(self) -> list[wire.DecodeError]:
        with self._lock:
            return [m for _, m in self.messages if isinstance(m, wire.DecodeError)]
