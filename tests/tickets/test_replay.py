"""Every ticket lifecycle path through ``fleetdesk replay``, with expected lines.

Recordings are built here from retained device states (offline/online), events and desk lines;
the shipped rules, policies and calendars decide faults, levels and instants.
"""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

from collector import cli
from tests.support.replay import INVENTORY, Rec, brief, replay, ts

N1 = "FD-20251009-0001"
D10, D11 = "2025-10-10T", "2025-10-11T"


def test_open_ack_clear_then_close_after_followup(tmp_path: Path) -> None:
    rec = (
        Rec()
        .state(0, "gw1", "offline")
        .desk(30, fault=N1, action="ack", actor="alice")
        .state(90, "gw1", "online")
        .wait(90 + 24 * 60 + 1)
    )
    out = replay(tmp_path, rec)
    assert out.code == 0, out.stderr
    # xian-integrator level 3 (outage of a common device): response 4 h; follow-up 24 h.
    assert brief(out.tickets, "device", "state", "reason") == [
        ("ticket_opened", ts(0), N1, "gw1", "open", None),
        ("acknowledged", ts(30), N1, "gw1", "acknowledged", None),
        ("resolved", ts(90), N1, "gw1", "resolved", "fault_cleared"),
        ("closed", ts(90 + 24 * 60), N1, "gw1", "closed", "followup_done"),
    ]
    assert out.tickets[0]["level"] == "3" and out.tickets[0]["policy"] == "xian-integrator"


def test_fault_back_within_followup_reopens_same_ticket(tmp_path: Path) -> None:
    rec = (
        Rec()
        .state(0, "gw1", "offline")
        .state(10, "gw1", "online")
        .state(600, "gw1", "offline")  # 10 h later: inside the 24 h follow-up
        .state(700, "gw1", "online")
        .wait(700 + 24 * 60)
        .state(700 + 24 * 60 + 5, "gw1", "offline")  # after the close: a new ticket
    )
    out = replay(tmp_path, rec)
    assert out.code == 0, out.stderr
    assert brief(out.tickets, "reason") == [
        ("ticket_opened", ts(0), N1, None),
        ("resolved", ts(10), N1, "fault_cleared"),
        ("reopened", ts(600), N1, "fault_returned"),
        ("resolved", ts(700), N1, "fault_cleared"),
        ("closed", ts(700 + 24 * 60), N1, "followup_done"),
        ("ticket_opened", ts(700 + 24 * 60 + 5), "FD-20251010-0001", None),
    ]


def test_desk_resolved_but_fault_stays_reopens_after_followup(tmp_path: Path) -> None:
    rec = (
        Rec()
        .state(0, "gw1", "offline")
        .desk(60, fault="device_offline", device="gw1", action="resolve")
        .wait(60 + 24 * 60 + 1)
    )
    out = replay(tmp_path, rec)
    assert out.code == 0, out.stderr
    assert brief(out.tickets, "reason") == [
        ("ticket_opened", ts(0), N1, None),
        ("resolved", ts(60), N1, "desk"),
        ("reopened", ts(60 + 24 * 60), N1, "fault_persisted"),
    ]


def test_escalation_instants_on_the_hotline_calendar(tmp_path: Path) -> None:
    # wthink: outage -> urgent on the 7x8 hotline (09:00-17:00 Asia/Shanghai every day).
    # Onset 16:00 local: response 1 h due at 17:00 closing time; onsite 1wd = 8 h; resolution
    # 2wd = 16 h; second line at 50 % of resolution, warning at 75 %, breach at 100 %.
    rec = Rec().state(0, "hot1", "offline").desk(20, fault=N1, action="ack").wait(3 * 24 * 60)
    out = replay(tmp_path, rec)
    assert out.code == 0, out.stderr
    assert brief(out.tickets, "target", "action", "due") == [
        ("ticket_opened", ts(0), N1, None, None, None),
        ("acknowledged", ts(20), N1, None, None, None),
        ("escalated", D10 + "06:00:00.000Z", N1, "onsite", "warning", D10 + "06:00:00.000Z"),
        (
            "escalated",
            D10 + "08:00:00.000Z",
            N1,
            "resolution",
            "second_line",
            D10 + "08:00:00.000Z",
        ),
        ("breached", D10 + "08:00:00.000Z", N1, "onsite", "breach", D10 + "08:00:00.000Z"),
        ("escalated", D11 + "04:00:00.000Z", N1, "resolution", "warning", D11 + "04:00:00.000Z"),
        ("breached", D11 + "08:00:00.000Z", N1, "resolution", "breach", D11 + "08:00:00.000Z"),
    ]


