"""Property tests: determinism, independence of devices' interleaving, consistent fault states,
and a restart (state exported and restored) that changes nothing."""

from __future__ import annotations

import json
import os
import random
from collections.abc import Mapping, Sequence
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collector.pipeline.replay import Replay
from collector.rules.engine import Engine
from collector.rules.inventory import Inventory, parse_csv_inventory
from collector.rules.ruleset import load_rules
from tests.support.rules import HEADER, Recording, row

RULES = load_rules()
DEVICES = ("a", "b", "c")
# each device alone in its site with no parent: devices are independent of each other
INVENTORY = parse_csv_inventory(
    "\n".join((HEADER, *(row(d, site=f"site-{d}", cls="dtu") for d in DEVICES))) + "\n"
)
# the same devices linked: one site, and c sits behind b (site outages, parent holds)
LINKED = parse_csv_inventory(
    "\n".join(
        (
            HEADER,
            row("a", site="s", cls="dtu"),
            row("b", site="s", cls="router"),
            row("c", site="s", cls="dtu", parent="b"),
        )
    )
    + "\n"
)

# One minute of one device's life.
step = st.one_of(
    st.fixed_dictionaries(
        {
            "kind": st.just("telemetry"),
            "temp_c": st.sampled_from([50, 72, 80]),
            "cpu_pct": st.sampled_from([10, 85, 95]),
            "disk_used_pct": st.sampled_from([50, 92, 99]),
            "serial_up": st.booleans(),
            "reboot": st.booleans(),
        }
    ),
    st.just({"kind": "silence"}),
    st.just({"kind": "offline"}),
    st.just({"kind": "dying_gasp"}),
    st.sampled_from([{"kind": "trap", "name": "linkDown"}, {"kind": "trap", "name": "linkUp"}]),
    st.fixed_dictionaries(
        {"kind": st.just("maintenance"), "back": st.integers(0, 10), "length": st.integers(1, 15)}
    ),
)
life = st.lists(step, min_size=1, max_size=40)


