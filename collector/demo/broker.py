"""The embedded broker: a small MQTT 3.1.1 broker for machines without Mosquitto.

Why our own and not amqtt: the demo needs only what its agents and the collector use (QoS 0
and 1, retained messages, wills, ``+``/``#`` filters, keep-alive) on loopback, and a page of
asyncio keeps the install at the collector's dependencies; amqtt would add a broker framework
(and its dependencies) for the fallback path alone. It keeps sessions in memory only, queues
nothing for clients that are away and does not authenticate: a demo stand-in, never a
production broker (deploy/mosquitto/ is that).
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
from dataclasses import dataclass, field

CONNECT, CONNACK, PUBLISH, PUBACK = 1, 2, 3, 4
SUBSCRIBE, SUBACK, UNSUBSCRIBE, UNSUBACK = 8, 9, 10, 11
PINGREQ, PINGRESP, DISCONNECT = 12, 13, 14


def matches(pattern: str, topic: str) -> bool:
    """MQTT topic filter matching (``+`` one level, ``#`` the rest; ``$`` topics apart)."""
    if topic.startswith("$") and pattern[:1] in {"+", "#"}:
        return False
    p, t = pattern.split("/"), topic.split("/")
    for i, part in enumerate(p):
        if part == "#":
            return True
        if i >= len(t) or (part != "+" and part != t[i]):
            return False
    return len(p) == len(t)


def _length(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n % 128, n // 128
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _packet(kind: int, flags: int, body: bytes) -> bytes:
    return bytes([kind << 4 | flags]) + _length(len(body)) + body


def _string(data: bytes, at: int) -> tuple[bytes, int]:
    (n,) = struct.unpack_from("!H", data, at)
    return data[at + 2 : at + 2 + n], at + 2 + n


@dataclass(eq=False)
class Client:
    writer: asyncio.StreamWriter
    subs: dict[str, int] = field(default_factory=dict)
    will: tuple[str, bytes, int, bool] | None = None
    next_id: int = 0

    def send(self, topic: str, payload: bytes, qos: int, retain: bool) -> None:
        body = struct.pack("!H", len(topic.encode())) + topic.encode()
        if qos:
            self.next_id = self.next_id % 65535 + 1
            body += struct.pack("!H", self.next_id)
        self.writer.write(_packet(PUBLISH, qos << 1 | int(retain), body + payload))


@dataclass
class Broker:
    host: str = "127.0.0.1"
    port: int = 0
    clients: dict[str, Client] = field(default_factory=dict)
    retained: dict[str, tuple[bytes, int]] = field(default_factory=dict)
    _server: asyncio.Server | None = None

    async def start(self) -> Broker:
        self._server = await asyncio.start_server(self._serve, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            for client in list(self.clients.values()):
                client.writer.close()
            with contextlib.suppress(Exception):
                await self._server.wait_closed()

    def route(self, topic: str, payload: bytes, qos: int, retain: bool) -> None:
        if retain:
            if payload:
                self.retained[topic] = (payload, qos)
            else:
                self.retained.pop(topic, None)
        for client in list(self.clients.values()):
            granted = [q for f, q in client.subs.items() if matches(f, topic)]
            if granted:
                client.send(topic, payload, min(qos, max(granted)), False)

    async def _read(self, reader: asyncio.StreamReader) -> tuple[int, int, bytes]:
        head = (await reader.readexactly(1))[0]
        length, shift = 0, 0
        while True:
            byte = (await reader.readexactly(1))[0]
            length += (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                break
        return head >> 4, head & 0x0F, await reader.readexactly(length)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        client_id, client = "", None
        try:
            kind, _, data = await asyncio.wait_for(self._read(reader), 10)
            if kind != CONNECT:
                return
            _, at = _string(data, 0)
            flags = data[at + 1]
            (keepalive,) = struct.unpack_from("!H", data, at + 2)
            raw_id, at = _string(data, at + 4)
            client_id = raw_id.decode() or f"anon-{id(writer)}"
            client = Client(writer)
            if flags & 0x04:
                topic, at = _string(data, at)
                message, at = _string(data, at)
                client.will = (topic.decode(), message, flags >> 3 & 3, bool(flags & 0x20))
            old = self.clients.get(client_id)
            if old is not None:  # a client id taken over: the old connection goes
                old.will = None
                old.writer.close()
            self.clients[client_id] = client
            writer.write(_packet(CONNACK, 0, b"\x00\x00"))
            timeout = keepalive * 1.5 if keepalive else None
            while True:
                kind, flags, data = await asyncio.wait_for(self._read(reader), timeout)
                if kind == PUBLISH:
                    qos, retain = flags >> 1 & 3, bool(flags & 1)
                    topic, at = _string(data, 0)
                    if qos:
                        writer.write(_packet(PUBACK, 0, data[at : at + 2]))
                        at += 2
                    self.route(topic.decode(), data[at:], qos, retain)
                elif kind == SUBSCRIBE:
                    at, granted = 2, bytearray()
                    new = []
                    while at < len(data):
                        topic, at = _string(data, at)
                        qos = min(data[at], 1)
                        at += 1
                        client.subs[topic.decode()] = qos
                        granted.append(qos)
                        new.append(topic.decode())
                    writer.write(_packet(SUBACK, 0, data[:2] + bytes(granted)))
                    for name, (payload, q) in list(self.retained.items()):
                        if any(matches(f, name) for f in new):
                            client.send(name, payload, min(q, 1), True)
                elif kind == UNSUBSCRIBE:
                    at = 2
                    while at < len(data):
                        topic, at = _string(data, at)
                        client.subs.pop(topic.decode(), None)
                    writer.write(_packet(UNSUBACK, 0, data[:2]))
                elif kind == PINGREQ:
                    writer.write(_packet(PINGRESP, 0, b""))
                elif kind == DISCONNECT:
                    client.will = None
                    return
                await writer.drain()
        except (asyncio.IncompleteReadError, TimeoutError, ConnectionError, OSError, IndexError):
            pass
        finally:
            if client is not None and self.clients.get(client_id) is client:
                del self.clients[client_id]
            if client is not None and client.will is not None:
                self.route(*client.will)
            writer.close()
