"""Helpers to write recordings and run them through ``fleetdesk replay``."""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from agent import wire
from collector import cli
from collector.rules.engine import Engine
from collector.rules.faults import FaultEvent
from collector.rules.inventory import parse_csv_inventory
from collector.rules.ruleset import load_rules, parse_rules

# A Wednesday, 10:00 in Shanghai: inside cn-workdays business hours.
T0 = datetime(2026, 11, 25, 2, 0, tzinfo=UTC)
HEADER = (
    "device,tenant,model,class,site,parent,criticality,customer,policy,"
    "warranty_start,warranty_months,interval_s"
)


def at(minutes: float) -> str:
    """The ISO 8601 instant ``minutes`` after T0, as the engine prints it."""
    t = T0 + timedelta(minutes=minutes)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def row(
    device: str,
    *,
    cls: str = "router",
    model: str = "WR5120",
    site: str = "",
    parent: str = "",
    criticality: str = "common",
    policy: str = "shanghai-energy",
    interval_s: int = 60,
) -> str:
    return (
        f"{device},acme,{model},{cls},{site},{parent},{criticality},acme,{policy},"
        f"2026-01-10,12,{interval_s}"
    )


def inventory(tmp_path: Path, *rows: str, name: str = "inventory.csv") -> Path:
    path = tmp_path / name
    path.write_text("\n".join((HEADER, *rows)) + "\n", encoding="utf-8")
    return path


@dataclass
class Recording:
    """Builds a recording; times are minutes after T0."""

    lines: list[dict[str, Any]] = field(default_factory=list)
    seq: dict[str, int] = field(default_factory=dict)

    def _next(self, device: str) -> int:
        self.seq[device] = self.seq.get(device, 0) + 1
        return self.seq[device]

    def _msg(self, minutes: float, device: str, kind: str, payload: dict[str, Any]) -> Recording:
        body = {"v": 1, "device": device, "ts": at(minutes), **payload}
        self.lines.append(
            {"at": at(minutes), "topic": f"fleet/v1/acme/{device}/{kind}", "payload": body}
        )
        return self

    def telemetry(self, minutes: float, device: str, **metrics: Any) -> Recording:
        payload = {"boot": "b1", "seq": self._next(device), "metrics": metrics}
        return self._msg(minutes, device, "telemetry", payload)

    def steady(self, device: str, start: float, end: float, **metrics: Any) -> Recording:
        """One report a minute from ``start`` to ``end`` inclusive."""
        for m in range(int(start), int(end) + 1):
            self.telemetry(m, device, **metrics)
        return self

    def state(self, minutes: float, device: str, state: str) -> Recording:
        return self._msg(minutes, device, "state", {"state": state})

    def event(self, minutes: float, device: str, name: str, **data: Any) -> Recording:
        payload = {"boot": "b1", "seq": self._next(device), "event": name, "data": data}
        return self._msg(minutes, device, "event", payload)

    def birth(
        self,
        minutes: float,
        device: str,
        *,
        model: str = "WR920",
        interval_s: int = 60,
        firmware: str = "1.0",
    ) -> Recording:
        payload = {
            "boot": "b1",
            "model": model,
            "serial": "SN1",
            "firmware": firmware,
            "agent": "0.1.0",
            "interval_s": interval_s,
        }
        return self._msg(minutes, device, "birth", payload)

    def trap(
        self,
        minutes: float,
        device: str,
        name: str | None = None,
        oid: str | None = None,
        **varbinds: Any,
    ) -> Recording:
        trap: dict[str, Any] = {"device": device, "varbinds": varbinds}
        if name is not None:
            trap["name"] = name
        if oid is not None:
            trap["oid"] = oid
        self.lines.append({"at": at(minutes), "trap": trap})
        return self

    def maintenance(self, minutes: float, start: float, end: float, **who: str) -> Recording:
        window = {**who, "start": at(start), "end": at(end)}
        self.lines.append({"at": at(minutes), "maintenance": window})
        return self

    def wait(self, minutes: float) -> Recording:
        self.lines.append({"at": at(minutes)})
        return self

    def sorted(self) -> Recording:
        """Lines in time order (stable: same-instant lines keep the order they were added)."""
        self.lines.sort(key=lambda line: line["at"])
        return self

    def text(self) -> str:
        return "".join(json.dumps(line) + "\n" for line in self.lines)


@dataclass(frozen=True)
class Result:
    code: int
    events: list[dict[str, Any]]
    stderr: str


def replay(
    tmp_path: Path,
    inv: Path,
    rec: Recording | str,
    *extra: str,
) -> Result:
    """Run ``fleetdesk replay`` in this process, as the console script does."""
    path = tmp_path / "recording.jsonl"
    path.write_text(rec if isinstance(rec, str) else rec.sorted().text(), encoding="utf-8")
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        # fault events alone: the ticket stage has its own scenario tests (tests/tickets)
        code = cli.main(["replay", "--no-tickets", "--inventory", str(inv), *extra, str(path)])
    events = [json.loads(line) for line in out.getvalue().splitlines()]
    return Result(code, events, err.getvalue())


def brief(events: Iterable[Mapping[str, Any]]) -> list[tuple[Any, ...]]:
    """(event, at, device or site, fault, level, onset, exempt): the expected-events shape."""
    return [
        (
            e["event"],
            e["at"],
            e.get("device") or e.get("site"),
            e["fault"],
            e["level"],
            e["onset"],
            e["exempt"],
        )
        for e in events
    ]


def expect(*rows: Sequence[Any]) -> list[tuple[Any, ...]]:
    """Expected events, times in minutes: (event, at, subject, fault, level, onset, exempt)."""
    return [(e, at(a), s, f, lv, at(o), x) for e, a, s, f, lv, o, x in rows]


def engine_of(*rows: str, rules_text: str | None = None, policy: str = "wthink") -> Engine:
    """An engine over an inventory of ``rows`` (see ``row``): the default rules, or the rules
    of ``rules_text`` (one YAML rule file)."""
    inventory = parse_csv_inventory("\n".join((HEADER, *rows)) + "\n")
    rules = load_rules() if rules_text is None else parse_rules([(rules_text, "rules.yaml")])
    return Engine(inventory, rules, default_policy=policy)


def report(e: Engine, minutes: float, device: str, **metrics: Any) -> list[FaultEvent]:
    """``device`` reports ``metrics`` at T0 + ``minutes`` (sample and arrival): the events."""
    t = T0 + timedelta(minutes=minutes)
    return e.process(wire.Telemetry(device, "b1", int(minutes * 60), t, metrics), t)


def events_of(events: Iterable[FaultEvent]) -> list[tuple[str, float, str, str]]:
    """(event, minutes after T0, subject, kind) of each fault event."""
    return [
        (ev.event.value, (ev.at - T0).total_seconds() / 60, ev.fault.subject, ev.fault.kind)
        for ev in events
    ]
