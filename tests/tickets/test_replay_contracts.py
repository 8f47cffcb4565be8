"""The contracts as the seeds wrote them, through ``fleetdesk replay`` (shipped presets).

Shanghai A's processing and resolution targets (001), a degraded common device at Xi'an's
level 3 (003), Nanjing's special raised by a desk action (004) and a repair clock started by
the "received" desk action (002, 004). Site-outage coverage and power outages under a policy
without that exemption are in test_replay.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.support.replay import INVENTORY, Rec, replay, ts

INV = INVENTORY + (
    "sh1,acme,WR630,router,s7,,common,east-grid,shanghai-energy,2025-06-01,12,604800\n"
    "nj1,acme,WD150,dtu,s8,,common,survey-co,nanjing-instruments,2025-06-01,12,604800\n"
    "mt1,acme,MT-BOX,cloudbox,s9,,common,acme,mtbox,2025-06-01,,604800\n"
)
N1 = "FD-20251009-0001"


def telemetry(rec: Rec, minutes: float, device: str, seq: int, **metrics: Any) -> Rec:
    payload = {"v": 1, "device": device, "ts": ts(minutes), "boot": "b1", "seq": seq,
               "metrics": metrics}  # fmt: skip
    topic = f"fleet/v1/acme/{device}/telemetry"
    rec.lines.append({"at": ts(minutes), "topic": topic, "payload": payload})
    return rec


def hot_cpu(rec: Rec, device: str) -> Rec:
    """cpu_pct 97 a minute for 11 minutes: the default rule's 10 min above 90 (degraded)."""
    for m in range(12):
        telemetry(rec, m, device, m + 1, cpu_pct=97)
    return rec


def steps(out: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return [(x["event"], x["at"], x.get("target"), x.get("action")) for x in out]


def test_shanghai_class_a_processing_then_resolution(tmp_path: Path) -> None:
    # 001 class A: response immediate, processing 15 min, resolution 1 h (7x24).
    rec = Rec().state(0, "sh1", "offline").wait(61)
    out = replay(tmp_path, rec, INV)
    assert out.code == 0, out.stderr
    assert steps(out.tickets) == [
        ("ticket_opened", ts(0), None, None),
        ("escalated", ts(0), "response", "warning"),
        ("breached", ts(0), "response", "breach"),
        ("escalated", ts(0 + 11.25), "processing", "warning"),
        ("breached", ts(15), "processing", "breach"),
        ("escalated", ts(45), "resolution", "warning"),
        ("breached", ts(60), "resolution", "breach"),
    ]
    assert out.tickets[0]["level"] == "A" and out.tickets[0]["charge"] == "free"


def test_shanghai_class_c_is_deferred_to_a_release(tmp_path: Path) -> None:
    # 001 C/D: no resolution deadline; the desk notes the release that fixes it.
    rec = hot_cpu(Rec(), "sh1")
    rec.desk(12, fault="cpu_high", device="sh1", action="defer", release="EMU 4.2")
    out = replay(tmp_path, rec, INV)
    assert out.code == 0, out.stderr
    opened = out.tickets[0]
    assert (opened["event"], opened["level"], opened["deferred_to_release"]) == (
        "ticket_opened",
        "C",
        True,
    )
    deferred = [x for x in out.tickets if x["event"] == "deferred"]
    assert [(x["release"], x["deferred_to_release"]) for x in deferred] == [("EMU 4.2", "EMU 4.2")]


def test_xian_degraded_common_device_is_level_3(tmp_path: Path) -> None:
    # 003: "a commonly used device is abnormal or interrupted": degraded service counts.
    rec = hot_cpu(Rec(), "gw1")
    out = replay(tmp_path, rec, INV)
    assert out.code == 0, out.stderr
    [fault] = [x for x in out.faults if x["event"] == "opened"]
    assert (fault["fault"], fault["impact"], fault["level"]) == ("cpu_high", "degraded", "3")
    assert out.tickets[0]["level"] == "3"


def test_nanjing_special_is_set_by_a_person(tmp_path: Path) -> None:
    # 004: "special" needs foreign support or R&D: the desk raises it, saying who and why;
    # its clocks run from the onset: response 30 min (already met), solution within 24 h.
    rec = (
        Rec()
        .state(0, "nj1", "offline")
        .desk(10, fault=N1, action="ack", actor="li")
        .desk(
            60,
            fault=N1,
            action="set_level",
            level="special",
            actor="wang",
            comment="needs the vendor's R&D",
        )
        .desk(70, fault=N1, action="set_level", level="special", actor="wang")
        .wait(24 * 60 + 1)
    )
    out = replay(tmp_path, rec, INV)
    assert out.code == 1  # the second set_level has no reason: refused, skipped
    assert "set_level needs a reason" in out.stderr
    changed = [x for x in out.tickets if x["event"] == "level_changed"]
    assert [(x["level"], x["previous_level"], x["actor"], x["why"]) for x in changed] == [
        ("special", "major", "wang", "needs the vendor's R&D")
    ]
    breaches = [(x["at"], x["target"]) for x in out.tickets if x["event"] == "breached"]
    assert breaches == [(ts(24 * 60), "resolution")]  # from the onset, not from the change


def test_repair_clock_starts_when_the_unit_is_received(tmp_path: Path) -> None:
    # 002: repair cycle 5 working days from the unit's receipt (transport excluded).
    # Thursday 2025-10-09 16:00 Beijing: offline; the unit arrives Monday 2025-10-13 10:00.
    monday = 4 * 24 * 60 - 6 * 60
    rec = (
        Rec()
        .state(0, "mt1", "offline")
        .desk(monday, fault="device_offline", device="mt1", action="received", actor="rma")
        .desk(monday + 1, fault="device_offline", device="mt1", action="start", target="plan")
        .wait(monday + 10 * 24 * 60)
    )
    out = replay(tmp_path, rec, INV)
    assert out.code == 1  # mtbox hardware has no "plan" target: refused, skipped
    assert "has no target started by target 'plan'" in out.stderr
    opened = out.tickets[0]
    assert (opened["level"], opened["event"]) == ("hardware", "ticket_opened")
    started = [x for x in out.tickets if x["event"] == "target_started"]
    assert [(x["at"], x["targets"]) for x in started] == [(ts(monday), ["repair"])]
    # 5 working days of 9 h (45 h) from Monday 10:00: Mon 10-18 (8), Tue-Thu (27),
    # Fri 09-18 (9): 44 h, the last hour on Monday 20 October, due 10:00 Beijing.
    breach = [x for x in out.tickets if x["event"] == "breached"]
    assert [(x["target"], x["due"]) for x in breach] == [("repair", "2025-10-20T02:00:00.000Z")]
