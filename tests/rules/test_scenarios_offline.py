"""Scenarios through ``fleetdesk replay``: offline, site outage, topology, power, maintenance."""

from __future__ import annotations

from pathlib import Path

from tests.support.rules import Recording, at, brief, expect, inventory, replay, row


def test_absence_opens_at_three_missed_intervals_with_onset_at_the_first_due_report(
    tmp_path: Path,
) -> None:
    inv = inventory(tmp_path, row("gw1"))
    rec = Recording().steady("gw1", 0, 4, cpu_pct=5).wait(10).telemetry(12, "gw1", cpu_pct=5)
    result = replay(tmp_path, inv, rec)
    assert result.code == 0, result.stderr
    assert brief(result.events) == expect(
        ("opened", 7, "gw1", "device_offline", "A", 5, None),
        ("cleared", 12, "gw1", "device_offline", "A", 5, None),
    )
    opened = result.events[0]
    assert opened["impact"] == "outage" and opened["policy"] == "shanghai-energy"
    # shanghai-energy A: respond at once, processing 15 minutes, resolution 1 h, on 24x7
    assert opened["deadlines"] == {"response": at(5), "processing": at(20), "resolution": at(65)}


def test_retained_offline_state_opens_at_arrival_and_a_report_clears(tmp_path: Path) -> None:
    inv = inventory(tmp_path, row("gw1"))
    rec = Recording().steady("gw1", 0, 2).state(2.5, "gw1", "offline").telemetry(4, "gw1")
    result = replay(tmp_path, inv, rec)
    assert brief(result.events) == expect(
        ("opened", 2.5, "gw1", "device_offline", "A", 2.5, None),
        ("cleared", 4, "gw1", "device_offline", "A", 2.5, None),
    )


def test_unknown_device_is_not_judged_unless_its_tenant_is_adopted(tmp_path: Path) -> None:
    inv = inventory(tmp_path, row("gw1"))
    rec = Recording().steady("gw1", 0, 10).birth(0, "stray", interval_s=120).telemetry(1, "stray")
    rec.telemetry(2, "stray", disk_used_pct=99.0)
    result = replay(tmp_path, inv, rec, "--adopt", "other-tenant")
    assert result.code == 0, result.stderr
    assert result.events == []  # listed by the registry as unassigned, never a fault


def test_unknown_device_announced_by_birth_is_monitored_with_the_default_policy(
    tmp_path: Path,
) -> None:
    inv = inventory(tmp_path, row("gw1"))
    rec = Recording().steady("gw1", 0, 10).birth(0, "stray", interval_s=120).telemetry(1, "stray")
    result = replay(tmp_path, inv, rec, "--default-policy", "wthink", "--adopt", "acme")
    assert brief(result.events) == expect(
        # last report at 1, interval 120 s from its birth: due at 3, offline after 3 missed
        ("opened", 7, "stray", "device_offline", "urgent", 3, None),
    )
    assert result.events[0]["policy"] == "wthink"


def _site(tmp_path: Path, n: int = 3) -> Path:
    return inventory(tmp_path, *(row(f"s{i}", site="pump-1") for i in range(1, n + 1)))


def test_site_outage_absorbs_the_device_faults_and_lists_the_devices(tmp_path: Path) -> None:
    inv = _site(tmp_path)
    rec = (
        Recording()
        .steady("s1", 0, 4)
        .steady("s2", 0, 6)
        .steady("s3", 0, 20)
        .steady("s2", 15, 20)
        .steady("s1", 16, 20)
    )
    result = replay(tmp_path, inv, rec)
    assert brief(result.events) == expect(
        ("opened", 7, "s1", "device_offline", "A", 5, None),
        # 2 of 3 offline within 5 minutes: the site's outage, onset of its first device offline
        ("opened", 9, "pump-1", "site_outage", "A", 5, None),
        ("absorbed", 9, "s1", "device_offline", "A", 5, None),
        # s2 is back: one device offline is no longer a site outage; s1 gets a fresh chance
        # to report (3 more intervals) and does
        ("cleared", 15, "pump-1", "site_outage", "A", 5, None),
    )
    site = result.events[1]
    assert site["devices"] == ["s1", "s2"] and site["scope"] == "site"
    assert result.events[2]["into"] == site["id"]