def test_pause_waiting_on_customer_and_onsite(tmp_path: Path) -> None:
    # xian level 3: response 4 h. Paused for 2 h, the 75 % warning moves from 3 h to 5 h.
    rec = (
        Rec()
        .state(0, "gw1", "offline")
        .desk(60, fault=N1, action="pause")
        .desk(180, fault=N1, action="resume")
        .wait(5 * 60)
        .desk(5 * 60 + 30, fault=N1, action="onsite")
        .wait(10 * 60)
    )
    out = replay(tmp_path, rec)
    assert out.code == 0, out.stderr
    assert brief(out.tickets, "target") == [
        ("ticket_opened", ts(0), N1, None),
        ("paused", ts(60), N1, None),
        ("resumed", ts(180), N1, None),
        ("escalated", ts(5 * 60), N1, "response"),
        ("onsite", ts(5 * 60 + 30), N1, None),  # also meets the response, before its 6 h due
    ]


def test_coverage_in_warranty_expired_and_exempt(tmp_path: Path) -> None:
    rec = (
        Rec()
        .state(0, "gw1", "offline")  # in warranty until 2027
        .state(1, "gw2", "offline")  # 2020 + 36 months: expired
        .event(2, "gw3", "dying_gasp")
        .state(3, "gw3", "offline")  # power outage, but 003 names no exemption: SLA owed
        .event(4, "hot1", "dying_gasp")
        .state(5, "hot1", "offline")  # power outage under 000, which names it: exempt
        .wait(3 * 24 * 60)
    )
    out = replay(tmp_path, rec)
    assert out.code == 0, out.stderr
    opened = {x["device"]: x for x in out.tickets if x["event"] == "ticket_opened"}
    assert (opened["gw1"]["coverage"], opened["gw1"]["coverage_reason"]) == (
        "warranty",
        "in_warranty",
    )
    assert (opened["gw2"]["coverage"], opened["gw2"]["coverage_reason"]) == (
        "billable",
        "warranty_expired",
    )
    gw3 = opened["gw3"]
    assert (gw3["coverage"], gw3["coverage_reason"], gw3["claimed_exemption"]) == (
        "billable",
        "warranty_expired",
        "power_outage",
    )
    assert "breached" in [x["event"] for x in out.tickets if x["ticket"] == gw3["ticket"]]
    assert (opened["hot1"]["coverage"], opened["hot1"]["coverage_reason"]) == (
        "exempt",
        "exempt_power_outage",
    )
    hot1 = opened["hot1"]["ticket"]
    assert [x["event"] for x in out.tickets if x["ticket"] == hot1] == ["ticket_opened"]


def test_coverage_extended_after_repair(tmp_path: Path) -> None:
    # gw4 and gw5: accepted 2022-10-12, xian-integrator's 36 months: warranty ends 2025-10-12.
    # gw4 spends two days in a repair ticket, so its warranty is extended to 2025-10-14.
    day = 24 * 60
    rec = (
        Rec()
        .state(0, "gw4", "offline")
        .desk(2 * day, fault="device_offline", device="gw4", action="resolve", repaired=True)
        .state(2 * day, "gw4", "online")
        .wait(3 * day + 1)
        .state(4 * day, "gw4", "offline")  # 2025-10-13
        .state(4 * day, "gw5", "offline")
    )
    out = replay(tmp_path, rec)
    assert out.code == 0, out.stderr
    opened = [
        (x["device"], x["at"][:10], x["coverage"], x["coverage_reason"])
        for x in out.tickets
        if x["event"] == "ticket_opened"
    ]
    assert opened == [
        ("gw4", "2025-10-09", "warranty", "in_warranty"),
        ("gw4", "2025-10-13", "warranty", "extended_after_repair"),
        ("gw5", "2025-10-13", "billable", "warranty_expired"),
    ]


