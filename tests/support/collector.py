"""Helpers for the collector tests: its config, the service in-process, a publisher."""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import time
import urllib.request
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from agent import wire
from collector.config.collector import CollectorConfig, parse_config
from collector.service import app
from tests.support.mosquitto import Broker
from tests.support.receiver import Receiver


def collector_yaml(
    tmp_path: Path,
    broker: Broker,
    *,
    client_id: str = "collector-test",
    tsdb: str | None = None,
    extra: str = "",
    http_port: int | None = None,
    store_url: str | None = None,
) -> str:
    store = store_url or f"sqlite:///{tmp_path / 'state.db'}"
    lines = [
        "mqtt:",
        f"  url: mqtt://127.0.0.1:{broker.port}",
        f"  client_id: {client_id}",
        "store:",
        f"  url: {store}",
        "  flush_interval_s: 0.2",
        "http:",
        f"  listen: 127.0.0.1:{http_port or 0}",  # 0: any free port (Service.http_port)
        "intake:",
        f"  dead_letter_file: {tmp_path / 'dead-letters.jsonl'}",
    ]
    if tsdb:
        lines += ["tsdb:", f"  url: {tsdb}", "  flush_interval_ms: 100"]
    return "\n".join(lines) + "\n" + extra


def make_config(tmp_path: Path, text: str) -> CollectorConfig:
    path = tmp_path / "collector.yaml"
    path.write_text(text)
    return parse_config(text, path)


@contextlib.asynccontextmanager
async def running(cfg: CollectorConfig, **kwargs: Any) -> AsyncIterator[app.Service]:
    """The collector in-process, connected to its broker; drained on exit."""
    stop = asyncio.Event()
    ready: asyncio.Future[app.Service] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(app.run(cfg, stop, on_ready=ready.set_result, **kwargs))
    await asyncio.wait({task, ready}, return_when="FIRST_COMPLETED")
    if task.done():
        task.result()
    service = ready.result()
    # Subscribed: the broker has acknowledged the subscriptions (SUBACK), so what the test
    # publishes next reaches the collector's session.
    await eventually(lambda: service.intake.subscribed and service.http_port is not None)
    try:
        yield service
    finally:
        stop.set()
        await task


def telemetry(
    device: str, seq: int, *, boot: str = "b1", ts: datetime | None = None, **metrics: Any
) -> bytes:
    return wire.encode(
        wire.Telemetry(
            device=device,
            boot=boot,
            seq=seq,
            ts=ts or datetime.now(UTC),
            metrics=metrics or {"cpu_pct": float(seq)},
        )
    )


class Publisher:
    """A plain paho client publishing QoS 1 and waiting for every PUBACK."""

    def __init__(self, broker: Broker, client_id: str = "test-publisher") -> None:
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id)
        self.client.connect("127.0.0.1", broker.port)
        self.client.loop_start()

    def publish(self, topic: str, payload: bytes | str, qos: int = 1) -> None:
        info = self.client.publish(topic, payload, qos=qos)
        info.wait_for_publish(timeout=10)

    def many(self, items: list[tuple[str, bytes]]) -> None:
        infos = [self.client.publish(t, p, qos=1) for t, p in items]
        for info in infos:
            info.wait_for_publish(timeout=30)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def ago(seconds: float) -> datetime:
    return datetime.now(UTC) - timedelta(seconds=seconds)


def dead_letters(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line]


async def eventually(predicate: Callable[[], object], seconds: float = 20.0) -> None:
    """Waits until ``predicate()`` is true (polling); fails after ``seconds`` (generous: the
    machine is shared, tests wait for behaviour, never on timing)."""
    deadline = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.02)


def wait_until_subscribed(http_port: int, proc: subprocess.Popen[bytes], log: Path) -> None:
    """Waits for a collector subprocess's ``/healthz`` to say ``mqtt_subscribed`` (after the
    broker's SUBACK), failing with its log if it exits or does not get there."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert proc.poll() is None, log.read_text()
        try:
            url = f"http://127.0.0.1:{http_port}/healthz"
            with urllib.request.urlopen(url, timeout=2) as resp:
                if json.load(resp)["mqtt_subscribed"]:
                    return
        except OSError:
            pass
        time.sleep(0.05)
    raise AssertionError(f"collector did not subscribe: {log.read_text()}")


TICKETS_HEADER = (
    "device,tenant,model,class,site,parent,criticality,customer,policy,"
    "warranty_start,warranty_months,interval_s\n"
)


def tickets_config(tmp_path: Path, broker: Broker, receiver: Receiver, devices: int,
                   http_port: int) -> str:  # fmt: skip
    inventory = tmp_path / "inventory.csv"
    rows = "".join(
        f"gw-{i},acme,WR5120,router,site-{i},,common,acme,xian-integrator,2026-01-01,36,3600\n"
        for i in range(devices)
    )
    inventory.write_text(TICKETS_HEADER + rows)
    sinks = tmp_path / "sinks.yaml"
    sinks.write_text(
        "sinks:\n  - name: desk\n    type: webhook\n"
        f"    url: {receiver.url}\n    secret_env: DESK_OUT_SECRET\n"
        "    backoff_base: 0.05s\n    backoff_cap: 0.2s\n"
        "    inbound_secret_env: [DESK_SINK_SECRET]\n"
    )
    extra = (
        f"rules:\n  inventory: {inventory}\n  state_flush_s: 0.2\n"
        f"tickets:\n  sinks: {sinks}\n  inbound_secret_env: DESK_IN_SECRET\n"
        "  delivery_poll_s: 0.05\n"
    )
    return collector_yaml(tmp_path, broker, extra=extra, http_port=http_port)