def test_devices_going_offline_at_once_give_one_site_fault(tmp_path: Path) -> None:
    inv = _site(tmp_path, 4)
    rec = Recording().steady("s1", 0, 4).steady("s2", 0, 4).steady("s3", 0, 12).steady("s4", 0, 12)
    result = replay(tmp_path, inv, rec)
    assert brief(result.events) == expect(("opened", 7, "pump-1", "site_outage", "A", 5, None))
    assert result.events[0]["devices"] == ["s1", "s2"]


def test_offline_devices_more_than_five_minutes_apart_are_no_site_outage(tmp_path: Path) -> None:
    inv = _site(tmp_path)
    rec = Recording().steady("s1", 0, 2).steady("s2", 0, 9).steady("s3", 0, 14)
    result = replay(tmp_path, inv, rec)
    assert brief(result.events) == expect(
        ("opened", 5, "s1", "device_offline", "A", 3, None),
        ("opened", 12, "s2", "device_offline", "A", 10, None),
    )


def test_site_outage_needs_at_least_two_devices(tmp_path: Path) -> None:
    inv = inventory(tmp_path, row("solo", site="pump-9"))
    result = replay(tmp_path, inv, Recording().steady("solo", 0, 1).wait(6))
    assert brief(result.events) == expect(("opened", 4, "solo", "device_offline", "A", 2, None))


def _topology(tmp_path: Path) -> Path:
    return inventory(
        tmp_path,
        row("gw1"),
        row("dtu1", cls="dtu", model="WD150", parent="gw1"),
        row("dtu2", cls="dtu", model="WD150", parent="dtu1"),
    )


def test_children_of_an_offline_parent_raise_nothing(tmp_path: Path) -> None:
    inv = _topology(tmp_path)
    rec = Recording()
    for device in ("gw1", "dtu1", "dtu2"):
        rec.steady(device, 0, 4).telemetry(20, device)
    result = replay(tmp_path, inv, rec)
    assert brief(result.events) == expect(
        ("opened", 7, "gw1", "device_offline", "A", 5, None),
        ("cleared", 20, "gw1", "device_offline", "A", 5, None),
    )


def test_a_child_still_offline_when_its_parent_returns_opens_then(tmp_path: Path) -> None:
    inv = _topology(tmp_path)
    rec = Recording().steady("gw1", 0, 4).steady("gw1", 12, 14).steady("dtu1", 0, 4)
    rec.steady("dtu2", 0, 4).steady("dtu2", 12, 16).wait(16)
    result = replay(tmp_path, inv, rec)
    assert brief(result.events) == expect(
        ("opened", 7, "gw1", "device_offline", "A", 5, None),
        ("cleared", 12, "gw1", "device_offline", "A", 5, None),
        # dtu1 had three intervals from gw1's return to report; its own fault is due from 13
        ("opened", 15, "dtu1", "device_offline", "A", 13, None),
    )


def test_a_child_fault_raised_before_its_parent_is_found_is_absorbed(tmp_path: Path) -> None:
    inv = inventory(
        tmp_path, row("gw1", interval_s=120), row("dtu1", cls="dtu", parent="gw1", interval_s=60)
    )
    rec = Recording().steady("gw1", 0, 4).steady("dtu1", 0, 4).wait(12)
    result = replay(tmp_path, inv, rec)
    parent = "device/gw1/device_offline@" + at(6)
    assert brief(result.events) == expect(
        ("opened", 7, "dtu1", "device_offline", "A", 5, None),
        ("opened", 10, "gw1", "device_offline", "A", 6, None),
        ("absorbed", 10, "dtu1", "device_offline", "A", 5, None),
    )
    assert result.events[2]["into"] == parent


