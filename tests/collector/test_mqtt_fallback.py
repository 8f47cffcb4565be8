"""MQTT 3.1.1 fallback: a broker that does not speak MQTT 5 gets a 3.1.1 connection.

Mosquitto always speaks MQTT 5, so a small TCP relay in front of the real broker plays an
MQTT 3.1.1-only broker (a fake for what cannot run here): it answers an MQTT 5 CONNECT with
"unacceptable protocol version" and relays every other connection to Mosquitto untouched.
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

from collector.config.collector import parse_config
from tests.support.collector import Publisher, collector_yaml, eventually, running, telemetry
from tests.support.mosquitto import Broker

CONNACK_BAD_PROTOCOL = bytes([0x20, 0x02, 0x00, 0x01])  # MQTT 3.1.1: unacceptable version


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    writer.close()


async def _relay(broker: Broker, refused: list[int]) -> asyncio.Server:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.read(4096)  # the CONNECT packet (small)
        # fixed header, remaining length (1 byte here), protocol name (2 + 4), level
        level = head[2 + 2 + 4] if len(head) > 8 else 0
        if level == 5:
            refused.append(level)
            writer.write(CONNACK_BAD_PROTOCOL)
            await writer.drain()
            writer.close()
            return
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", broker.port)
        up_writer.write(head)
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))

    return await asyncio.start_server(handle, "127.0.0.1", 0)


async def test_falls_back_to_311_when_the_broker_refuses_mqtt5(
    tmp_path: Path, broker: Broker
) -> None:
    refused: list[int] = []
    relay = await _relay(broker, refused)
    port = relay.sockets[0].getsockname()[1]
    text = collector_yaml(tmp_path, broker).replace(f":{broker.port}", f":{port}", 1)
    text = text.replace("mqtt:\n", "mqtt:\n  reconnect_max_s: 0.2\n")
    cfg = parse_config(text, tmp_path / "c.yaml")
    assert cfg.mqtt.protocol == "5"
    pub = Publisher(broker)
    async with running(cfg) as service:
        assert refused == [5] and service.intake.protocol == "3.1.1"
        await asyncio.to_thread(pub.publish, "fleet/v1/acme/d1/telemetry", telemetry("d1", 7))
        await eventually(lambda: "d1" in service.registry.devices)
    pub.close()
    relay.close()
