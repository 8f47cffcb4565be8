"""Scenarios through ``fleetdesk replay`` for every default rule besides offline and site."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.support.rules import Recording, at, brief, expect, inventory, replay, row


def _one(tmp_path: Path, **kw: str) -> Path:
    return inventory(tmp_path, row("d1", **kw))  # type: ignore[arg-type]


# (fault, metric, breach, between, clear, for minutes, level on shanghai-energy)
THRESHOLDS = [
    ("temperature_high", "temp_c", 76, 72, 69, 5, "B"),
    ("cpu_high", "cpu_pct", 95, 85, 79, 10, "C"),
    ("memory_high", "mem_used_pct", 92, 87, 84, 10, "C"),
    ("disk_full", "disk_used_pct", 96, 92, 89, 0, "C"),
    ("cellular_signal_weak", "rsrp_dbm", -115, -107, -104, 10, "C"),
    ("wan_loss", "ping_loss_pct", 30, 10, 4, 5, "C"),
]


@pytest.mark.parametrize(
    ("fault", "metric", "breach", "between", "clear", "minutes", "level"), THRESHOLDS
)
def test_threshold_with_for_hysteresis_and_onset_at_the_first_breaching_sample(  # noqa: PLR0917
    tmp_path: Path,
    fault: str,
    metric: str,
    breach: float,
    between: float,
    clear: float,
    minutes: int,
    level: str,
) -> None:
    normal = {
        "temp_c": 50,
        "cpu_pct": 10,
        "mem_used_pct": 40,
        "disk_used_pct": 50,
        "rsrp_dbm": -90,
        "ping_loss_pct": 0,
    }[metric]
    rec = Recording().steady("d1", 0, 2, **{metric: normal})
    # a breach shorter than `for` raises nothing (only when `for` is not zero)
    if minutes:
        rec.steady("d1", 3, 3 + minutes - 1, **{metric: breach}).telemetry(
            3 + minutes, "d1", **{metric: normal}
        )
    start = 3 + minutes + 1
    rec.steady("d1", start, start + minutes, **{metric: breach})
    rec.steady("d1", start + minutes + 1, start + minutes + 3, **{metric: between})  # hysteresis
    end = start + minutes + 4
    rec.telemetry(end, "d1", **{metric: clear}).steady("d1", end + 1, end + 2, **{metric: normal})
    result = replay(tmp_path, _one(tmp_path), rec)
    assert result.code == 0, result.stderr
    assert brief(result.events) == expect(
        ("opened", start + minutes, "d1", fault, level, start, None),
        ("cleared", end, "d1", fault, level, start, None),
    )
    assert result.events[0]["rule"] == fault


def test_serial_link_down_for_two_minutes_on_a_dtu_only(tmp_path: Path) -> None:
    inv = inventory(tmp_path, row("dtu1", cls="dtu", model="WD150"), row("gw1"))
    rec = Recording()
    for device in ("dtu1", "gw1"):
        rec.steady(device, 0, 1, serial_up=True).steady(device, 2, 4, serial_up=False)
        rec.steady(device, 5, 6, serial_up=True)
    result = replay(tmp_path, inv, rec)
    assert brief(result.events) == expect(
        ("opened", 4, "dtu1", "serial_link_down", "A", 2, None),
        ("cleared", 5, "dtu1", "serial_link_down", "A", 2, None),
    )


def test_interface_down_by_link_traps_per_interface(tmp_path: Path) -> None:
    rec = Recording().steady("d1", 0, 10)
    rec.trap(1, "d1", oid="1.3.6.1.6.3.1.1.5.3", ifIndex=2)  # linkDown by OID
    rec.trap(2, "d1", name="linkDown", ifIndex=3)
    rec.trap(3, "d1", name="linkUp", ifIndex=2)  # interface 3 is still down
    rec.trap(4, "d1", name="linkUp", ifIndex=3)
    result = replay(tmp_path, _one(tmp_path), rec)
    assert brief(result.events) == expect(
        ("opened", 1, "d1", "interface_down", "B", 1, None),
        ("cleared", 4, "d1", "interface_down", "B", 1, None),
    )
    assert result.events[0]["detail"] == {"ifIndex": "2"}
    assert result.events[0]["impact"] == "at_risk"


def test_interface_down_by_agent_event_and_by_monitored_interface_metric(tmp_path: Path) -> None:
    rec = Recording().steady("d1", 0, 10, if_lan_up=False)
    rec.event(1, "d1", "link_down", iface="wwan0").event(2, "d1", "link_up", iface="wwan0")
    rec.telemetry(4.5, "d1", if_wan_up=False, if_lan_up=False).telemetry(6.5, "d1", if_wan_up=True)
    result = replay(tmp_path, _one(tmp_path), rec)
    # if_lan_up is not a monitored (WAN / cellular) interface
    assert brief(result.events) == expect(
        ("opened", 1, "d1", "interface_down", "B", 1, None),
        ("cleared", 2, "d1", "interface_down", "B", 1, None),
        ("opened", 4.5, "d1", "interface_down", "B", 4.5, None),
        ("cleared", 6.5, "d1", "interface_down", "B", 4.5, None),
    )


def test_reboot_when_uptime_goes_backwards_or_on_cold_and_warm_start_traps(tmp_path: Path) -> None:
    rec = Recording()
    for m in range(0, 40):
        rec.telemetry(m, "d1", uptime_s=10_000 + 60 * m if m < 3 else 60 * (m - 3))
    rec.trap(20, "d1", name="coldStart").trap(25, "d1", name="warmStart")
    result = replay(tmp_path, _one(tmp_path), rec)
    assert brief(result.events) == expect(
        ("opened", 3, "d1", "reboot", "D", 3, None),
        ("cleared", 13, "d1", "reboot", "D", 3, None),
        ("opened", 20, "d1", "reboot", "D", 20, None),
        # the warmStart within the 10 minutes keeps it open until 10 minutes after it
        ("cleared", 35, "d1", "reboot", "D", 20, None),
    )
    assert result.events[0]["impact"] == "info"
    assert result.events[0]["detail"] == {"metric": "uptime_s", "from": 10_120, "to": 0}


def test_four_openings_within_an_hour_become_one_flapping_fault(tmp_path: Path) -> None:
    rec = Recording()
    for m in range(0, 20):
        rec.telemetry(m, "d1", disk_used_pct=99 if m % 2 == 0 else 50)
    rec.steady("d1", 20, 90, disk_used_pct=50)
    result = replay(tmp_path, _one(tmp_path), rec)
    assert brief(result.events) == expect(
        ("opened", 0, "d1", "disk_full", "C", 0, None),
        ("cleared", 1, "d1", "disk_full", "C", 0, None),
        ("opened", 2, "d1", "disk_full", "C", 2, None),
        ("cleared", 3, "d1", "disk_full", "C", 2, None),
        ("opened", 4, "d1", "disk_full", "C", 4, None),
        ("cleared", 5, "d1", "disk_full", "C", 4, None),
        # the 4th opening within an hour: one flapping fault, the openings after it held
        ("opened", 6, "d1", "flapping", "D", 0, None),
        # an hour after the last opening (at 18) with the fault clear: the flapping ends
        ("cleared", 78, "d1", "flapping", "D", 0, None),
    )
    flapping = result.events[6]
    assert flapping["impact"] == "intermittent"
    assert flapping["detail"] == {"of": "disk_full", "opens": 4}
    assert flapping["id"] == "device/d1/flapping/disk_full@" + at(0)


def test_a_flapping_fault_that_settles_in_the_failed_state_becomes_that_fault(
    tmp_path: Path,
) -> None:
    rec = Recording()
    for m in range(0, 8):
        rec.telemetry(m, "d1", disk_used_pct=99 if m % 2 == 0 else 50)
    rec.steady("d1", 8, 70, disk_used_pct=99)
    result = replay(tmp_path, _one(tmp_path), rec)
    assert brief(result.events)[-3:] == expect(
        ("opened", 6, "d1", "flapping", "D", 0, None),
        ("cleared", 68, "d1", "flapping", "D", 0, None),
        ("opened", 68, "d1", "disk_full", "C", 68, None),
    )


def test_rate_and_change_conditions_from_a_custom_rule_file(tmp_path: Path) -> None:
    rules = tmp_path / "custom.yaml"
    rules.write_text(
        """