def test_dying_gasp_event_makes_the_offline_fault_exempt_power_outage(tmp_path: Path) -> None:
    inv = inventory(tmp_path, row("gw1"), row("gw2"))
    rec = Recording().steady("gw1", 0, 4).event(4.5, "gw1", "dying_gasp").steady("gw2", 0, 4)
    rec.wait(9)
    result = replay(tmp_path, inv, rec)
    assert brief(result.events) == expect(
        ("opened", 7, "gw2", "device_offline", "A", 5, None),
        ("opened", 7.5, "gw1", "device_offline", "A", 5.5, "power_outage"),
    )
    assert result.events[1]["deadlines"] == {}
    assert result.events[0]["deadlines"] != {}


def test_retained_dying_gasp_state_and_trap_are_power_outages(tmp_path: Path) -> None:
    inv = inventory(tmp_path, row("gw1"), row("gw2"))
    rec = Recording().steady("gw1", 0, 2).state(2.5, "gw1", "dying_gasp")
    rec.steady("gw2", 0, 3).trap(3.5, "gw2", name="dyingGasp").wait(7)
    result = replay(tmp_path, inv, rec)
    assert brief(result.events) == expect(
        ("opened", 2.5, "gw1", "device_offline", "A", 2.5, "power_outage"),
        ("opened", 6.5, "gw2", "device_offline", "A", 4.5, "power_outage"),
    )


def test_a_site_of_power_outages_is_an_exempt_site_outage(tmp_path: Path) -> None:
    inv = _site(tmp_path)
    rec = Recording().steady("s3", 0, 8)
    for device in ("s1", "s2"):
        rec.steady(device, 0, 2).state(2.5, device, "dying_gasp")
    result = replay(tmp_path, inv, rec)
    assert brief(result.events) == expect(
        ("opened", 2.5, "s1", "device_offline", "A", 2.5, "power_outage"),
        ("opened", 2.5, "pump-1", "site_outage", "A", 2.5, "power_outage"),
        ("absorbed", 2.5, "s1", "device_offline", "A", 2.5, "power_outage"),
    )


def test_nothing_is_raised_inside_a_maintenance_window(tmp_path: Path) -> None:
    inv = inventory(tmp_path, row("gw1"))
    rec = Recording().maintenance(0, 2, 30, device="gw1").steady("gw1", 0, 4).steady("gw1", 15, 40)
    rec.telemetry(8, "gw1", disk_used_pct=99).telemetry(16, "gw1", disk_used_pct=50).wait(40)
    result = replay(tmp_path, inv, rec)
    assert result.events == []


def test_a_fault_still_active_at_the_window_end_is_raised_then(tmp_path: Path) -> None:
    inv = inventory(tmp_path, row("gw1"))
    rec = Recording().maintenance(0, 2, 30, device="gw1").steady("gw1", 0, 4).wait(40)
    rec.telemetry(41, "gw1")
    result = replay(tmp_path, inv, rec)
    assert brief(result.events) == expect(
        ("opened", 30, "gw1", "device_offline", "A", 30, None),
        ("cleared", 41, "gw1", "device_offline", "A", 30, None),
    )
    assert result.events[0]["deadlines"]["processing"] == at(45)


def test_a_site_window_holds_every_device_of_the_site(tmp_path: Path) -> None:
    inv = _site(tmp_path)
    rec = Recording().maintenance(0, 1, 10, site="pump-1")
    for device in ("s1", "s2", "s3"):
        rec.steady(device, 0, 2)
    rec.steady("s3", 8, 12).wait(12)
    result = replay(tmp_path, inv, rec)
    # at the window's end two of three are still offline: one site fault, clock from the end
    assert brief(result.events) == expect(("opened", 10, "pump-1", "site_outage", "A", 10, None))
    assert result.events[0]["devices"] == ["s1", "s2"]


