"""Rules engine throughput and memory: prints one JSON object.

10,000 devices (routers and DTUs, sites of 10) report once a minute with ~10 metrics each;
every default rule is loaded. The same messages are first only decoded (``wire.decode``, the
baseline measured in the same run), then evaluated by the engine (already decoded, so the
figure is evaluation alone). A *sample* is one metric value; a *message* is one telemetry
report. Memory per device is the engine's traced allocations after the run, over devices.

    .venv/bin/python bench/rules.py [--devices 10000] [--rounds 6]
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import time
import tracemalloc
from datetime import UTC, datetime, timedelta

from agent import wire
from collector.rules.engine import Engine
from collector.rules.inventory import parse_csv_inventory
from collector.rules.ruleset import load_rules

HEADER = (
    "device,tenant,model,class,site,parent,criticality,customer,policy,"
    "warranty_start,warranty_months,interval_s"
)
T0 = datetime(2026, 11, 25, 2, 0, tzinfo=UTC)


def inventory_text(n: int) -> str:
    rows = [HEADER]
    for i in range(n):
        cls, model = ("dtu", "WD150") if i % 10 >= 7 else ("router", "WR5120")
        parent = f"dev{i - i % 10:05d}" if cls == "dtu" else ""
        rows.append(
            f"dev{i:05d},acme,{model},{cls},site{i // 10:04d},{parent},common,acme,"
            f"shanghai-energy,2026-01-10,12,60"
        )
    return "\n".join(rows) + "\n"


def messages(n: int, rounds: int, rng: random.Random) -> list[tuple[str, bytes]]:
    out = []
    for r in range(rounds):
        ts = T0 + timedelta(minutes=r)
        for i in range(n):
            hot = rng.random() < 0.01  # a few devices breach something for a moment
            metrics: dict[str, wire.MetricValue] = {
                "cpu_pct": round(rng.uniform(92, 99) if hot else rng.uniform(1, 60), 1),
                "load1": round(rng.uniform(0, 2), 2),
                "mem_used_pct": round(rng.uniform(30, 70), 1),
                # one device in 200 has a full disk: faults opened and classified in the run
                "disk_used_pct": 97.5 if i % 200 == 0 else round(rng.uniform(20, 80), 1),
                "temp_c": round(rng.uniform(40, 65), 1),
                "uptime_s": 100_000 + 60 * r,
                "rsrp_dbm": rng.randint(-105, -80),
                "ping_loss_pct": 0.0,
                "ping_rtt_ms": round(rng.uniform(20, 90), 1),
                "if_wan_up": True,
            }
            if i % 10 >= 7:
                metrics["serial_up"] = True
            device = f"dev{i:05d}"
            msg = wire.Telemetry(device, "b1", r + 1, ts, metrics)
            out.append((wire.topic("acme", device, wire.Kind.TELEMETRY), wire.encode(msg)))
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--devices", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=6)
    args = parser.parse_args()
    rng = random.Random(7)
    inventory = parse_csv_inventory(inventory_text(args.devices), "bench")
    rules = load_rules()
    raw = messages(args.devices, args.rounds, rng)

    gc.collect()
    start = time.perf_counter()
    decoded = [wire.decode(topic, payload) for topic, payload in raw]
    decode_s = time.perf_counter() - start
    telemetry = [m for m in decoded if isinstance(m, wire.Telemetry)]
    assert len(telemetry) == len(raw)
    samples = sum(len(m.metrics) for m in telemetry)

    engine = Engine(inventory, rules, default_policy="shanghai-energy")
    engine.tick(T0)  # the inventory is watched from here on (absence timers armed)
    events = 0
    gc.collect()
    start = time.perf_counter()
    for msg in telemetry:
        events += len(engine.process(msg, msg.ts))
    eval_s = time.perf_counter() - start

    # memory: a fresh engine under tracemalloc, fed the same messages
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    mem_engine = Engine(inventory, rules, default_policy="shanghai-energy")
    for msg in telemetry:
        mem_engine.process(msg, msg.ts)
    used = tracemalloc.get_traced_memory()[0] - base
    tracemalloc.stop()

    print(
        json.dumps(
            {
                "devices": args.devices,
                "rules": len(rules.rules),
                "messages": len(telemetry),
                "samples": samples,
                "samples_per_message": round(samples / len(telemetry), 1),
                "fault_events": events,
                "eval_samples_per_s": round(samples / eval_s),
                "eval_messages_per_s": round(len(telemetry) / eval_s),
                "decode_samples_per_s": round(samples / decode_s),
                "decode_messages_per_s": round(len(telemetry) / decode_s),
                "eval_vs_decode": round(decode_s / eval_s, 2),
                "target_eval_samples_per_s": 100_000,
                "memory_bytes_per_device": round(used / args.devices),
                "target_memory_bytes_per_device": 2048,
            }
        )
    )


if __name__ == "__main__":
    main()
