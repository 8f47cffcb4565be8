"""The agent's MQTT link in-process against a real Mosquitto: connect, QoS 1 publishes and
their PUBACKs, subscriptions, the will on an unclean drop, TLS verification, refusals and
the CONNACK timeout. (The end-to-end tests run the agent as a subprocess; these drive the
``Link`` directly, so each of its decisions is checked on its own.)"""

from __future__ import annotations

import logging
import socket
import threading
import time
from pathlib import Path

import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.reasoncodes import ReasonCode

from agent.config_types import BrokerConfig, BrokerUrl, TlsConfig
from agent.mqtt import Link, Will, _reason_text, backoff_delay
from tests.support.agent import Sink
from tests.support.mosquitto import Broker
from tests.support.mqtt_link import (
    WAIT_S,
    Recorder,
    connected,
    guarded_broker,
    make_link,
    plain,
    poll_until,
    tls_broker,
)
from tests.support.pki import Pki
from tests.support.services import free_port


def test_backoff_doubles_from_low_to_high_scaled_by_jitter() -> None:
    assert [backoff_delay(n, 1.0, 60.0, 1.0) for n in (0, 1, 2, 3, 7, 8)] == [
        1.0, 1.0, 2.0, 4.0, 60.0, 60.0,
    ]  # fmt: skip
    assert backoff_delay(3, 1.0, 60.0, 0.0) == 2.0  # half of 4 s at the lowest jitter
    assert backoff_delay(1, 1.0, 60.0, 0.0) == 1.0  # never below low
    assert backoff_delay(4, 1.0, 60.0, 0.5) == 6.0


def test_connect_publish_ack_subscribe_and_clean_close(broker: Broker, wake: socket.socket) -> None:
    sink = Sink(broker).start()
    try:
        rec = Recorder()
        link = make_link(plain(broker), rec)
        assert not link.up and not link.connecting
        assert link.publish("fleet/v1/t/gw-link/x", b"early") is None  # not connected yet
        assert link.open(plain(broker)) is None
        assert link.connecting
        poll_until(link, wake, lambda: link.up)
        assert rec.ups == 1 and not link.connecting
        link.subscribe("fleet/v1/t/gw-link/cmd")
        mid = link.publish("fleet/v1/t/gw-link/telemetry", b"one")
        assert isinstance(mid, int)
        poll_until(link, wake, lambda: (mid, True) in rec.acks)
        sink.publish("fleet/v1/t/gw-link/cmd", b"do")
        poll_until(link, wake, lambda: rec.messages == [("fleet/v1/t/gw-link/cmd", b"do")])
        link.close(clean=True)
        assert not link.up and rec.downs == []  # a close is not a drop
        assert link.publish("fleet/v1/t/gw-link/x", b"late") is None
        sink.sync()  # a will wrongly sent on this clean close would be in by now
        assert [t for t, _ in sink.messages if t.endswith("/state")] == []
    finally:
        sink.stop()


def test_an_unclean_drop_leaves_the_will(broker: Broker, wake: socket.socket) -> None:
    sink = Sink(broker).start()
    try:
        rec = Recorder()
        link = make_link(plain(broker), rec)
        assert link.open(plain(broker)) is None
        poll_until(link, wake, lambda: link.up)
        link.close(clean=False)
        deadline = time.monotonic() + WAIT_S
        while not [m for t, m in sink.messages if t == "fleet/v1/t/gw-link/state"]:
            assert time.monotonic() < deadline, "no will"
            time.sleep(0.05)
    finally:
        sink.stop()


def test_a_broker_going_away_is_reported_once(broker: Broker, wake: socket.socket) -> None:
    rec = Recorder()
    link = make_link(plain(broker), rec)
    assert link.open(plain(broker)) is None
    poll_until(link, wake, lambda: link.up)
    broker.stop()
    poll_until(link, wake, lambda: bool(rec.downs))
    assert rec.downs == ["Unspecified error"]  # paho's name for a connection lost
    assert not link.up and not link.connecting
    link.poll(wake, 0.01)
    assert len(rec.downs) == 1


def test_a_closed_port_is_an_error_from_open(wake: socket.socket) -> None:
    rec = Recorder()
    url = BrokerUrl("127.0.0.1", free_port(), False)
    reason = make_link(url, rec).open(url)
    assert reason is not None
    assert reason.startswith(f"{url}: ConnectionRefusedError")
    assert rec.ups == 0 and rec.downs == []


def test_no_connack_in_time(wake: socket.socket) -> None:
    """A listener that accepts TCP and never answers: the link gives up after its timeout."""
    server = socket.create_server(("127.0.0.1", 0))
    url = BrokerUrl("127.0.0.1", server.getsockname()[1], False)
    accepted: list[socket.socket] = []
    threading.Thread(target=lambda: accepted.append(server.accept()[0]), daemon=True).start()
    try:
        rec = Recorder()
        link = make_link(url, rec, timeout=0.5)
        assert link.open(url) is None
        poll_until(link, wake, lambda: bool(rec.downs))
        assert rec.downs == ["no CONNACK in time"]
        assert rec.ups == 0 and not link.connecting
    finally:
        for conn in accepted:
            conn.close()
        server.close()


