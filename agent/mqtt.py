"""One MQTT connection at a time, driven by the agent's own select loop.

A fresh paho client is made for every connection: paho would otherwise re-send its own queue
of unacknowledged publishes after a reconnect, beside the spool's replay. The agent keeps the
spool as the only source of truth and tracks each publish by its message id.
"""

from __future__ import annotations

import contextlib
import logging
import select
import socket
import ssl
import time
from typing import Any, NamedTuple, Protocol

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.reasoncodes import ReasonCode

from agent.config_types import BrokerConfig, BrokerUrl

log = logging.getLogger(__name__)


class LinkEvents(Protocol):
    """What the link reports back; called from inside ``Link.poll`` on the agent's thread."""

    def link_up(self) -> None: ...

    def link_down(self, reason: str) -> None: ...

    def acked(self, mid: int, ok: bool) -> None: ...

    def message(self, topic: str, payload: bytes, retained: bool) -> None: ...


def backoff_delay(failures: int, low: float, high: float, jitter: float) -> float:
    """Exponential back-off: ``low * 2**(failures-1)`` capped at ``high``, scaled by a jitter
    factor in [0.5, 1] so a fleet that lost the same broker does not return in step."""
    base = min(high, low * 2.0 ** max(0, failures - 1))
    return max(low, base * (0.5 + 0.5 * jitter))


class Will(NamedTuple):
    topic: str
    payload: bytes


def _reason_text(reason: Any) -> str:
    if isinstance(reason, ReasonCode):
        return str(reason.getName())
    return str(reason)