rules:
  - name: serial_idle
    impact: degraded
    match: {class: dtu}
    when:
      rate: {metric: serial_rx_bytes, below: 1, for: 2m, clear_above: 10}
  - name: sim_changed
    impact: info
    when:
      change: {metric: cell_iccid, clear_after: 5m}
  - name: firmware_changed
    impact: info
    when:
      change: {metric: firmware, clear_after: 5m}
""",
        encoding="utf-8",
    )
    inv = inventory(tmp_path, row("dtu1", cls="dtu"))
    rec = Recording().birth(0, "dtu1")
    counter = [0, 600, 1200, 1200, 1200, 1200, 1000, 1700, 2400, 3000]  # reset between 6 and 7
    for m, value in enumerate(counter, start=1):
        rec.telemetry(m, "dtu1", serial_rx_bytes=value, cell_iccid="8986" if m < 8 else "8987")
    rec.birth(9.5, "dtu1", firmware="1.1").wait(20)
    result = replay(tmp_path, inv, rec, "--rules", str(rules))
    assert brief(result.events) == expect(
        # no increase from 3 on (rate 0 < 1 for 2 minutes); at 7 the counter was reset and
        # counts from zero: 1000 bytes in 60 s is above the clear threshold
        ("opened", 6, "dtu1", "serial_idle", "C", 4, None),
        ("cleared", 7, "dtu1", "serial_idle", "C", 4, None),
        ("opened", 8, "dtu1", "sim_changed", "D", 8, None),
        ("opened", 9.5, "dtu1", "firmware_changed", "D", 9.5, None),
        ("cleared", 13, "dtu1", "sim_changed", "D", 8, None),
        ("cleared", 14.5, "dtu1", "firmware_changed", "D", 9.5, None),
    )
    assert result.events[3]["detail"] == {"metric": "firmware", "from": "1.0", "to": "1.1"}


def test_bad_lines_are_skipped_with_their_number_and_exit_status_1(tmp_path: Path) -> None:
    good = Recording().steady("d1", 0, 3, disk_used_pct=99).text().splitlines()
    lines = [
        good[0],
        "not json",
        '{"at": "yesterday"}',
        '{"at": "2026-11-25T02:00:30Z", "topic": "fleet/v1/acme/d1/telemetry", '
        '"payload": {"v": 2}}',
        good[1],
        '{"at": "2026-11-25T02:00:00Z"}',
        '{"at": "2026-11-25T02:01:30Z", "mystery": 1}',
        '{"at": "2026-11-25T02:01:40Z", "trap": {"device": "d1", "oid": "1.2.3"}}',
        good[2],
        good[3],
    ]
    result = replay(tmp_path, _one(tmp_path), "\n".join(lines) + "\n")
    assert result.code == 1
    warnings = result.stderr.splitlines()
    numbers = [int(re.search(r": line (\d+): ", w).group(1)) for w in warnings]  # type: ignore[union-attr]
    assert numbers == [2, 3, 4, 6, 7, 8]
    assert "bad_version" in warnings[2] and "back in time" in warnings[3]
    assert brief(result.events) == expect(("opened", 0, "d1", "disk_full", "C", 0, None))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--inventory", "missing.csv"], "missing.csv"),
        (["--rules", "nowhere"], "nowhere"),
        (["--default-policy", "no-such-policy"], "no-such-policy"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(
    tmp_path: Path, args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from collector import cli

    inv = _one(tmp_path)
    rec = tmp_path / "r.jsonl"
    rec.write_text("", encoding="utf-8")
    argv = ["replay", "--inventory", str(inv), *args, str(rec)]
    if args[0] == "--inventory":
        argv = ["replay", "--inventory", str(tmp_path / args[1]), str(rec)]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and message in err


def test_the_console_script_runs_the_example_recording(tmp_path: Path) -> None:
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[2]
    script = Path(sys.executable).parent / "fleetdesk"
    done = subprocess.run(
        [
            str(script),
            "replay",
            "--inventory",
            str(root / "examples/inventory.csv"),
            str(root / "examples/pump-station.jsonl"),
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    expected = (root / "examples/pump-station.expected.jsonl").read_text(encoding="utf-8")
    assert done.stdout == expected


def test_a_worse_rule_joining_an_open_fault_escalates_it(tmp_path: Path) -> None:
    rules = tmp_path / "escalate.yaml"
    rules.write_text(
        """