# -- TLS ------------------------------------------------------------------------------------


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return Pki.create(tmp_path / "pki")


@pytest.mark.parametrize("case", ["wrong-host", "unknown-ca"])
def test_tls_refuses_a_broker_it_cannot_verify(
    tmp_path: Path, pki: Pki, wake: socket.socket, case: str
) -> None:
    if case == "wrong-host":
        issuer, cert = pki, pki.issue("b", server=True, hosts="DNS:elsewhere.invalid")
    else:
        issuer = Pki.create(tmp_path / "rogue", "rogue-ca")
        cert = issuer.issue("b", server=True)
    broker = tls_broker(tmp_path, issuer, cert)
    try:
        url = BrokerUrl("127.0.0.1", broker.port, True)
        rec = Recorder()
        reason = make_link(url, rec, tls=TlsConfig(ca_file=pki.ca_cert)).open(url)
        assert reason is not None and "CERTIFICATE_VERIFY_FAILED" in reason, reason
        assert rec.ups == 0
    finally:
        broker.stop()


def test_tls_connects_to_a_broker_it_trusts(tmp_path: Path, pki: Pki, wake: socket.socket) -> None:
    broker = tls_broker(tmp_path, pki, pki.issue("b", server=True))
    try:
        url = BrokerUrl("127.0.0.1", broker.port, True)
        rec = Recorder()
        link = make_link(url, rec, tls=TlsConfig(ca_file=pki.ca_cert))
        assert link.open(url) is None
        poll_until(link, wake, lambda: link.up)
        mid = link.publish("fleet/v1/t/gw-link/telemetry", b"x")
        poll_until(link, wake, lambda: (mid, True) in rec.acks)
        link.close(clean=True)
    finally:
        broker.stop()


# -- flush and the rest ----------------------------------------------------------------------


def test_flush_returns_once_what_it_waits_for_is_done(broker: Broker, wake: socket.socket) -> None:
    rec = Recorder()
    link = connected(broker, wake, rec)
    mid = link.publish("fleet/v1/t/gw-link/telemetry", b"one")
    start = time.monotonic()
    link.flush(wake, lambda: (mid, True) in rec.acks, 0.9)  # under a second: still waits
    assert (mid, True) in rec.acks
    assert time.monotonic() - start < 0.9
    link.close(clean=True)


def test_flush_polls_in_short_slices_and_gives_up_at_its_timeout(
    broker: Broker, wake: socket.socket
) -> None:
    rec = Recorder()
    link = connected(broker, wake, rec)
    start = time.monotonic()
    link.flush(wake, lambda: time.monotonic() - start > 0.1, 5.0)  # done without any traffic
    assert time.monotonic() - start < 1.0
    start = time.monotonic()
    link.flush(wake, lambda: False, 0.3)
    assert 0.3 <= time.monotonic() - start < 2.0
    link.close(clean=True)
    start = time.monotonic()
    link.flush(wake, lambda: False, 5.0)  # the link is down: nothing to wait for
    assert time.monotonic() - start < 0.5


def test_a_retained_message_is_passed_on_as_retained(broker: Broker, wake: socket.socket) -> None:
    sink = Sink(broker).start()
    try:
        sink.publish("fleet/v1/t/gw-link/cmd", b"kept", retain=True)
        rec = Recorder()
        link = connected(broker, wake, rec)
        link.subscribe("fleet/v1/t/gw-link/cmd")
        poll_until(link, wake, lambda: bool(rec.messages))
        assert (rec.messages, rec.retained) == ([("fleet/v1/t/gw-link/cmd", b"kept")], [True])
        sink.publish("fleet/v1/t/gw-link/cmd", b"live")
        poll_until(link, wake, lambda: len(rec.messages) == 2)
        assert rec.retained == [True, False]
        link.close(clean=True)
        sink.publish("fleet/v1/t/gw-link/cmd", b"", retain=True)  # clear it for the next test
    finally:
        sink.stop()


def test_reasons_are_named() -> None:
    assert _reason_text(ReasonCode(PacketTypes.CONNACK, identifier=135)) == "Not authorized"
    assert _reason_text(7) == "7"


def test_a_publish_the_broker_refuses_is_acked_as_failed(
    tmp_path: Path, wake: socket.socket
) -> None:
    broker = guarded_broker(tmp_path / "guarded")
    try:
        rec = Recorder()
        config = BrokerConfig(urls=(plain(broker),), protocol="5", keepalive_s=30)
        link = Link(config, "gw-link", Will("fleet/v1/t/gw-link/state", b"offline"), rec)
        assert link.open(plain(broker)) is None
        poll_until(link, wake, lambda: link.up)
        allowed = link.publish("fleet/v1/t/gw-link/telemetry", b"ok")
        denied = link.publish("fleet/v1/t/other/telemetry", b"not mine")
        poll_until(link, wake, lambda: len(rec.acks) == 2)
        assert sorted(rec.acks) == sorted([(allowed, True), (denied, False)])
        link.close(clean=True)
    finally:
        broker.stop()


