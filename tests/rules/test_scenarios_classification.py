"""Each preset classifies the same faults into its own levels (through ``fleetdesk replay``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.rules import Recording, inventory, replay, row

# (subject, fault) -> level, per preset, as the classification tables say.
SUBJECTS = [
    ("plant", "site_outage"),
    ("c1", "device_offline"),  # a common device
    ("u1", "device_offline"),  # an uncommon device
    ("t1", "temperature_high"),
    ("dtu1", "serial_link_down"),
    ("i1", "interface_down"),
    ("cpu1", "cpu_high"),
    ("w1", "wan_loss"),
    ("r1", "reboot"),
    ("f1", "disk_full"),
    ("f1", "flapping"),
]
LEVELS = {
    "shanghai-energy": ["A", "A", "A", "B", "A", "B", "C", "C", "D", "C", "D"],
    # 003: levels 2/3 are "abnormal or interrupted": degraded service counts (cpu, wan, disk)
    "xian-integrator": ["emergency", "3", "2", "1", "3", "1", "3", "3", "1", "3", "1"],
    "nanjing-instruments": [
        "major",
        "major",
        "major",
        "major",
        "important",
        "important",
        "general",
        "general",
        "major",
        "general",
        "general",
    ],
    "mtbox": [
        "platform",
        "hardware",
        "hardware",
        "hardware",
        "hardware",
        "hardware",
        "platform",
        "platform",
        "hardware",
        "platform",
        "platform",
    ],
    "wthink": [
        "urgent",
        "urgent",
        "urgent",
        "normal",
        "urgent",
        "normal",
        "normal",
        "normal",
        "normal",
        "normal",
        "normal",
    ],
}


@pytest.mark.parametrize("policy", sorted(LEVELS))
def test_preset_classification(tmp_path: Path, policy: str) -> None:
    inv = inventory(
        tmp_path,
        *(row(p, site="plant", policy=policy) for p in ("p1", "p2", "p3")),
        row("c1", policy=policy),
        row("u1", policy=policy, criticality="uncommon"),
        *(row(d, policy=policy) for d in ("t1", "i1", "cpu1", "w1", "r1", "f1")),
        row("dtu1", cls="dtu", model="WD150", policy=policy),
    )
    rec = Recording()
    for device in ("p1", "p2", "c1", "u1"):
        rec.steady(device, 0, 4)
    rec.steady("p3", 0, 12)
    rec.steady("t1", 0, 12, temp_c=80).steady("dtu1", 0, 12, serial_up=False)
    rec.steady("i1", 0, 12).trap(1, "i1", name="linkDown", ifIndex=1)
    rec.steady("cpu1", 0, 12, cpu_pct=95).steady("w1", 0, 12, ping_loss_pct=30)
    for m in range(13):
        rec.telemetry(m, "r1", uptime_s=5000 + 60 * m if m < 3 else 60 * m)
        rec.telemetry(m, "f1", disk_used_pct=99 if m % 2 == 0 and m < 8 else 50)
    result = replay(tmp_path, inv, rec)
    assert result.code == 0, result.stderr
    levels = {
        (e.get("device") or e.get("site"), e["fault"]): e["level"]
        for e in result.events
        if e["event"] == "opened"
    }
    assert levels == dict(zip(SUBJECTS, LEVELS[policy], strict=True))
    assert {e["policy"] for e in result.events} == {policy}
    # every classified, non-exempt fault carries the level's deadlines, except a level whose
    # only target a desk action starts (002 hardware: the repair cycle from the unit's receipt)
    assert all(
        e["deadlines"] or (policy, e["level"]) == ("mtbox", "hardware")
        for e in result.events
        if e["event"] == "opened"
    )