rules:
  - name: temperature_high
    impact: at_risk
    when:
      threshold: {metric: temp_c, above: 75, clear_below: 70}
  - name: temperature_critical
    fault: temperature_high
    impact: outage
    when:
      threshold: {metric: temp_c, above: 85, for: 2m, clear_below: 80}
""",
        encoding="utf-8",
    )
    rec = Recording().steady("d1", 0, 1, temp_c=78).steady("d1", 2, 5, temp_c=90)
    rec.steady("d1", 6, 7, temp_c=78).telemetry(8, "d1", temp_c=60)
    result = replay(tmp_path, _one(tmp_path), rec, "--rules", str(rules))
    assert brief(result.events) == expect(
        ("opened", 0, "d1", "temperature_high", "B", 0, None),
        # same fault, same onset, now an outage: class A with A's deadlines
        ("escalated", 4, "d1", "temperature_high", "A", 0, None),
        ("cleared", 8, "d1", "temperature_high", "A", 0, None),
    )
    escalated = result.events[1]
    assert escalated["from_level"] == "B" and escalated["impact"] == "outage"
    assert escalated["id"] == result.events[0]["id"]
    assert escalated["deadlines"] == {"response": at(0), "processing": at(15), "resolution": at(60)}


def test_samples_older_than_the_last_evaluated_are_signs_of_life_only(tmp_path: Path) -> None:
    rec = Recording().steady("d1", 0, 5, disk_used_pct=50)
    # a spool replayed late: an old breaching sample arrives at 6 with its ts at 2
    rec.lines.append(
        {
            "at": at(6),
            "topic": "fleet/v1/acme/d1/telemetry",
            "payload": {
                "v": 1,
                "device": "d1",
                "boot": "b1",
                "seq": 99,
                "ts": at(2),
                "metrics": {"disk_used_pct": 99},
            },
        }
    )
    rec.wait(8.5)
    result = replay(tmp_path, _one(tmp_path), rec)
    # no disk_full; the late report counts as life (offline due 3 minutes after it, at 9)
    assert result.events == []


def test_a_policy_file_named_by_the_inventory_is_used(tmp_path: Path) -> None:
    from collector.preset_paths import default_rules_dir

    policy = (default_rules_dir() / "policies" / "wthink.yaml").read_text(encoding="utf-8")
    (tmp_path / "our-contract.yaml").write_text(policy, encoding="utf-8")
    inv = inventory(tmp_path, row("d1", policy="our-contract.yaml"))
    result = replay(tmp_path, inv, Recording().telemetry(0, "d1", disk_used_pct=99))
    assert [(e["policy"], e["level"]) for e in result.events] == [("our-contract", "normal")]


def test_only_wan_and_cellular_interfaces_are_monitored(tmp_path: Path) -> None:
    rec = Recording().steady("d1", 0, 3, if_wlan0_up=False, if_br_lan_up=False)
    rec.telemetry(4, "d1", if_wwan0_up=False).telemetry(5, "d1", if_wwan0_up=True)
    result = replay(tmp_path, _one(tmp_path), rec)
    assert brief(result.events) == expect(
        ("opened", 4, "d1", "interface_down", "B", 4, None),
        ("cleared", 5, "d1", "interface_down", "B", 4, None),
    )
    assert result.events[0]["detail"] == {"metric": "if_wwan0_up", "value": False}


def test_a_recording_on_standard_input_with_raw_string_payloads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import io
    import json

    from collector import cli

    line = Recording().telemetry(0, "d1", disk_used_pct=99).lines[0]
    line["payload"] = json.dumps(line["payload"])  # the MQTT payload as received, a string
    monkeypatch.setattr("sys.stdin", io.StringIO(json.dumps(line) + "\n"))
    assert cli.main(["replay", "--no-tickets", "--inventory", str(_one(tmp_path)), "-"]) == 0
    (event,) = [json.loads(out) for out in capsys.readouterr().out.splitlines()]
    assert (event["event"], event["fault"], event["at"]) == ("opened", "disk_full", at(0))