def device_lines(device: str, steps: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    rec = Recording()
    uptime = 1000
    for minute, s in enumerate(steps):
        kind = s["kind"]
        if kind == "telemetry":
            uptime = 0 if s["reboot"] else uptime + 60
            metrics = {k: s[k] for k in ("temp_c", "cpu_pct", "disk_used_pct", "serial_up")}
            rec.telemetry(minute, device, uptime_s=uptime, **metrics)
        elif kind == "offline":
            rec.state(minute, device, "offline")
        elif kind == "dying_gasp":
            rec.event(minute, device, "dying_gasp")
        elif kind == "trap":
            rec.trap(minute, device, name=s["name"], ifIndex=1)
        elif kind == "maintenance":
            start, end = max(0, minute - s["back"]), minute + s["length"]
            rec.maintenance(minute, start, end, device=device)
    rec.wait(len(steps) + 10)
    return rec.lines


def merge(per_device: Sequence[list[dict[str, Any]]], seed: int | None) -> list[str]:
    """One recording: lines in time order; same-instant lines of different devices in an order
    given by ``seed`` (each device's own lines keep their order)."""
    tagged = []
    rng = random.Random(seed)
    queues = [list(lines) for lines in per_device]
    while any(queues):  # a random interleaving that keeps each device's order...
        q = (
            rng.choice([q for q in queues if q])
            if seed is not None
            else next(q for q in queues if q)
        )
        tagged.append(q.pop(0))
    tagged.sort(key=lambda line: line["at"])  # ...then time order (stable)
    return [json.dumps(line) for line in tagged]


def engine(inventory: Inventory = INVENTORY) -> Engine:
    return Engine(inventory, RULES, default_policy="shanghai-energy")


def run(lines: Sequence[str], eng: Engine | None = None) -> tuple[list[dict[str, Any]], Engine]:
    out: list[dict[str, Any]] = []
    eng = eng or engine()
    result = Replay(eng, emit=lambda line: out.append(dict(line))).run(lines, lambda m: None)
    assert result.bad_lines == 0
    return out, eng


def new_ids(events: Sequence[Mapping[str, Any]]) -> set[str]:
    return {e["id"] for e in events if e["event"] == "opened"}


def by_subject(events: Sequence[Mapping[str, Any]]) -> dict[str, list[Mapping[str, Any]]]:
    out: dict[str, list[Mapping[str, Any]]] = {}
    for e in events:
        out.setdefault(e.get("device") or e["site"], []).append(e)
    return out


lives = st.lists(life, min_size=len(DEVICES), max_size=len(DEVICES))
# More examples for a deeper search: FLEETDESK_RULES_EXAMPLES=1000 pytest tests/rules
EXAMPLES = int(os.environ.get("FLEETDESK_RULES_EXAMPLES", "60"))
SETTINGS = settings(
    max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


@SETTINGS
@given(lives, st.integers(0, 2**32))
def test_same_recording_same_output_and_interleaving_does_not_matter(
    steps: list[list[dict[str, Any]]], seed: int
) -> None:
    per_device = [device_lines(d, s) for d, s in zip(DEVICES, steps, strict=True)]
    ordered = merge(per_device, None)
    first, _ = run(ordered)
    again, _ = run(ordered)
    assert first == again
    shuffled, _ = run(merge(per_device, seed))
    assert by_subject(shuffled) == by_subject(first)


@SETTINGS
@given(lives, st.sampled_from([INVENTORY, LINKED]))
def test_no_fault_is_both_open_and_cleared(
    steps: list[list[dict[str, Any]]], inventory: Inventory
) -> None:
    lines = merge([device_lines(d, s) for d, s in zip(DEVICES, steps, strict=True)], None)
    eng = engine(inventory)
    out: list[Mapping[str, Any]] = []
    replay = Replay(eng, emit=out.append)
    open_ids: set[str] = set()
    for text in lines:
        out.clear()
        replay.feed(text)
        for e in out:
            fid = e["id"]
            assert e["onset"] <= e["at"]  # a clock never starts in the future
            assert (e["deadlines"] == {}) == (e["exempt"] is not None)  # only exempt owe nothing
            if e["event"] == "absorbed":  # into a fault that is open (or held back itself)
                assert e["into"] is None or e["into"] in open_ids | new_ids(out)
            if e["event"] == "opened":
                assert fid not in open_ids
                open_ids.add(fid)
            elif e["event"] in ("escalated", "exempted"):
                assert fid in open_ids
            else:  # cleared or absorbed: it was open, and is no longer
                assert fid in open_ids
                open_ids.remove(fid)
        assert {f.id for f in eng.open_faults()} == open_ids


@SETTINGS
@given(lives, st.floats(0, 1), st.sampled_from([INVENTORY, LINKED]))
def test_a_restart_keeps_open_faults_and_their_clocks(
    steps: list[list[dict[str, Any]]], cut: float, inventory: Inventory
) -> None:
    lines = merge([device_lines(d, s) for d, s in zip(DEVICES, steps, strict=True)], None)
    whole, _ = run(lines, engine(inventory))
    k = int(cut * len(lines))
    before, eng = run(lines[:k], engine(inventory))
    state = json.loads(json.dumps(eng.export_state()))  # what a collector would store
    restored = Engine.restore(inventory, RULES, state, default_policy="shanghai-energy")
    assert {f.id for f in restored.open_faults()} == {f.id for f in eng.open_faults()}
    after, _ = run(lines[k:], restored)
    assert by_subject(before + after) == by_subject(whole)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=8,
)
instants = st.sampled_from(["2026-11-25T02:00:00Z", "2026-11-25T02:05:00Z", "yesterday", 7])
odd_lines = st.one_of(
    st.text(max_size=30),
    st.fixed_dictionaries(
        {"at": instants},
        optional={
            "topic": st.sampled_from(
                ["fleet/v1/acme/a/telemetry", "fleet/v1/acme/a/state", "fleet/v1/x", "nope"]
            ),
            "payload": json_values,
            "trap": st.fixed_dictionaries(
                {"device": st.sampled_from(["a", "zz", "", "b/c"])},
                optional={"name": json_values, "oid": json_values, "varbinds": json_values},
            ),
            "maintenance": st.fixed_dictionaries(
                {"start": instants, "end": instants},
                optional={"device": json_values, "site": json_values},
            ),
            "other": json_values,
        },
    ).map(json.dumps),
)


@SETTINGS
@given(st.lists(odd_lines, max_size=20))
def test_any_line_is_used_or_skipped_never_a_crash(lines: list[str]) -> None:
    warnings: list[str] = []
    result = Replay(engine(LINKED), emit=lambda line: None).run(lines, warnings.append)
    assert result.bad_lines == len(warnings)
    assert all(w.startswith("line ") for w in warnings)


metric_values = st.one_of(
    st.booleans(),
    st.integers(-(2**40), 2**40),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(alphabet="abc", max_size=3),
)
METRICS = ("cpu_pct", "temp_c", "uptime_s", "serial_up", "if_wan_up", "disk_used_pct", "rsrp_dbm")
valid_inputs = st.one_of(
    st.dictionaries(st.sampled_from(METRICS), metric_values, max_size=4).map(
        lambda m: ("telemetry", m)
    ),
    st.sampled_from(["link_down", "link_up", "dying_gasp", "probe_error"]).map(
        lambda name: ("event", name)
    ),
    st.sampled_from(["online", "offline", "dying_gasp"]).map(lambda s: ("state", s)),
    st.sampled_from(["linkDown", "linkUp", "coldStart", "dyingGasp"]).map(lambda n: ("trap", n)),
    st.just(("birth", "")),
)


@SETTINGS
@given(
    st.lists(
        st.tuples(st.sampled_from(["a", "b", "c", "stray"]), st.integers(0, 2), valid_inputs),
        max_size=40,
    ),
    st.sampled_from([INVENTORY, LINKED]),
)
def test_any_valid_input_keeps_the_invariants(
    items: list[tuple[str, int, tuple[str, Any]]], inventory: Inventory
) -> None:
    rec = Recording()
    minute = 0
    for device, step_minutes, (kind, arg) in items:
        minute += step_minutes
        if kind == "telemetry":
            rec.telemetry(minute, device, **arg)
        elif kind == "event":
            rec.event(minute, device, arg, iface=1)
        elif kind == "state":
            rec.state(minute, device, arg)
        elif kind == "trap":
            rec.trap(minute, device, name=arg, ifIndex=[1])
        else:
            rec.birth(minute, device)
    rec.wait(minute + 90)
    out, eng = run([json.dumps(line) for line in rec.lines], engine(inventory))
    open_ids: set[str] = set()
    for e in out:
        assert e["onset"] <= e["at"]
        if e["event"] == "opened":
            assert e["id"] not in open_ids
            open_ids.add(e["id"])
        elif e["event"] in ("cleared", "absorbed"):
            open_ids.remove(e["id"])
    assert {f.id for f in eng.open_faults()} == open_ids
