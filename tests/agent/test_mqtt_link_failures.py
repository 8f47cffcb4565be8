"""The agent's MQTT link when things break under it, in-process against a real Mosquitto: the
reason a failure reports (and that it does not carry an old one), that a failure never says
DISCONNECT (so the broker keeps the will), a socket paho closed or that went bad under the
link, a large publish that needs the socket's write readiness, and the QoS the broker grants
the link's subscriptions (read from the broker's own log).

Some failures cannot be caused from outside on demand (paho closing its socket without a
callback, a select() error, paho's error log line before a drop); those tests call the paho
callback or close the socket exactly as paho or the kernel would, each says which."""

from __future__ import annotations

import os
import socket
import ssl
import struct
import threading
import time
from pathlib import Path

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.reasoncodes import ReasonCode

from agent.config_types import BrokerConfig, BrokerUrl, TlsConfig
from agent.mqtt import Link, Will
from tests.support.agent import Sink
from tests.support.mosquitto import Broker
from tests.support.mqtt_link import (
    WAIT_S,
    Recorder,
    comes_up,
    connected,
    guarded_broker,
    make_link,
    plain,
    poll_until,
    tls_broker,
)
from tests.support.pki import Pki

WILL_TOPIC = "fleet/v1/t/gw-link/state"


def test_a_failure_names_pahos_last_error_once(broker: Broker, wake: socket.socket) -> None:
    """paho's error log line (``on_log`` at MQTT_LOG_ERR, as paho calls it when a socket
    fails) is added to the reason of the failure it explains, and to no later one."""
    rec = Recorder()
    link = connected(broker, wake, rec)
    client = link._client
    assert client is not None
    # through paho's own logger (its private _easy_log, as paho logs a socket error)
    client._easy_log(paho.MQTT_LOG_ERR, "failed to receive on socket: %s", "[Errno 104]")
    client._easy_log(paho.MQTT_LOG_WARNING, "a warning is not a reason")
    link._fail("keep-alive timeout")
    assert rec.downs == ["keep-alive timeout (failed to receive on socket: [Errno 104])"]

    assert link.open(plain(broker)) is None
    poll_until(link, wake, lambda: link.up)
    link._fail("keep-alive timeout")
    assert rec.downs[1] == "keep-alive timeout"  # the old line is not repeated


def test_a_disconnect_inside_open_is_kept_as_the_reason(
    broker: Broker, wake: socket.socket
) -> None:
    """paho may call ``on_disconnect`` for a client the link has not taken yet (inside
    ``open``); its reason is what the next failure reports, unless paho logged a line first."""
    rec = Recorder()
    link = connected(broker, wake, rec)
    other = paho.Client(CallbackAPIVersion.VERSION2, client_id="not-the-links")
    link._on_disconnect(other, None, None, ReasonCode(PacketTypes.DISCONNECT, identifier=142), None)
    assert link.up and rec.downs == []  # not the link's client: nothing reported yet
    link._fail("refused")
    assert rec.downs == ["refused (Session taken over)"]

    assert link.open(plain(broker)) is None
    poll_until(link, wake, lambda: link.up)
    client = link._client
    assert client is not None
    link._on_log(client, None, paho.MQTT_LOG_ERR, "TLS handshake failed")
    link._on_disconnect(other, None, None, ReasonCode(PacketTypes.DISCONNECT, identifier=142), None)
    link._fail("refused")
    assert rec.downs[1] == "refused (TLS handshake failed)"  # the first explanation stays


def test_a_failure_drops_the_connection_without_disconnect(
    broker: Broker, wake: socket.socket
) -> None:
    """A failure while up closes the socket without DISCONNECT: the broker then publishes the
    will, as it must for a gateway that stopped answering."""
    sink = Sink(broker).start()
    try:
        rec = Recorder()
        link = connected(broker, wake, rec)
        assert link._client is not None
        sock = link._client.socket()
        assert sock is not None
        link._fail("no PINGRESP")
        assert rec.downs == ["no PINGRESP"] and not link.up
        assert sock.fileno() == -1  # closed now, not whenever the client is collected
        deadline = time.monotonic() + WAIT_S
        while not [m for t, m in sink.messages if t == WILL_TOPIC]:
            assert time.monotonic() < deadline, "no will: the link said DISCONNECT"
            time.sleep(0.05)
    finally:
        sink.stop()


def test_a_socket_paho_closed_without_telling_is_reported(
    broker: Broker, wake: socket.socket
) -> None:
    """paho can drop its socket with no callback (``_sock_close``, called here as paho calls
    it): the next poll reports the link down as "connection closed"."""
    rec = Recorder()
    link = connected(broker, wake, rec)
    assert link._client is not None
    link._client._sock_close()
    link.poll(wake, 0.01)
    assert rec.downs == ["connection closed"]
    assert not link.up and not link.connecting