class Link:
    def __init__(self, broker: BrokerConfig, client_id: str, will: Will, events: LinkEvents):
        self.broker, self.client_id, self.will, self.events = broker, client_id, will, events
        self._client: paho.Client | None = None
        self._up = False
        self._opened_at = 0.0
        self.url: BrokerUrl | None = None
        self._last_error = ""  # paho's last error log line: says why a socket failed

    @property
    def up(self) -> bool:
        return self._up

    @property
    def connecting(self) -> bool:
        return self._client is not None and not self._up

    # ------------------------------------------------------------------ connecting

    def _make_client(self, url: BrokerUrl) -> paho.Client:
        v5 = self.broker.protocol == "5"
        client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=self.client_id,
            protocol=paho.MQTTv5 if v5 else paho.MQTTv311,
            clean_session=None if v5 else True,
        )
        client.connect_timeout = self.broker.connect_timeout_s
        client.max_inflight_messages_set(65535)  # the agent bounds what it has in flight
        client.max_queued_messages_set(0)
        client.will_set(self.will.topic, self.will.payload, qos=1, retain=True)
        if self.broker.username is not None:
            client.username_pw_set(self.broker.username, self.broker.password)
        if url.tls:
            tls = self.broker.tls
            client.tls_set(
                ca_certs=str(tls.ca_file) if tls.ca_file else None,
                certfile=str(tls.cert_file) if tls.cert_file else None,
                keyfile=str(tls.key_file) if tls.key_file else None,
                cert_reqs=ssl.CERT_REQUIRED,
            )
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        client.on_message = self._on_message
        client.on_log = self._on_log
        return client

    def open(self, url: BrokerUrl) -> str | None:
        """Start connecting (TCP, TLS, CONNECT); None on success, else why it failed.

        ``link_up`` follows when the CONNACK arrives during ``poll``.
        """
        self.close(clean=False)
        self.url = url
        client = self._make_client(url)
        try:
            if self.broker.protocol == "5":
                client.connect(url.host, url.port, self.broker.keepalive_s, clean_start=True)
            else:
                client.connect(url.host, url.port, self.broker.keepalive_s)
        except (OSError, ssl.SSLError, ValueError) as exc:
            return f"{url}: {exc.__class__.__name__}: {exc}"
        self._client = client
        self._opened_at = time.monotonic()
        return None

    def close(self, *, clean: bool) -> None:
        """Drop the connection; ``clean`` sends DISCONNECT first (the broker then keeps the
        will to itself)."""
        client, self._client = self._client, None
        was_up, self._up = self._up, False
        if client is None:
            return
        client.on_disconnect = None
        if clean and was_up:
            client.disconnect()
            client.loop_write()
        sock = client.socket()
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.close()

    # ------------------------------------------------------------------ paho callbacks

    def _on_connect(self, client: paho.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        if getattr(reason, "is_failure", False):
            log.error("broker %s refused the connection: %s", self.url, _reason_text(reason))
            self._fail(f"refused: {_reason_text(reason)}")
            return
        self._up = True
        self.events.link_up()

    def _on_disconnect(self, client: paho.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        if self._client is not client:  # inside open(): poll() reports it next
            self._last_error = self._last_error or _reason_text(reason)
            return
        self._fail(_reason_text(reason))

    def _on_publish(self, client: paho.Client, _u: Any, mid: int, reason: Any, _p: Any) -> None:
        self.events.acked(mid, not getattr(reason, "is_failure", False))

    def _on_log(self, client: paho.Client, _u: Any, level: int, text: str) -> None:
        if level == paho.MQTT_LOG_ERR:
            self._last_error = text

    def _on_message(self, client: paho.Client, _u: Any, message: paho.MQTTMessage) -> None:
        self.events.message(message.topic, bytes(message.payload), bool(message.retain))

    def _fail(self, reason: str) -> None:
        if self._last_error:
            reason, self._last_error = f"{reason} ({self._last_error})", ""
        was_connected = self._client is not None
        self.close(clean=False)
        if was_connected:
            self.events.link_down(reason)

    # ------------------------------------------------------------------ traffic

    def publish(self, topic: str, payload: bytes, *, retain: bool = False) -> int | None:
        """Queue a QoS 1 publish; its message id, or None when the link is down."""
        if self._client is None or not self._up:
            return None
        info = self._client.publish(topic, payload, qos=1, retain=retain)
        if info.rc not in (MQTTErrorCode.MQTT_ERR_SUCCESS,):
            return None
        return int(info.mid)

    def subscribe(self, topic: str) -> None:
        if self._client is not None:
            self._client.subscribe(topic, qos=1)

    def poll(self, wake: socket.socket, timeout: float) -> None:
        """Wait for the socket, the wake-up socket or the timeout; then let paho work."""
        client = self._client
        sock = client.socket() if client is not None else None
        rlist: list[Any] = [wake]
        wlist: list[Any] = []
        pending = 0
        if client is not None and sock is None:  # paho closed it without telling
            self._fail("connection closed")
            return
        if client is not None and sock is not None:
            rlist.append(sock)
            if client.want_write():
                wlist.append(sock)
            pending = sock.pending() if isinstance(sock, ssl.SSLSocket) else 0
            if (
                self.connecting
                and time.monotonic() - self._opened_at > self.broker.connect_timeout_s
            ):
                self._fail("no CONNACK in time")
                return
        try:
            readable, _writable, _ = select.select(rlist, wlist, [], 0 if pending else timeout)
        except (OSError, ValueError):
            self._fail("socket error")
            return
        if wake in readable:
            with contextlib.suppress(BlockingIOError):
                wake.recv(4096)
        if client is None or sock is None:
            return
        if sock in readable or pending:
            client.loop_read()
        if self._client is client and client.socket() is not None and client.want_write():
            client.loop_write()
        if self._client is client and client.socket() is not None:
            client.loop_misc()  # keep-alive; a dead broker ends in _on_disconnect

    def flush(self, wake: socket.socket, done: Any, timeout: float) -> None:
        """Poll until ``done()`` is true, the link drops or ``timeout`` passes."""
        deadline = time.monotonic() + timeout
        while self._up and not done() and (left := deadline - time.monotonic()) > 0:
            self.poll(wake, min(left, 0.05))
