"""The agent's MQTT link driven in-process: a recorder of what it reports, a link to a test
broker, and a poll loop with a deadline (tests/agent/test_mqtt_link*.py)."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from agent.config_types import BrokerConfig, BrokerUrl, TlsConfig
from agent.mqtt import Link, Will
from tests.support.mosquitto import Broker, TlsFiles
from tests.support.pki import Pki

WAIT_S = 20.0
NO_TLS = TlsConfig()


@dataclass
class Recorder:
    ups: int = 0
    downs: list[str] = field(default_factory=list)
    acks: list[tuple[int, bool]] = field(default_factory=list)
    messages: list[tuple[str, bytes]] = field(default_factory=list)
    retained: list[bool] = field(default_factory=list)

    def link_up(self) -> None:
        self.ups += 1

    def link_down(self, reason: str) -> None:
        self.downs.append(reason)

    def acked(self, mid: int, ok: bool) -> None:
        self.acks.append((mid, ok))

    def message(self, topic: str, payload: bytes, retain: bool = False) -> None:
        self.messages.append((topic, payload))
        self.retained.append(retain)


def make_link(
    url: BrokerUrl, rec: Recorder, *, tls: TlsConfig = NO_TLS, timeout: float = 10.0
) -> Link:
    broker = BrokerConfig(urls=(url,), tls=tls, connect_timeout_s=timeout, keepalive_s=30)
    return Link(broker, "gw-link", Will("fleet/v1/t/gw-link/state", b"offline"), rec)


def poll_until(link: Link, wake: socket.socket, done: Callable[[], bool]) -> None:
    deadline = time.monotonic() + WAIT_S
    while not done():
        assert time.monotonic() < deadline, "not reached in time"
        link.poll(wake, 0.05)


def plain(broker: Broker) -> BrokerUrl:
    return BrokerUrl("127.0.0.1", broker.port, False)


def connected(broker: Broker, wake: socket.socket, rec: Recorder) -> Link:
    link = make_link(plain(broker), rec)
    assert link.open(plain(broker)) is None
    poll_until(link, wake, lambda: link.up)
    return link


def guarded_broker(tmp_path: Path) -> Broker:
    """Anonymous clients may publish under fleet/v1/t/gw-link/ only; a client that names a
    user must give its password."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    passwords = tmp_path / "passwd"
    subprocess.run(["mosquitto_passwd", "-c", "-b", str(passwords), "gw", "right"], check=True)
    acl = tmp_path / "acl"
    acl.write_text("topic readwrite fleet/v1/t/gw-link/#\nuser gw\ntopic readwrite #\n")
    conf = f"password_file {passwords}\nacl_file {acl}\n"
    return Broker(tmp_path / "broker", extra_conf=conf).start()


def tls_broker(
    tmp_path: Path, ca: Pki, cert: tuple[Path, Path], *, require_certificate: bool = False
) -> Broker:
    """A TLS Mosquitto with this server certificate, asking clients for one or not."""
    return Broker(tmp_path / "tls", tls=TlsFiles(ca.ca_cert, *cert, require_certificate)).start()


def comes_up(link: Link, url: BrokerUrl, wake: socket.socket, rec: Recorder) -> None:
    """``open`` succeeds and the broker accepts: up, nothing reported down."""
    assert link.open(url) is None
    poll_until(link, wake, lambda: link.up or bool(rec.downs))
    assert rec.downs == [] and link.up
