"""The ticket core stays pure: the book and its SLA adapter load no network, async or DB code."""

from __future__ import annotations

import subprocess
import sys

FORBIDDEN = ("asyncio", "paho", "httpx", "pysnmp", "sqlalchemy", "psycopg", "influxdb_client")

PROGRAM = f"""
import sys
from datetime import datetime, timezone
from collector.tickets.book import TicketBook
from collector.tickets.inputs import FaultSignal
from collector.tickets.numbers import MemoryNumbers
from collector.tickets.sla_adapter import SlaEngine
from collector.tickets.terms import DeviceWarranty
import collector.tickets.codec, collector.tickets.coverage

class Devices:
    def warranty(self, device):
        return DeviceWarranty(start=None)

engine = SlaEngine()
book = TicketBook(policies=engine, devices=Devices(), sla=engine)
at = datetime(2030, 1, 1, tzinfo=timezone.utc)
signal = FaultSignal(
    "opened", at, "f", "device_offline", "outage", "d1", None, at, "wthink", "urgent"
)
book.on_fault(signal, MemoryNumbers())
book.tick(datetime(2030, 1, 9, tzinfo=timezone.utc))
loaded = sorted({{m.split(".")[0] for m in sys.modules}} & set({FORBIDDEN!r}))
print(",".join(loaded))
"""


def test_the_ticket_core_imports_no_io_frameworks() -> None:
    proc = subprocess.run(
        [sys.executable, "-c", PROGRAM], capture_output=True, text=True, check=True, timeout=60
    )
    assert proc.stdout.strip() == ""
