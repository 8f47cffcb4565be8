"""Scale-out: how fast 1, 2 and 3 collector processes drain one backlog, and a SIGKILL failover.

Prints one JSON object:
- ``msgs_per_s_1`` / ``_2`` / ``_3``: telemetry messages per second the collector group
  accepted (decode, dedup, registry, rules engine over the 1,000-device inventory, commit to the
  shared PostgreSQL, acknowledgement), draining a backlog of ``--messages`` QoS 1 messages
  from a local Mosquitto: the collectors are started and settled on their partitions, stopped
  with SIGSTOP, the backlog is published into their partitions' persistent sessions, and the
  clock runs from SIGCONT to the last message accepted (the sum of their
  ``collector_messages_total{outcome="accepted"}``). A fresh database for each group size.
- ``paho_msgs_per_s``: a bare paho callback loop draining the same backlog from its own
  persistent session, in the same run: the ceiling one Python process has here.
- ``failover_s``, ``duplicate_tickets``, ``lost_reports``: the SIGKILL run of
  tests/collector/test_scale_out.py (three collectors, 1,000 devices reporting every second,
  the tickets leader killed): seconds until every partition is served again, tickets beyond
  one per fault, acknowledged reports missing from the registry.
- ``cpus``: the machine's cores (three collectors, the broker, PostgreSQL and the publisher
  share them: past the core count, more processes cannot add throughput).

    .venv/bin/python bench/scale.py [--messages 60000]
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import signal
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import paho.mqtt.client as mqtt

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _support import mqtt5_client, publish_backlog, session_props

from agent import wire
from tests.support.mosquitto import Broker
from tests.support.pg import fresh_database
from tests.support.receiver import Receiver
from tests.support.scale import Group, device_name, run_failover, write_inventory
from tests.support.services import free_port

DEVICES = 1000
PARTITIONS = 12


def payloads(n: int, start_seq: int) -> list[tuple[str, bytes]]:
    t0 = datetime.now(UTC) - timedelta(hours=2)
    out = []
    for i in range(n):
        device = device_name(i % DEVICES)
        seq = start_seq + i // DEVICES
        msg = wire.Telemetry(
            device=device, boot="b1", seq=seq, ts=t0 + timedelta(seconds=seq),
            metrics={"cpu_pct": 12.5, "mem_used_pct": 40.0 + seq % 7, "temp_c": 51},
        )  # fmt: skip
        out.append((f"fleet/v1/acme/{device}/telemetry", wire.encode(msg)))
    return out


def paho_rate(port: int, items: list[tuple[str, bytes]]) -> float:
    """A bare paho loop's drain of the same backlog, from its own persistent session."""
    sub = mqtt5_client("bench-paho")
    sub.connect("127.0.0.1", port, clean_start=False, properties=session_props())
    subscribed = threading.Event()
    sub.on_subscribe = lambda *_: subscribed.set()
    sub.loop_start()
    sub.subscribe("fleet/v1/+/#", qos=1)
    if not subscribed.wait(10):  # SUBACK: the session now queues what is published
        raise RuntimeError("the broker did not acknowledge the subscription")
    sub.disconnect()
    sub.loop_stop()
    publish_backlog(port, items)
    count = 0
    client = mqtt5_client("bench-paho")

    def on_message(c: mqtt.Client, _u: object, _m: mqtt.MQTTMessage) -> None:
        nonlocal count
        count += 1
        if count >= len(items):
            c.disconnect()

    client.on_message = on_message
    start = time.perf_counter()
    client.connect("127.0.0.1", port, clean_start=False, properties=session_props())
    client.loop_forever()
    elapsed = time.perf_counter() - start
    gone = mqtt5_client("bench-paho")  # the session goes, so it queues nothing of the next runs
    gone.connect("127.0.0.1", port, clean_start=True)
    gone.disconnect()
    return len(items) / elapsed


def group_rate(
    root: Path, broker: Broker, collectors: int, items: list[tuple[str, bytes]]
) -> float:
    with fresh_database("fleetdesk_bench_scale") as url:
        inventory = root / "inventory.csv"
        write_inventory(inventory, DEVICES, 3600)  # no device goes offline during the run
        group = Group(root / f"group-{collectors}", broker, url, inventory, PARTITIONS,
                      client_id=f"bench-group-{collectors}")  # fmt: skip
        try:
            for _ in range(collectors):
                group.add()
            group.wait_settled(timeout=120)
            for proc in group.procs:
                assert proc.pid is not None
                os.kill(proc.pid, signal.SIGSTOP)
            publish_backlog(broker.port, items)
            start = time.perf_counter()
            for proc in group.procs:
                assert proc.pid is not None
                os.kill(proc.pid, signal.SIGCONT)
            last = 0.0
            while True:
                accepted = sum(
                    p.value("collector_messages_total", outcome="accepted") for p in group.procs
                )
                if accepted >= len(items):
                    return len(items) / (time.perf_counter() - start)
                if accepted != last:
                    last = accepted
                time.sleep(0.05)
        finally:
            group.stop()


def failover(root: Path, broker: Broker) -> dict[str, object]:
    os.environ["DESK_OUT_SECRET"] = (
        "whsec_" + base64.b64encode(b"bench-scale-secret-0123456789").decode()
    )
    receiver = Receiver(free_port())
    receiver.start()
    try:
        with fresh_database("fleetdesk_bench_failover") as url:
            (root / "failover").mkdir()
            run = run_failover(root / "failover", broker, url, receiver, partitions=PARTITIONS)
    finally:
        receiver.stop()
    return {
        "failover_s": round(run.failover_s, 2),
        "duplicate_tickets": run.duplicate_tickets,
        "lost_reports": run.lost_reports,
        "faults": len(run.faulty),
        "tickets": len(run.found["tickets"]),  # type: ignore[arg-type]
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=60_000)
    args = parser.parse_args()
    result: dict[str, object] = {"messages": args.messages, "devices": DEVICES,
                                 "partitions": PARTITIONS, "cpus": os.cpu_count()}  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        broker = Broker(root / "broker", persistence=False).start()
        try:
            result["paho_msgs_per_s"] = round(paho_rate(broker.port, payloads(args.messages, 0)))
            for n in (1, 2, 3):
                items = payloads(args.messages, 0)
                result[f"msgs_per_s_{n}"] = round(group_rate(root, broker, n, items))
            result.update(failover(root, broker))
        finally:
            broker.stop()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