def test_a_socket_closed_under_the_link_is_a_socket_error(
    broker: Broker, wake: socket.socket
) -> None:
    """The descriptor under paho's socket is closed (a stray close elsewhere in the process):
    select() refuses it and the link reports "socket error" instead of raising, and closing
    the socket object afterwards (EBADF) does not raise either."""
    rec = Recorder()
    link = connected(broker, wake, rec)
    assert link._client is not None
    sock = link._client.socket()
    assert sock is not None
    os.close(sock.fileno())  # nothing opens a descriptor before the link closes the socket
    link.poll(wake, 0.01)
    assert rec.downs == ["socket error"]
    assert not link.up


def test_a_publish_larger_than_the_socket_buffer_is_written_out_by_poll(
    broker: Broker, wake: socket.socket
) -> None:
    """4 MiB does not fit the socket's send buffer in one write: poll must wait for write
    readiness and go on writing until the broker acknowledges it."""
    rec = Recorder()
    link = connected(broker, wake, rec)
    assert link._client is not None
    link._client.socket().setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 16384)  # type: ignore[union-attr]
    mid = link.publish("fleet/v1/t/gw-link/telemetry", b"x" * (4 << 20))
    assert mid is not None
    assert link._client.want_write()  # the rest waits for the socket
    poll_until(link, wake, lambda: (mid, True) in rec.acks)


def test_subscriptions_are_granted_qos_1(tmp_path: Path, wake: socket.socket) -> None:
    """The broker sends the link's commands at QoS 1 (it waits for the PUBACK), read from the
    broker's own log: the link subscribes with QoS 1, not 0 or 2."""
    broker = Broker(workdir=tmp_path / "mosquitto", extra_conf="log_type all\n").start()
    try:
        rec = Recorder()
        link = connected(broker, wake, rec)
        link.subscribe("fleet/v1/t/gw-link/cmd")
        pub = paho.Client(CallbackAPIVersion.VERSION2, client_id="commander")
        pub.connect("127.0.0.1", broker.port)
        pub.loop_start()
        try:
            deadline = time.monotonic() + WAIT_S
            while not rec.messages:
                assert time.monotonic() < deadline, "no command"
                pub.publish("fleet/v1/t/gw-link/cmd", b"ping", qos=2).wait_for_publish(5)
                poll_until_or(link, wake, lambda: bool(rec.messages), 1.0)
        finally:
            pub.disconnect()
            pub.loop_stop()
        log = broker.log_text()
        assert "gw-link 1 fleet/v1/t/gw-link/cmd" in log, log[-2000:]  # granted QoS 1
        assert "Sending PUBLISH to gw-link (d0, q1" in log
    finally:
        broker.stop()