def test_a_threshold_confirmed_after_the_window_starts_its_clock_at_the_window_end(
    tmp_path: Path,
) -> None:
    inv = inventory(tmp_path, row("gw1"))
    rec = Recording().maintenance(0, 0, 5, device="gw1").steady("gw1", 0, 20, temp_c=80)
    result = replay(tmp_path, inv, rec)
    # breaching since 0 (inside the window), confirmed at 5 (the window's end): onset 5
    assert brief(result.events) == expect(("opened", 5, "gw1", "temperature_high", "B", 5, None))


def test_a_window_announced_after_the_fact_makes_open_faults_in_it_exempt(tmp_path: Path) -> None:
    inv = _site(tmp_path)
    rec = Recording().steady("s3", 0, 30).steady("s1", 0, 30, disk_used_pct=99)
    rec.steady("s2", 0, 3).steady("s2", 25, 30)
    rec.maintenance(10, 0, 20, device="s1").maintenance(12, 8, 20, device="s2")
    result = replay(tmp_path, inv, rec)
    assert brief(result.events) == expect(
        ("opened", 0, "s1", "disk_full", "C", 0, None),
        ("opened", 6, "s2", "device_offline", "A", 4, None),
        # s1's window covers its fault's onset: the fault stays open but owes no SLA
        ("exempted", 10, "s1", "disk_full", "C", 0, "maintenance"),
        # s2's window starts after its fault's onset: nothing changes
        ("cleared", 25, "s2", "device_offline", "A", 4, None),
    )
    assert result.events[2]["deadlines"] == {}
    assert result.events[2]["id"] == result.events[0]["id"]


def test_a_flapping_parent_gives_one_flapping_fault_and_nothing_for_its_child(
    tmp_path: Path,
) -> None:
    inv = inventory(tmp_path, row("gw1"), row("dtu1", cls="dtu", model="WD150", parent="gw1"))
    rec = Recording()
    for device in ("gw1", "dtu1"):
        for m in (0, 1, 5, 9, 13, 17, 18, 19, 20):  # silent for 3 intervals, four times
            rec.telemetry(m, device)
    result = replay(tmp_path, inv, rec)
    assert brief(result.events) == expect(
        ("opened", 4, "gw1", "device_offline", "A", 2, None),
        ("cleared", 5, "gw1", "device_offline", "A", 2, None),
        ("opened", 8, "gw1", "device_offline", "A", 6, None),
        ("cleared", 9, "gw1", "device_offline", "A", 6, None),
        ("opened", 12, "gw1", "device_offline", "A", 10, None),
        ("cleared", 13, "gw1", "device_offline", "A", 10, None),
        ("opened", 16, "gw1", "flapping", "D", 4, None),
    )
    assert result.events[-1]["detail"] == {"of": "device_offline", "opens": 4}


def test_maintenance_windows_announced_in_a_yaml_inventory(tmp_path: Path) -> None:
    inv = tmp_path / "inventory.yaml"
    inv.write_text(
        f"""
devices:
  - {{device: gw1, tenant: acme, model: WR5120, class: router, site: s1, parent: null,
     criticality: common, customer: acme, policy: shanghai-energy, warranty_start: 2026-01-10,
     warranty_months: 12, interval_s: 60}}
  - {{device: gw2, tenant: acme, model: WR5120, class: router, site: s2, parent: null,
     criticality: common, customer: acme, policy: shanghai-energy, warranty_start: 2026-01-10,
     warranty_months: 12, interval_s: 60}}
maintenance:
  - {{device: gw1, start: "{at(0)}", end: "{at(10)}"}}
""",
        encoding="utf-8",
    )
    rec = Recording().steady("gw1", 0, 2).steady("gw1", 8, 12).steady("gw2", 0, 2).wait(6)
    result = replay(tmp_path, inv, rec)
    assert brief(result.events) == expect(("opened", 5, "gw2", "device_offline", "A", 3, None))
