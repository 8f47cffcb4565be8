"""MQTT intake: paho-mqtt's network loop driven by the asyncio event loop, batched hand-over.

Why not aiomqtt: draining a QoS 1 backlog, its ``async for`` loop runs at well under half the
rate of a bare paho callback loop (see ``docs/collector.md``), because every message crosses a
queue and a task switch. Here paho parses packets in the event loop's thread: its socket is
registered with ``add_reader``; each readable event runs ``loop_read``; ``on_message`` only
appends ``(topic, payload, arrival time)`` to a list, and the list goes down the pipeline when
it reaches ``max_batch``, when the socket has nothing more to read, or 2 ms later, whichever
comes first. PUBACKs and pings are written with ``loop_write`` right after each read (and by a
writer callback when the socket is full).

Acknowledgement is manual (paho 2 ``manual_ack``): a message is acknowledged only once what it
caused is durable. After a batch went down the pipeline its message ids wait in ``_processed``;
the service's committer takes them (``take_acks``) before it commits the registry rows, fault
events and telemetry those batches produced, and acknowledges them (``ack``) after the commit,
all PUBACKs of a commit in one write. Until then the broker holds them: at most
``max_unacked`` (MQTT 5 Receive Maximum; for 3.1.1 the broker's ``max_inflight_messages``), and
redelivers them to the next session if the collector dies first.

The session is persistent: a fixed client id, QoS 1 subscriptions, MQTT 5 ``clean_start=False``
with a session expiry (or 3.1.1 ``clean_session=False``), so what devices publish while the
collector is down waits in the broker. A broker that refuses MQTT 5 gets 3.1.1 on the next try.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from agent import wire
from collector.config.collector import MetricMapping, MqttConfig
from collector.metrics import Metrics

log = logging.getLogger("fleetdesk.collector.mqtt")

Deliver = Callable[[list[tuple[str, bytes, float]]], None]
Acks = tuple[mqtt.Client | None, list[int]]  # (the connection they belong to, its message ids)

FLUSH_DELAY_S = 0.002
READS_PER_EVENT = 64
UNSUPPORTED_PROTOCOL_V5 = 132


def subscriptions(cfg: MqttConfig, mappings: tuple[MetricMapping, ...]) -> list[str]:
    topics = [wire.subscription(None, tenant) for tenant in cfg.tenants]
    topics += [m.subscription for m in mappings]
    if cfg.shared_group:
        topics = [f"$share/{cfg.shared_group}/{t}" for t in topics]
    return topics


class MqttIntake:
    def __init__(
        self,
        cfg: MqttConfig,
        mappings: tuple[MetricMapping, ...],
        deliver: Deliver,
        metrics: Metrics,
        *,
        on_batch: Callable[[], None] | None = None,
        topics: list[str] | None = None,
    ) -> None:
        """``topics``: these subscriptions instead of the config's (a partition's devices)."""
        self.cfg = cfg
        self.topics = subscriptions(cfg, mappings) if topics is None else topics
        self.deliver = deliver
        self.metrics = metrics
        self.protocol = cfg.protocol
        self.connected = False
        # True once the broker has acknowledged every subscription (SUBACK), not at CONNACK:
        # until then a message published to the topics may not reach this session.
        self.subscribed = False
        self._sub_mid: int | None = None
        self.client: mqtt.Client | None = None
        self._batch: list[tuple[str, bytes, float]] = []
        self._flush_handle: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread = 0
        self._down = asyncio.Event()
        self._up = asyncio.Event()
        self._sock: Any = None
        self._writing = False
        self._received = 0
        self._mids: list[int] = []  # of the batch being gathered
        self._processed: list[int] = []  # through the pipeline, waiting for the next commit
        self.on_batch = on_batch
        # before a clean disconnect: the last commit, so its acks still reach the broker
        self.before_disconnect: Callable[[], Awaitable[None]] | None = None

    # ------------------------------------------------------------------ public

    def publish(self, topic: str, payload: bytes) -> None:
        """Best-effort QoS 0 publish (dead letters); dropped while disconnected."""
        if self.client is not None and self.connected:
            self.client.publish(topic, payload, qos=0)
            self._write(self.client)

    def take_acks(self) -> Acks:
        """The ids of the messages whose batches went down the pipeline (event loop thread)."""
        mids, self._processed = self._processed, []
        return self.client, mids

    def ack(self, acks: Acks) -> None:
        """Acknowledge after their effects were committed; ids of a connection that is gone
        are not sent (the broker redelivers those, and dedup drops the repeats)."""
        client, mids = acks
        if not mids:
            return
        if client is not None and client is self.client and self.connected:
            for mid in mids:
                client.ack(mid, 1)
            self._write(client)
        self.metrics.unacked.dec(len(mids))

    def pause(self) -> None:
        """Read no more (the drain): what the broker still sends waits for the next session."""
        if self._sock is not None and self._loop is not None:
            self._loop.remove_reader(self._sock)

    async def run(self, stop: asyncio.Event) -> None:
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        backoff = 0.2
        while not stop.is_set():
            client = self._new_client()
            self._down.clear()
            self._up.clear()
            try:
                await self._connect(client)
            except (OSError, ssl.SSLError, ValueError) as exc:
                self.metrics.mqtt_connects.labels("error").inc()
                log.warning("cannot connect to mqtt %s:%d: %s", self.cfg.host, self.cfg.port, exc)
                await _wait(stop, backoff)
                backoff = min(backoff * 2, self.cfg.reconnect_max_s)
                continue
            self.client = client
            misc = asyncio.create_task(self._misc(client), name="mqtt-misc")
            stopped = asyncio.create_task(stop.wait(), name="mqtt-stop")
            down = asyncio.create_task(self._down.wait(), name="mqtt-down")
            await asyncio.wait({stopped, down}, return_when=asyncio.FIRST_COMPLETED)
            stopped.cancel()
            down.cancel()
            if stop.is_set() and not self._down.is_set():
                self.pause()
                self._flush()
                if self.before_disconnect is not None:
                    await self.before_disconnect()
                await self._disconnect(client)
            misc.cancel()
            await asyncio.gather(misc, return_exceptions=True)
            self._flush()
            self._drop_socket()
            self.metrics.unacked.dec(len(self._processed))
            self._processed = []  # their connection is gone: the broker sends them again
            self.connected = self.subscribed = False
            self.metrics.mqtt_connected.set(0)
            self.client = None
            if self._up.is_set():
                backoff = 0.2
            if not stop.is_set():
                log.warning("mqtt connection lost; reconnecting")
                await _wait(stop, backoff)
                backoff = min(backoff * 2, self.cfg.reconnect_max_s)

    # ------------------------------------------------------------------ connection

    def _new_client(self) -> mqtt.Client:
        v5 = self.protocol == "5"
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=self.cfg.client_id,
            protocol=mqtt.MQTTv5 if v5 else mqtt.MQTTv311,
            clean_session=None if v5 else False,
            manual_ack=True,
        )
        client.max_queued_messages_set(0)
        # PUBACKs are queued, not written one by one: _write sends a commit's acks at once
        client.on_socket_register_write = _no_op
        if self.cfg.username is not None:
            client.username_pw_set(self.cfg.username, self.cfg.password)
        tls = self.cfg.tls
        if tls is not None:
            client.tls_set(
                ca_certs=str(tls.ca_file) if tls.ca_file else None,
                certfile=str(tls.cert_file) if tls.cert_file else None,
                keyfile=str(tls.key_file) if tls.key_file else None,
            )
            if tls.insecure:
                client.tls_insecure_set(True)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_subscribe = self._on_subscribe
        client.on_socket_open = self._on_socket_open
        client.on_socket_close = self._on_socket_close
        return client

    async def _connect(self, client: mqtt.Client) -> None:
        kwargs: dict[str, Any] = {}
        if self.protocol == "5":
            props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            props.SessionExpiryInterval = self.cfg.session_expiry_s
            props.ReceiveMaximum = self.cfg.max_unacked
            kwargs = {"clean_start": False, "properties": props}
        # connect() does DNS, TCP and TLS: off the event loop. Socket callbacks hop back.
        await asyncio.to_thread(
            client.connect, self.cfg.host, self.cfg.port, self.cfg.keepalive_s, **kwargs
        )

    async def _disconnect(self, client: mqtt.Client) -> None:
        client.disconnect()
        self._write(client)
        try:
            await asyncio.wait_for(self._down.wait(), timeout=2.0)
        except TimeoutError:
            log.warning("mqtt disconnect not acknowledged; closing")

    async def _misc(self, client: mqtt.Client) -> None:
        while True:
            await asyncio.sleep(1.0)
            if client.loop_misc() != MQTTErrorCode.MQTT_ERR_SUCCESS:
                self._down.set()
                return
            self._write(client)

    # ------------------------------------------------------------------ paho callbacks

    def _in_loop(self, fn: Callable[[], None]) -> None:
        assert self._loop is not None
        if threading.get_ident() == self._loop_thread:
            fn()
        else:
            self._loop.call_soon_threadsafe(fn)

    def _on_socket_open(self, client: mqtt.Client, _userdata: Any, sock: Any) -> None:
        def register() -> None:
            assert self._loop is not None
            self._sock = sock
            self._loop.add_reader(sock, self._readable, client)

        self._in_loop(register)

    def _on_socket_close(self, _client: mqtt.Client, _userdata: Any, _sock: Any) -> None:
        self._in_loop(self._drop_socket)

    def _drop_socket(self) -> None:
        if self._sock is not None and self._loop is not None:
            self._loop.remove_reader(self._sock)
            self._loop.remove_writer(self._sock)
            self._sock = None
            self._writing = False

    def _readable(self, client: mqtt.Client) -> None:
        # loop_read() parses one packet. While packets keep yielding messages, read on (up to
        # READS_PER_EVENT) instead of going back through epoll for each: a backlog drains
        # faster, and the first read that yields none (EAGAIN, or a non-PUBLISH packet) stops.
        drained = False
        for _ in range(READS_PER_EVENT):
            before = self._received
            if client.loop_read() != MQTTErrorCode.MQTT_ERR_SUCCESS:
                self._down.set()
                return
            if self._received == before:
                drained = True
                break
        if drained and self._batch:
            # Nothing more to read now: holding the batch for FLUSH_DELAY_S gathers nothing in
            # live traffic and only delays a fault (a backlog, read 64 at a time, still waits).
            self._flush()
        self._write(client)

    def _write(self, client: mqtt.Client) -> None:
        if not client.want_write():
            return
        client.loop_write()
        if client.want_write() and not self._writing and self._sock is not None:
            assert self._loop is not None
            self._writing = True
            self._loop.add_writer(self._sock, self._writable, client)

    def _writable(self, client: mqtt.Client) -> None:
        client.loop_write()
        if not client.want_write() and self._sock is not None:
            assert self._loop is not None
            self._loop.remove_writer(self._sock)
            self._writing = False

    def _on_connect(
        self, client: mqtt.Client, _u: Any, flags: Any, reason: Any, _props: Any
    ) -> None:
        if reason.is_failure:
            self.metrics.mqtt_connects.labels("refused").inc()
            log.error("mqtt broker refused the connection: %s", reason)
            if self.protocol == "5" and reason.value == UNSUPPORTED_PROTOCOL_V5:
                log.warning("broker does not speak MQTT 5; falling back to 3.1.1")
                self.protocol = "3.1.1"
            self._in_loop(self._down.set)
            return
        self.metrics.mqtt_connects.labels("ok").inc()
        self.connected = True
        self.metrics.mqtt_connected.set(1)
        present = bool(getattr(flags, "session_present", False))
        log.info(
            "connected to mqtt %s:%d (MQTT %s, session %s %s)",
            self.cfg.host,
            self.cfg.port,
            self.protocol,
            self.cfg.client_id,
            "resumed" if present else "new",
        )
        self.subscribed = False
        _, self._sub_mid = client.subscribe([(topic, 1) for topic in self.topics])
        self._in_loop(self._up.set)

    def _on_subscribe(
        self, _c: mqtt.Client, _u: Any, mid: int, reasons: list[Any], _props: Any
    ) -> None:
        if mid != self._sub_mid:
            return
        refused = [t for t, r in zip(self.topics, reasons, strict=False) if r.is_failure]
        if refused:
            log.error("mqtt broker refused the subscriptions %s", ", ".join(refused))
            return
        self.subscribed = True
        log.info("subscribed to %d mqtt topics (%s)", len(self.topics), self.cfg.client_id)

    def _on_disconnect(self, _c: mqtt.Client, _u: Any, _flags: Any, reason: Any, _p: Any) -> None:
        self.connected = self.subscribed = False
        self._in_loop(self._down.set)

    def _on_message(self, _client: mqtt.Client, _u: Any, message: mqtt.MQTTMessage) -> None:
        self._received += 1
        batch = self._batch
        batch.append((message.topic, bytes(message.payload), time.time()))
        if message.qos:
            self._mids.append(message.mid)
        if len(batch) >= self.cfg.max_batch:
            self._flush()
        elif self._flush_handle is None and self._loop is not None:
            self._flush_handle = self._loop.call_later(FLUSH_DELAY_S, self._flush)

    def _flush(self) -> None:
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        if not self._batch:
            return
        batch, self._batch = self._batch, []
        mids, self._mids = self._mids, []
        try:
            self.deliver(batch)
        except Exception:  # a bug in a stage must not stop the intake
            self.metrics.messages.labels("failed").inc(len(batch))
            log.exception("pipeline failed on a batch of %d messages", len(batch))
        # acknowledged after the next commit (a failed batch too: redelivering it would fail
        # the same way, for ever)
        self._processed += mids
        self.metrics.unacked.inc(len(mids))
        if self.on_batch is not None:
            self.on_batch()


def _no_op(*_args: Any) -> None:
    pass


async def _wait(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)