def test_a_refused_connection_is_reported_with_the_brokers_reason(
    tmp_path: Path, wake: socket.socket, caplog: pytest.LogCaptureFixture
) -> None:
    broker = guarded_broker(tmp_path / "guarded")
    try:
        rec = Recorder()
        config = BrokerConfig(
            urls=(plain(broker),), protocol="5", keepalive_s=30, username="gw", password="wrong"
        )
        link = Link(config, "gw-link", Will("fleet/v1/t/gw-link/state", b"offline"), rec)
        assert link.open(plain(broker)) is None
        with caplog.at_level(logging.ERROR, logger="agent.mqtt"):
            poll_until(link, wake, lambda: bool(rec.downs))
        assert rec.downs == ["refused: Not authorized"]
        url = plain(broker)
        assert caplog.messages == [f"broker {url} refused the connection: Not authorized"]
        assert rec.ups == 0 and not link.up and not link.connecting
    finally:
        broker.stop()


def test_a_retained_publish_is_kept_and_a_plain_one_is_not(
    broker: Broker, wake: socket.socket
) -> None:
    rec = Recorder()
    link = connected(broker, wake, rec)
    assert link.publish("fleet/v1/t/gw-link/event", b"plain") is not None
    assert link.publish("fleet/v1/t/gw-link/state", b"online", retain=True) is not None
    poll_until(link, wake, lambda: len(rec.acks) == 2)
    link.close(clean=True)
    late = Recorder()
    other = connected(broker, wake, late)
    other.subscribe("fleet/v1/t/gw-link/#")
    poll_until(other, wake, lambda: bool(late.messages))
    deadline = time.monotonic() + 0.5
    while time.monotonic() < deadline:
        other.poll(wake, 0.05)
    assert late.messages == [("fleet/v1/t/gw-link/state", b"online")]
    assert late.retained == [True]
    other.close(clean=True)


def test_nothing_is_published_while_connecting(broker: Broker, wake: socket.socket) -> None:
    rec = Recorder()
    link = make_link(plain(broker), rec)
    assert link.open(plain(broker)) is None
    assert link.connecting
    assert link.publish("fleet/v1/t/gw-link/telemetry", b"too early") is None
    link.close(clean=False)


def test_poll_waits_for_its_timeout_when_nothing_comes(broker: Broker, wake: socket.socket) -> None:
    rec = Recorder()
    link = make_link(plain(broker), rec)
    for state in ("closed", "idle"):
        if state == "idle":
            link = connected(broker, wake, rec)
        start = time.monotonic()
        link.poll(wake, 0.25)
        assert time.monotonic() - start >= 0.2, state
    link.close(clean=True)


def test_a_second_link_with_the_same_client_id_takes_the_session_over(
    broker: Broker, wake: socket.socket
) -> None:
    first, second = Recorder(), Recorder()
    old = connected(broker, wake, first)
    new = connected(broker, wake, second)  # make_link gives both the id "gw-link"
    poll_until(old, wake, lambda: bool(first.downs))
    assert new.up and second.downs == []
    new.close(clean=True)


def test_every_connection_starts_a_clean_session(broker: Broker, wake: socket.socket) -> None:
    sink = Sink(broker).start()
    try:
        rec = Recorder()
        link = connected(broker, wake, rec)
        link.subscribe("fleet/v1/t/gw-link/cmd")
        sink.sync()
        link.close(clean=True)
        sink.publish("fleet/v1/t/gw-link/cmd", b"while away")  # QoS 1, not retained
        link = connected(broker, wake, rec)
        deadline = time.monotonic() + 0.5
        while time.monotonic() < deadline:
            link.poll(wake, 0.05)
        assert rec.messages == []  # no session kept: nothing queued for us, no subscription
        link.close(clean=True)
    finally:
        sink.stop()


def test_an_idle_link_keeps_itself_alive(tmp_path: Path) -> None:
    """An idle link sends PINGREQs (read from the broker's own log) and stays up."""
    broker = Broker(workdir=tmp_path / "mosquitto", extra_conf="log_type all\n").start()
    a, b = socket.socketpair()
    a.setblocking(False)
    try:
        rec = Recorder()
        config = BrokerConfig(urls=(plain(broker),), connect_timeout_s=10.0, keepalive_s=1)
        link = Link(config, "gw-idle", Will("fleet/v1/t/gw-idle/state", b"offline"), rec)
        assert link.open(plain(broker)) is None
        poll_until(link, a, lambda: link.up)
        poll_until(link, a, lambda: "Received PINGREQ from gw-idle" in broker.log_text())
        poll_until(link, a, lambda: "Sending PINGRESP to gw-idle" in broker.log_text())
        link.poll(a, 0.1)
        assert link.up and rec.downs == []
        b.send(b"!")  # a wake-up ends the wait at once, and is read away
        start = time.monotonic()
        link.poll(a, 30.0)
        assert time.monotonic() - start < 15.0  # woken, not the 30 s timeout
        with pytest.raises(BlockingIOError):
            a.recv(1)  # nothing left to wake the next poll
        link.close(clean=True)
    finally:
        a.close()
        b.close()
        broker.stop()
