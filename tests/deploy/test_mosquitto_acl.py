"""The shipped Mosquitto set-up (deploy/mosquitto/) with accounts from ``fleetdesk device add``,
on a real Mosquitto: a device publishes only under its own topics and reads only its own
commands; no account, no connection.

The shipped config is used as is except for what must differ on a test machine: ports, file
locations, the user Mosquitto runs as and logging (each substitution must match, so a change to
the shipped file that the test no longer covers fails here).
"""

from __future__ import annotations

import getpass
import queue
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from collector.cli import main
from tests.support.pki import Pki
from tests.support.services import free_port, require_program, stop_process, wait_for_port

REPO = Path(__file__).resolve().parents[2]
CONF = REPO / "deploy" / "mosquitto" / "fleetdesk.conf"


class Broker:
    def __init__(self, tmp: Path) -> None:
        self.tmp, self.tls_port, self.local_port = tmp, free_port(), free_port()
        self.pki = Pki.create(tmp / "pki")
        self.cert, self.key = self.pki.issue("broker", server=True)
        self.passwd, self.acl, self.out = (
            tmp / "fleetdesk.passwd",
            tmp / "fleetdesk.acl",
            tmp / "out",
        )
        self.proc: subprocess.Popen[bytes] | None = None

    def conf(self) -> Path:
        text = CONF.read_text()
        swaps = {
            "listener 8883\n": f"listener {self.tls_port} 127.0.0.1\n",
            "listener 1883 127.0.0.1\n": f"listener {self.local_port} 127.0.0.1\n",
            "/etc/mosquitto/fleetdesk.passwd": str(self.passwd),
            "/etc/mosquitto/fleetdesk.acl": str(self.acl),
            "/etc/mosquitto/certs/fleetdesk-ca.pem": str(self.pki.ca_cert),
            "/etc/mosquitto/certs/broker.pem": str(self.cert),
            "/etc/mosquitto/certs/broker.key": str(self.key),
            "/var/lib/mosquitto/": f"{self.tmp}/",
            "log_dest syslog": "log_dest stderr",
        }
        for old, new in swaps.items():
            assert old in text, f"deploy/mosquitto/fleetdesk.conf no longer has {old!r}"
            text = text.replace(old, new)
        path = self.tmp / "mosquitto.conf"
        path.write_text(text + f"\nuser {getpass.getuser()}\n")
        return path

    def start(self) -> None:
        log = (self.tmp / "mosquitto.log").open("ab")
        binary = require_program("mosquitto")
        self.proc = subprocess.Popen([binary, "-c", str(self.conf())], stdout=log, stderr=log)
        wait_for_port(self.tls_port)

    def password(self, name: str) -> str:
        return (self.out / f"{name}.password").read_text().strip()


class Client:
    """A paho client over TLS that records what it receives, in order."""

    def __init__(self, broker: Broker, user: str | None, password: str | None) -> None:
        self.got: queue.Queue[tuple[str, bytes]] = queue.Queue()
        self.connected: queue.Queue[int] = queue.Queue()
        self.subacks: queue.Queue[list[int]] = queue.Queue()
        c = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"t-{user}", protocol=paho.MQTTv311)
        c.tls_set(str(broker.pki.ca_cert), cert_reqs=ssl.CERT_REQUIRED)
        if user is not None:
            c.username_pw_set(user, password)
        c.on_connect = lambda _c, _u, _f, rc, _p: self.connected.put(rc.value)
        c.on_message = lambda _c, _u, m: self.got.put((m.topic, m.payload))
        c.on_subscribe = lambda _c, _u, _m, codes, _p: self.subacks.put([r.value for r in codes])
        c.connect("127.0.0.1", broker.tls_port, keepalive=10)
        c.loop_start()
        self.c = c
        self.rc = self.connected.get(timeout=10)

    def subscribe(self, topic: str) -> list[int]:
        self.c.subscribe(topic, qos=1)
        return self.subacks.get(timeout=10)

    def publish(self, topic: str, payload: bytes) -> None:
        self.c.publish(topic, payload, qos=1).wait_for_publish(10)

    def next(self) -> tuple[str, bytes]:
        return self.got.get(timeout=10)

    def next_report(self) -> tuple[str, bytes]:
        """The next message that is not a command (the collector sees its own commands)."""
        while True:
            topic, payload = self.next()
            if not topic.endswith("/cmd"):
                return topic, payload

    def stop(self) -> None:
        self.c.loop_stop()
        self.c.disconnect()


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    b = Broker(tmp_path)
    common = ["--passwd", str(b.passwd), "--acl", str(b.acl), "--out", str(b.out)]
    assert main(["device", "collector-account", *common]) == 0
    for device in ("gw-a", "gw-b"):
        assert main(["device", "add", "--tenant", "acme", "--id", device, *common]) == 0
    b.start()
    yield b
    stop_process(b.proc)


