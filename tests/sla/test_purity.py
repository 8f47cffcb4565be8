"""The SLA core stays pure: importing and using it loads no network, async or database code."""

from __future__ import annotations

import subprocess
import sys

FORBIDDEN = ("asyncio", "paho", "httpx", "pysnmp", "sqlalchemy", "psycopg", "influxdb_client")

PROGRAM = f"""
import sys
from datetime import datetime, timezone
import collector.sla.clock, collector.sla.policy
p = collector.sla.policy.load_policy("nanjing-instruments")
p.deadlines("major", datetime(2030, 1, 1, tzinfo=timezone.utc))
loaded = sorted({{m.split(".")[0] for m in sys.modules}} & set({FORBIDDEN!r}))
print(",".join(loaded))
"""


def test_the_sla_core_imports_no_io_frameworks() -> None:
    proc = subprocess.run(
        [sys.executable, "-c", PROGRAM], capture_output=True, text=True, check=True, timeout=60
    )
    assert proc.stdout.strip() == ""