def test_maintenance_announced_after_the_fact_cancels(tmp_path: Path) -> None:
    # 000 (hot1, wthink) names announced maintenance as an exemption: the ticket is void.
    rec = Rec().state(10, "hot1", "offline").maintenance(30, start=0, end=60, device="hot1")
    out = replay(tmp_path, rec)
    assert out.code == 0, out.stderr
    assert brief(out.tickets, "reason") == [
        ("ticket_opened", ts(10), N1, None),
        ("cancelled", ts(30), N1, "exempt_maintenance"),
    ]


def test_late_maintenance_under_a_policy_without_that_exemption(tmp_path: Path) -> None:
    # 003 (gw1) names no exemption: the ticket stays and says what was claimed.
    rec = Rec().state(10, "gw1", "offline").maintenance(30, start=0, end=60, device="gw1")
    out = replay(tmp_path, rec)
    assert out.code == 0, out.stderr
    assert brief(out.tickets, "reason", "claimed_exemption") == [
        ("ticket_opened", ts(10), N1, None, None),
        ("commented", ts(30), N1, "exemption_not_in_policy", "maintenance"),
    ]


def test_bad_desk_lines_are_skipped_with_a_reason(tmp_path: Path) -> None:
    rec = (
        Rec()
        .state(0, "gw1", "offline")
        .desk(1, fault="FD-20251009-0099", action="ack")
        .desk(2, fault="cpu_high", device="gw1", action="ack")
        .desk(3, fault=N1, action="reboot")
        .desk(4, fault=N1, action="ack")
    )
    out = replay(tmp_path, rec)
    assert out.code == 1
    assert out.stderr.splitlines() == [
        f"fleetdesk replay: {tmp_path / 'rec.jsonl'}: line 2: desk ack refused: "
        "no ticket numbered FD-20251009-0099; skipped",
        f"fleetdesk replay: {tmp_path / 'rec.jsonl'}: line 3: desk: no open ticket for "
        "device:gw1/cpu_high; skipped",
        f"fleetdesk replay: {tmp_path / 'rec.jsonl'}: line 4: desk: 'action' must be one of "
        "ack, onsite, resolve, pause, resume, comment, cancel, received, start, set_level, exempt, "
        "coverage, defer; skipped",
    ]
    assert [x["event"] for x in out.tickets] == ["ticket_opened", "acknowledged"]


def test_no_tickets_flag_prints_fault_lines_only(tmp_path: Path) -> None:
    inv = tmp_path / "inventory.csv"
    inv.write_text(INVENTORY)
    path = tmp_path / "rec.jsonl"
    path.write_text("".join(json.dumps(x) + "\n" for x in Rec().state(0, "gw1", "offline").lines))
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert cli.main(["replay", "--no-tickets", "--inventory", str(inv), str(path)]) == 0
    assert [json.loads(x)["event"] for x in out.getvalue().splitlines()] == ["opened"]


def test_site_outage_absorbs_device_tickets(tmp_path: Path) -> None:
    # gw4 and gw5 share a site here: both offline -> one site outage (xian: emergency).
    rec = Rec().state(0, "gw4", "offline").state(1, "gw5", "offline").wait(2)
    inventory = INVENTORY.replace(",s6,", ",s5,")
    out = replay(tmp_path, rec, inventory)
    assert out.code == 0, out.stderr
    assert [(x["event"], x.get("device") or x.get("site"), x.get("reason"), x["level"])
            for x in out.tickets] == [
        ("ticket_opened", "gw4", None, "3"),
        ("ticket_opened", "s5", None, "emergency"),
        ("escalated", "s5", None, "emergency"),  # 003 emergency: immediate response
        ("breached", "s5", None, "emergency"),
        ("cancelled", "gw4", "absorbed", "3"),
    ]  # fmt: skip
    # The site outage takes its coverage from gw4 and gw5 (in warranty until 2025-10-12).
    site = out.tickets[1]
    assert (site["coverage"], site["coverage_reason"], site["charge"]) == (
        "warranty",
        "member_in_warranty",
        "free",
    )