def poll_until_or(link: Link, wake: socket.socket, done: object, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not done() and time.monotonic() < deadline:  # type: ignore[operator]
        link.poll(wake, 0.05)


def _coalescing_tls_broker(
    pki: Pki, ready: threading.Event, stop: threading.Event, port_out: list[int]
) -> None:
    """A stand-in broker (Mosquitto writes one TLS record per MQTT packet, so it cannot show
    this): it answers CONNECT with CONNACK and a PUBLISH in one write, so both arrive in one
    TLS record, and keeps the connection open (no EOF to wake a select())."""
    cert, key = pki.issue("coalescing-broker", server=True)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port_out.append(listener.getsockname()[1])
        ready.set()
        raw, _ = listener.accept()
        with ctx.wrap_socket(raw, server_side=True) as conn:
            conn.recv(4096)  # the CONNECT
            topic, payload = b"fleet/v1/t/gw-link/cmd", b"ping"
            body = struct.pack("!H", len(topic)) + topic + payload
            conn.sendall(b"\x20\x02\x00\x00" + bytes([0x30, len(body)]) + body)
            stop.wait(30)


def test_bytes_tls_already_decrypted_are_read_without_waiting(
    tmp_path: Path, wake: socket.socket
) -> None:
    """A PUBLISH that came in the same TLS record as the CONNACK sits in the TLS layer, where
    select() cannot see it: the next poll reads it at once instead of waiting its timeout."""
    pki = Pki.create(tmp_path / "pki")
    ready, stop = threading.Event(), threading.Event()
    port: list[int] = []
    server = threading.Thread(
        target=_coalescing_tls_broker, args=(pki, ready, stop, port), daemon=True
    )
    server.start()
    try:
        assert ready.wait(10)
        url = BrokerUrl("127.0.0.1", port[0], True)
        rec = Recorder()
        link = make_link(url, rec, tls=TlsConfig(ca_file=pki.ca_cert))
        assert link.open(url) is None
        poll_until(link, wake, lambda: link.up)  # that poll read the CONNACK, one packet
        assert rec.messages == []
        start = time.monotonic()
        link.poll(wake, 5.0)
        waited = time.monotonic() - start
        assert rec.messages == [("fleet/v1/t/gw-link/cmd", b"ping")]
        assert waited < 0.9, waited  # not select()'s timeout (5 s, nor 1 s): nothing to wait for
        link.close(clean=False)
    finally:
        stop.set()
        server.join(10)


def test_the_will_is_kept_retained_at_qos_1_with_its_payload(
    broker: Broker, wake: socket.socket
) -> None:
    """After an unclean drop the broker keeps the will as the topic's retained message: a
    client that subscribes later (at QoS 2, so it gets the will's own QoS) receives exactly the
    will's payload, retained, at QoS 1."""
    link = connected(broker, wake, Recorder())
    link.close(clean=False)
    got: list[paho.MQTTMessage] = []
    sub = paho.Client(CallbackAPIVersion.VERSION2, client_id="late-subscriber")
    sub.on_message = lambda _c, _u, message: got.append(message)
    sub.connect("127.0.0.1", broker.port)
    sub.loop_start()
    try:
        deadline = time.monotonic() + WAIT_S
        # a subscription made before the broker published the will gets it live (not retained):
        # subscribe again until a retained copy comes
        while not (kept := [m for m in got if m.retain]):
            assert time.monotonic() < deadline, "no retained will"
            sub.subscribe(WILL_TOPIC, qos=2)
            time.sleep(0.2)
        assert (kept[0].payload, kept[0].qos) == (b"offline", 1)
    finally:
        sub.disconnect()
        sub.loop_stop()


def test_opening_again_drops_the_old_connection_uncleanly(
    broker: Broker, wake: socket.socket
) -> None:
    """``open`` while up drops the old connection without DISCONNECT: the broker publishes
    the old connection's will, so nobody takes a gateway that moved on for a clean goodbye."""
    sink = Sink(broker).start()
    try:
        rec = Recorder()
        link = connected(broker, wake, rec)
        assert link.open(plain(broker)) is None
        poll_until(link, wake, lambda: link.up)
        deadline = time.monotonic() + WAIT_S
        while not [m for t, m in sink.messages if t == WILL_TOPIC]:
            assert time.monotonic() < deadline, "no will: the old connection said DISCONNECT"
            time.sleep(0.05)
        link.close(clean=True)
    finally:
        sink.stop()


@pytest.mark.parametrize(("protocol", "level"), [("3.1.1", "p2"), ("5", "p5")])
def test_connect_flags_as_the_broker_logs_them(
    tmp_path: Path, wake: socket.socket, protocol: str, level: str
) -> None:
    """Read from the broker's log: the protocol asked for, a clean start (c1) and the
    configured keep-alive (k7), for MQTT 3.1.1 and MQTT 5."""
    broker = Broker(workdir=tmp_path / "mosquitto", extra_conf="log_type all\n").start()
    try:
        url = plain(broker)
        config = BrokerConfig(urls=(url,), connect_timeout_s=10.0, keepalive_s=7, protocol=protocol)  # type: ignore[arg-type]
        link = Link(config, "gw-link", Will(WILL_TOPIC, b"offline"), Recorder())
        assert link.open(url) is None
        poll_until(link, wake, lambda: link.up)
        assert f"as gw-link ({level}, c1, k7)" in broker.log_text(), broker.log_text()[-1500:]
        link.close(clean=True)
    finally:
        broker.stop()


def test_a_named_user_connects_with_its_password(tmp_path: Path, wake: socket.socket) -> None:
    """The broker takes user ``gw`` only with its password; the link sends both (a publish
    only that user may make is acknowledged)."""
    broker = guarded_broker(tmp_path / "guarded")
    try:
        url = plain(broker)
        rec = Recorder()
        config = BrokerConfig(
            urls=(url,), username="gw", password="right", connect_timeout_s=10.0, keepalive_s=30
        )
        link = Link(config, "gw-link", Will(WILL_TOPIC, b"offline"), rec)
        comes_up(link, url, wake, rec)
        mid = link.publish("fleet/v1/other/gw-9/telemetry", b"x")  # outside the anonymous ACL
        poll_until(link, wake, lambda: any(m == mid for m, _ in rec.acks))
        assert (mid, True) in rec.acks
        link.close(clean=True)
    finally:
        broker.stop()


def test_a_client_certificate_is_presented_when_the_broker_requires_one(
    tmp_path: Path, wake: socket.socket
) -> None:
    pki = Pki.create(tmp_path / "pki")
    broker = tls_broker(tmp_path, pki, pki.issue("b", server=True), require_certificate=True)
    try:
        cert, key = pki.issue("gw-link")
        url = BrokerUrl("127.0.0.1", broker.port, True)
        rec = Recorder()
        tls = TlsConfig(ca_file=pki.ca_cert, cert_file=cert, key_file=key)
        link = make_link(url, rec, tls=tls)
        comes_up(link, url, wake, rec)
        link.close(clean=True)
    finally:
        broker.stop()


def test_without_a_ca_file_the_systems_trust_store_decides(
    tmp_path: Path, wake: socket.socket
) -> None:
    """No ``tls.ca_file``: the system's trust store, which does not know this test's CA, so
    the broker is refused with the verification error, never connected to."""
    pki = Pki.create(tmp_path / "pki")
    broker = tls_broker(tmp_path, pki, pki.issue("b", server=True))
    try:
        url = BrokerUrl("127.0.0.1", broker.port, True)
        rec = Recorder()
        link = make_link(url, rec, tls=TlsConfig())
        error = link.open(url)
        assert error is not None and "CERTIFICATE_VERIFY_FAILED" in error, error
        assert not link.up and not link.connecting and rec.ups == 0
    finally:
        broker.stop()
