"""SNMP polling benchmark: devices polled per second against a local snmpd.

Starts net-snmp's snmpd on a loopback port and polls it as ``--devices`` distinct targets with
the ``router`` profile (system scalars + interface table walks) through the collector's poller
with bounded concurrency (``--concurrency``). Beside it, the same run times net-snmp's own
``snmpget`` + ``snmpbulkwalk`` of the same OIDs and tables, one device after another, as the
baseline (``snmpbulkwalk_devices_per_s``). Prints one JSON object.

    .venv/bin/python bench/snmp.py [--devices 200] [--concurrency 32]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from collector.config.snmp import SnmpConfig, SnmpTarget
from collector.intake.snmp_poll import Poller
from collector.intake.snmp_profiles import load_profiles
from collector.metrics import Metrics
from collector.preset_paths import default_rules_dir
from tests.support.snmpd import Snmpd


async def _collector(port: int, devices: int, concurrency: int) -> tuple[float, int]:
    targets = tuple(
        SnmpTarget(device=f"r{i}", tenant="bench", host="127.0.0.1", port=port)
        for i in range(devices)
    )
    cfg = SnmpConfig(devices=targets, timeout_s=5.0, retries=1, concurrency=concurrency)
    poller = Poller(cfg, load_profiles(default_rules_dir() / "snmp"), lambda _e: None, Metrics())
    start = time.perf_counter()
    results = await asyncio.gather(*(poller.poll(t) for t in targets))
    elapsed = time.perf_counter() - start
    poller.engine.close_dispatcher()
    ok = sum(1 for r in results if r.outcome == "ok")
    return devices / elapsed, ok


def _net_snmp(port: int, devices: int) -> float:
    profile = load_profiles(default_rules_dir() / "snmp")["router"]
    get = shutil.which("snmpget")
    walk = shutil.which("snmpbulkwalk")
    if get is None or walk is None:
        raise SystemExit("snmpget/snmpbulkwalk are not installed (Debian package snmp)")
    address = f"udp:127.0.0.1:{port}"
    columns = [c for t in profile.tables for c in (t.label, *(col.oid for col in t.columns))]
    start = time.perf_counter()
    for _ in range(devices):
        common = ["-v2c", "-c", "public", "-On", "-Cr25"]
        subprocess.run(
            [get, "-v2c", "-c", "public", "-On", address, *profile.scalar_oids()],
            stdout=subprocess.DEVNULL,
            check=True,
        )
        for column in columns:
            subprocess.run([walk, *common, address, column], stdout=subprocess.DEVNULL, check=True)
    return devices / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="fleetdesk-bench-snmp-") as tmp:
        snmpd = Snmpd(Path(tmp)).start()
        try:
            rate, ok = asyncio.run(_collector(snmpd.port, args.devices, args.concurrency))
            baseline = _net_snmp(snmpd.port, args.devices)
        finally:
            snmpd.stop()
    print(
        json.dumps(
            {
                "devices": args.devices,
                "concurrency": args.concurrency,
                "profile": "router",
                "collector_devices_per_s": round(rate, 1),
                "collector_polls_ok": ok,
                "snmpbulkwalk_devices_per_s": round(baseline, 1),
                "ratio_to_snmpbulkwalk": round(rate / baseline, 3),
            }
        )
    )


if __name__ == "__main__":
    main()
