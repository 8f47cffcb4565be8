"""``fleetdesk sla``: the issue's exact interface, and its errors (exit 2, one line)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from collector.cli import main
from tests.support.sla import write_rules


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (
            ["--calendar", "cn-workdays", "--start", "2026-10-01T03:00+08:00", "--duration", "45m"],
            "2026-10-08T09:45:00+08:00",
        ),
        # another offset in, the calendar's offset out
        (
            ["--calendar", "cn-workdays", "--start", "2026-11-23T01:00Z", "--duration", "1h30m"],
            "2026-11-23T10:30:00+08:00",
        ),
        (
            ["--calendar", "cn-workdays", "--start", "2026-09-30T17:00+08:00", "--duration", "5wd"],
            "2026-10-13T17:00:00+08:00",
        ),
        (
            ["--calendar", "cn-workdays", "--start", "2026-10-09T17:15+08:00", "--duration", "45m"],
            "2026-10-09T18:00:00+08:00",
        ),
        (
            ["--calendar", "24x7", "--start", "2026-10-01T03:00+08:00", "--duration", "0"],
            "2026-10-01T03:00:00+08:00",
        ),
        (
            [
                "--calendar",
                "every-day-0900-1700",
                "--start",
                "2026-10-01T03:00+08:00",
                "--duration",
                "1wd",
            ],
            "2026-10-01T17:00:00+08:00",
        ),
        (
            [
                "--calendar",
                "cn-workdays",
                "--start",
                "2026-11-23T16:00+08:00",
                "--duration",
                "4h",
                "--pause",
                "2026-11-23T17:30+08:00/2026-11-24T09:30+08:00",
            ],
            "2026-11-24T12:00:00+08:00",
        ),
        (
            [
                "--calendar",
                "cn-workdays",
                "--start",
                "2026-11-23T09:00+08:00",
                "--duration",
                "2h",
                "--pause",
                "2026-11-23T10:00+08:00/2026-11-23T10:30+08:00",
                "--pause",
                "2026-11-23T11:00+08:00/2026-11-23T11:15+08:00",
            ],
            "2026-11-23T11:45:00+08:00",
        ),
    ],
)
def test_sla_due(capsys: pytest.CaptureFixture[str], argv: list[str], expected: str) -> None:
    assert run(capsys, "sla", "due", *argv) == (0, expected + "\n", "")


def test_sla_deadlines_json(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(
        capsys,
        "sla",
        "deadlines",
        "--policy",
        "shanghai-energy",
        "--level",
        "C",
        "--start",
        "2026-10-01T03:00+08:00",
        "--json",
    )
    assert (code, err) == (0, "")
    assert json.loads(out) == {
        "policy": "shanghai-energy",
        "level": "C",
        "start": "2026-10-01T03:00:00+08:00",
        "deadlines": {
            "response": "2026-10-08T09:00:00+08:00",
            "processing": "2026-10-08T09:45:00+08:00",
        },
        "resolution": "deferred_to_release",  # 001: C/D are fixed in a later release
    }
    assert len(out.splitlines()) == 1


def test_sla_deadlines_shanghai_a_processing_and_resolution(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """001 class A: respond at once, processing 15 min, resolution 1 h (7x24)."""
    args = ("--policy", "shanghai-energy", "--level", "A", "--start", "2026-10-01T03:00+08:00")
    code, out, err = run(capsys, "sla", "deadlines", *args, "--json")
    assert (code, err) == (0, "")
    assert json.loads(out)["deadlines"] == {
        "response": "2026-10-01T03:00:00+08:00",
        "processing": "2026-10-01T03:15:00+08:00",
        "resolution": "2026-10-01T04:00:00+08:00",
    }


def test_sla_deadlines_from_a_policy_file_with_pauses(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_rules(
        tmp_path,
        {
            "policies/mine.yaml": """
                calendar: cn-workdays
                levels:
                  gold: {definition: all down, targets: {response: 30m, resolution: 2wd}}
                classification: [{level: gold}]
            """
        },
    )
    code, out, _ = run(
        capsys,
        "sla",
        "deadlines",
        "--policy",
        str(tmp_path / "policies" / "mine.yaml"),
        "--level",
        "gold",
        "--start",
        "2026-11-23T09:00+08:00",
        "--pause",
        "2026-11-23T09:00+08:00/2026-11-24T09:00+08:00",
        "--json",
    )
    assert code == 0
    assert json.loads(out)["deadlines"] == {
        "response": "2026-11-24T09:30:00+08:00",
        "resolution": "2026-11-25T18:00:00+08:00",
    }


def test_sla_classify(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        capsys,
        "sla",
        "classify",
        "--policy",
        "xian-integrator",
        "--kind",
        "device_offline",
        "--impact",
        "outage",
        "--criticality",
        "uncommon",
    )
    assert code == 0 and out.startswith("2  (rule at line")


START = ["--start", "2026-10-01T03:00+08:00"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["due", "--calendar", "mars", *START, "--duration", "1h"], "unknown calendar 'mars'"),
        (
            ["due", "--calendar", "24x7", "--start", "yesterday", "--duration", "1h"],
            "bad --start 'yesterday': not an ISO 8601 timestamp",
        ),
        (
            ["due", "--calendar", "24x7", "--start", "2026-10-01T03:00", "--duration", "1h"],
            "bad --start '2026-10-01T03:00': needs a UTC offset",
        ),
        (["due", "--calendar", "24x7", *START, "--duration", "1 hour"], "bad --duration"),
        (
            [
                "due",
                "--calendar",
                "24x7",
                *START,
                "--duration",
                "1h",
                "--pause",
                "2026-10-01T05:00+08:00/2026-10-01T04:00+08:00",
            ],
            "it ends before it starts",
        ),
        (
            ["due", "--calendar", "24x7", *START, "--duration", "1h", "--pause", "2026-10-01"],
            "expected START/END",
        ),
        (
            [
                "due",
                "--calendar",
                "24x7",
                *START,
                "--duration",
                "1h",
                "--pause",
                "2026-10-01T05:00+08:00/later",
            ],
            "bad --pause end 'later'",
        ),
        (
            ["deadlines", "--policy", "acme", "--level", "A", *START, "--json"],
            "unknown policy 'acme'",
        ),
        (
            ["deadlines", "--policy", "mtbox", "--level", "gold", *START, "--json"],
            "policy 'mtbox' has no level 'gold' (levels: hardware, platform)",
        ),
        (
            ["deadlines", "--policy", "/nonexistent/p.yaml", "--level", "A", *START],
            "/nonexistent/p.yaml: cannot read",
        ),
        (
            ["classify", "--policy", "mtbox", "--kind", "reboot", "--impact", "bad"],
            "unknown impact 'bad'",
        ),
    ],
)
def test_sla_bad_input(capsys: pytest.CaptureFixture[str], argv: list[str], message: str) -> None:
    code, out, err = run(capsys, "sla", *argv)
    assert code == 2 and out == ""
    assert len(err.splitlines()) == 1
    assert err.startswith(f"fleetdesk sla {argv[0]}: ")
    assert message in err


def test_the_installed_command_end_to_end() -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "collector",
            "sla",
            "due",
            "--calendar",
            "cn-workdays",
            "--start",
            "2026-02-13T17:30+08:00",
            "--duration",
            "2h",
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "2026-02-14T10:30:00+08:00\n", "")


def test_a_deadline_in_an_unpublished_year_warns_on_stderr(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, err = run(
        capsys,
        "sla",
        "due",
        "--calendar",
        "cn-workdays",
        "--start",
        "2030-09-30T17:00+08:00",
        "--duration",
        "2h",
    )
    assert code == 0
    # the estimate knows National Day's three statutory days, not the swapped Golden Week
    assert out == "2030-10-04T10:00:00+08:00\n"
    assert err.startswith("fleetdesk sla due: warning: calendar 'cn-workdays': holidays of 2030")
    code, out, err = run(
        capsys,
        "sla",
        "deadlines",
        "--policy",
        "shanghai-energy",
        "--level",
        "A",
        "--start",
        "2030-09-30T17:00+08:00",
        "--json",
    )
    assert code == 0 and err == ""  # 24x7 has no holidays to estimate
