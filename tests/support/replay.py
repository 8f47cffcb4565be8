"""Recordings for ``fleetdesk replay`` and the replay itself: the ticket replay tests build
their input here (retained device states, events, desk lines) and read its JSON lines back."""

from __future__ import annotations

import contextlib
import io
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from collector import cli

T0 = datetime(2025, 10, 9, 8, 0, tzinfo=UTC)  # 16:00 in Asia/Shanghai
# Devices report weekly (interval_s), so only the retained states below raise faults.

INVENTORY = """\
device,tenant,model,class,site,parent,criticality,customer,policy,warranty_start,warranty_months,interval_s
gw1,acme,WR920,router,s1,,common,acme,xian-integrator,2024-01-01,36,604800
gw2,acme,WR920,router,s2,,common,acme,xian-integrator,2020-01-01,36,604800
gw3,acme,WR920,router,s3,,common,acme,xian-integrator,2022-09-01,,604800
hot1,acme,WR920,router,s4,,common,acme,wthink,2025-06-01,12,604800
gw4,acme,WR920,router,s5,,common,acme,xian-integrator,2022-10-12,,604800
gw5,acme,WR920,router,s6,,common,acme,xian-integrator,2022-10-12,,604800
"""


def ts(minutes: float) -> str:
    return (T0 + timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


@dataclass
class Rec:
    lines: list[dict[str, Any]] = field(default_factory=list)

    def state(self, minutes: float, device: str, state: str) -> Rec:
        payload = {"v": 1, "device": device, "ts": ts(minutes), "state": state}
        topic = f"fleet/v1/acme/{device}/state"
        self.lines.append({"at": ts(minutes), "topic": topic, "payload": payload})
        return self

    def event(self, minutes: float, device: str, name: str, seq: int = 1) -> Rec:
        payload = {"v": 1, "device": device, "ts": ts(minutes), "boot": "b1", "seq": seq,
                   "event": name, "data": {}}  # fmt: skip
        topic = f"fleet/v1/acme/{device}/event"
        self.lines.append({"at": ts(minutes), "topic": topic, "payload": payload})
        return self

    def desk(self, minutes: float, **desk: Any) -> Rec:
        self.lines.append({"at": ts(minutes), "desk": desk})
        return self

    def maintenance(self, minutes: float, start: float, end: float, device: str) -> Rec:
        window = {"device": device, "start": ts(start), "end": ts(end)}
        self.lines.append({"at": ts(minutes), "maintenance": window})
        return self

    def wait(self, minutes: float) -> Rec:
        self.lines.append({"at": ts(minutes)})
        return self


@dataclass
class Out:
    code: int
    tickets: list[dict[str, Any]]
    faults: list[dict[str, Any]]
    stderr: str


def replay(tmp_path: Path, rec: Rec, inventory: str = INVENTORY) -> Out:
    inv = tmp_path / "inventory.csv"
    inv.write_text(inventory)
    path = tmp_path / "rec.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in rec.lines))
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main(["replay", "--inventory", str(inv), str(path)])
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    return Out(
        code,
        [x for x in lines if "ticket" in x],
        [x for x in lines if "ticket" not in x],
        err.getvalue(),
    )


def brief(lines: list[dict[str, Any]], *keys: str) -> list[tuple[Any, ...]]:
    return [(x["event"], x["at"], x["ticket"], *(x.get(k) for k in keys)) for x in lines]