def test_a_device_cannot_publish_as_another_nor_read_its_commands(broker: Broker) -> None:
    collector = Client(broker, "fleetdesk-collector", broker.password("collector"))
    a = Client(broker, "acme/gw-a", broker.password("gw-a"))
    b = Client(broker, "acme/gw-b", broker.password("gw-b"))
    clients = [collector, a, b]
    try:
        assert [c.rc for c in clients] == [0, 0, 0]
        assert collector.subscribe("fleet/v1/#") == [1]
        # A publishes as B, then as itself: the collector gets only the second (one
        # publisher's messages arrive in order, so the forged one would have come first).
        a.publish("fleet/v1/acme/gw-b/telemetry", b"forged")
        a.publish("fleet/v1/acme/gw-a/telemetry", b"own")
        assert collector.next_report() == ("fleet/v1/acme/gw-a/telemetry", b"own")
        # A subscribes to B's commands and to everything: refused (0x80), or at least silent.
        assert a.subscribe("fleet/v1/acme/gw-b/cmd") in ([0x80], [1])
        assert a.subscribe("fleet/v1/#") in ([0x80], [1])
        assert a.subscribe("fleet/v1/acme/gw-a/cmd") == [1]
        assert b.subscribe("fleet/v1/acme/gw-b/cmd") == [1]
        collector.publish("fleet/v1/acme/gw-b/cmd", b"for-b")
        collector.publish("fleet/v1/acme/gw-a/cmd", b"for-a")
        assert b.next() == ("fleet/v1/acme/gw-b/cmd", b"for-b")
        assert a.next() == ("fleet/v1/acme/gw-a/cmd", b"for-a")  # not B's, nor anyone's reports
        b.publish("fleet/v1/acme/gw-b/state", b"b-state")
        assert collector.next_report() == ("fleet/v1/acme/gw-b/state", b"b-state")
        assert a.got.empty()
        # A device cannot send commands to another device either.
        a.publish("fleet/v1/acme/gw-b/cmd", b"a-commands-b")
        a.publish("fleet/v1/acme/gw-a/event", b"marker")
        assert collector.next_report() == ("fleet/v1/acme/gw-a/event", b"marker")
        assert b.got.empty()
    finally:
        for c in clients:
            c.stop()


def test_no_account_or_a_wrong_password_is_refused(broker: Broker) -> None:
    anonymous = Client(broker, None, None)
    wrong = Client(broker, "acme/gw-a", "not-the-password")
    try:
        # CONNACK "not authorised" (3.1.1 code 5; paho reports it as the MQTT 5 reason 135)
        assert anonymous.rc in (5, 135) and wrong.rc in (5, 135)
    finally:
        anonymous.stop()
        wrong.stop()


def test_device_add_refuses_an_account_twice_and_keeps_the_password_out_of_stdout(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    common = ["--passwd", str(tmp_path / "p"), "--acl", str(tmp_path / "a"), "--out", str(tmp_path)]
    (tmp_path / "ca.pem").write_text("")
    on_device = [
        "--ca-file",
        str(tmp_path / "ca.pem"),
        "--password-file",
        str(tmp_path / "d1.password"),
    ]
    assert main(["device", "add", "--tenant", "t1", "--id", "d1", *common, *on_device]) == 0
    out = capsys.readouterr().out
    password = (tmp_path / "d1.password").read_text().strip()
    assert password not in out and password not in (tmp_path / "p").read_text()
    assert (tmp_path / "d1.password").stat().st_mode & 0o777 == 0o600
    assert 'username = "t1/d1"' in out and "topic read fleet/v1/t1/d1/cmd" in out
    from agent.config import load

    cfg = load(tmp_path / "d1.toml")  # the printed agent config is a valid one
    assert cfg.device.id == "d1" and cfg.broker.username == "t1/d1"
    assert main(["device", "add", "--tenant", "t1", "--id", "d1", *common]) == 2
    assert "has an account already" in capsys.readouterr().err
