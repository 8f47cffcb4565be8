"""Bad calendar and policy files: one line naming file, line, key and problem."""

from __future__ import annotations

from pathlib import Path

import pytest

from collector.cli import main
from collector.config.errors import ConfigError
from collector.preset_paths import RULES_ENV
from collector.sla.calendar import load_calendar
from collector.sla.policy import clear_policy_cache, load_policy
from tests.support.sla import write_rules

GOOD_CALENDAR = """\
timezone: Asia/Shanghai
hours:
  mon-fri: "09:00-18:00"
"""

BAD_CALENDARS = [
    ("timezone: Mars/Olympus\nhours: {daily: '00:00-24:00'}\n", 1, "timezone", "unknown time zone"),
    ("hours: {daily: '00:00-24:00'}\n", 1, "", "missing key 'timezone'"),
    ("timezone: UTC\n", 1, "", "missing key 'hours'"),
    ("timezone: UTC\nhours:\n  mon: '09:00-25:00'\n", 3, "hours.mon", "not a time of day"),
    ("timezone: UTC\nhours:\n  mon: '18:00-09:00'\n", 3, "hours.mon", "ends before it starts"),
    ("timezone: UTC\nhours:\n  mon: [9-18]\n", 3, "hours.mon[0]", "expected HH:MM-HH:MM"),
    (
        "timezone: UTC\nhours:\n  mon: ['09:00-12:00', '11:00-18:00']\n",
        3,
        "hours.mon",
        "overlap",
    ),
    ("timezone: UTC\nhours:\n  funday: '09:00-18:00'\n", 3, "hours.funday", "unknown day"),
    (
        "timezone: UTC\nhours:\n  mon-fri: '09:00-18:00'\n  fri: '09:00-12:00'\n",
        4,
        "hours.fri",
        "fri is given twice",
    ),
    ("timezone: UTC\nhours:\n  daily: closed\n", 3, "hours", "no working hours"),
    (
        "timezone: UTC\nhours: {daily: '09:00-17:00'}\nholidays: {source: XX}\n",
        3,
        "holidays.source",
        "unknown holiday country 'XX'",
    ),
    (
        "timezone: UTC\nhours: {daily: '09:00-17:00'}\nholidays:\n  add: [2026-02-30]\n",
        4,
        "holidays.add[0]",
        "day is out of range",
    ),
    (
        "timezone: UTC\nhours: {daily: '09:00-17:00'}\ncolour: blue\n",
        3,
        "colour",
        "unknown key",
    ),
    ("timezone: UTC\nhours: {daily: '09:00-17:00'\n", 3, "", "not valid YAML"),
    (
        "timezone: UTC\nhours: {daily: '09:00-17:00'}\nworkday_length: 5wd\n",
        3,
        "workday_length",
        "positive fixed",
    ),
    ("name: other\ntimezone: UTC\nhours: {daily: '09:00-17:00'}\n", 1, "name", "differs"),
    ("", 1, "", "file is empty"),
]


@pytest.mark.parametrize(("text", "line", "key", "problem"), BAD_CALENDARS)
def test_bad_calendar_files(tmp_path: Path, text: str, line: int, key: str, problem: str) -> None:
    write_rules(tmp_path, {"calendars/bad.yaml": text})
    with pytest.raises(ConfigError) as info:
        load_calendar("bad", tmp_path)
    err = info.value
    assert (err.line, err.key) == (line, key)
    assert problem in err.problem
    message = str(err)
    assert "\n" not in message
    assert message.startswith(f"{tmp_path / 'calendars' / 'bad.yaml'}:{line}: ")


POLICY_HEAD = """\
levels:
  A:
    definition: down
    targets:
      resolution: {duration: 45m, calendar: cn-workdays}
"""

BAD_POLICIES = [
    (POLICY_HEAD, 1, "", "missing key 'classification'"),
    (
        POLICY_HEAD + "classification:\n  - level: Z\n",
        7,
        "classification[0].level",
        "unknown level 'Z'",
    ),
    (
        POLICY_HEAD + "classification:\n  - when: {impact: down}\n    level: A\n",
        7,
        "classification[0].when.impact",
        "unknown impact 'down'",
    ),
    (
        POLICY_HEAD
        + "classification:\n  - when: {kind: [device_offline, toaster]}\n    level: A\n",
        7,
        "classification[0].when.kind[1]",
        "unknown fault kind 'toaster'",
    ),
    (
        POLICY_HEAD.replace("cn-workdays", "mars-workdays") + "classification: []\n",
        5,
        "levels.A.targets.resolution.calendar",
        "unknown calendar 'mars-workdays'",
    ),
    (
        POLICY_HEAD.replace("45m", "45 minutes") + "classification: []\n",
        5,
        "levels.A.targets.resolution.duration",
        "bad duration '45 minutes'",
    ),
    (
        POLICY_HEAD.replace("resolution:", "lunch:") + "classification: []\n",
        5,
        "levels.A.targets.lunch",
        "unknown target 'lunch'",
    ),
    (
        POLICY_HEAD.replace(", calendar: cn-workdays", "") + "classification: []\n",
        5,
        "levels.A.targets.resolution",
        "no calendar",
    ),
    (
        POLICY_HEAD + "classification: []\nescalations:\n  - {action: panic, at: 0.5}\n",
        8,
        "escalations[0].action",
        "unknown action 'panic'",
    ),
    (
        POLICY_HEAD
        + "classification: []\nescalations:\n  - {action: notify, at: 0.5, target: onsite}\n",
        8,
        "escalations[0].target",
        "no level it applies to has a target 'onsite'",
    ),
    (
        POLICY_HEAD + "classification: []\nwarranty: {basis: purchase, months: 12}\n",
        7,
        "warranty.basis",
        "unknown basis 'purchase'",
    ),
    (
        POLICY_HEAD + "classification: []\nwarranty: {basis: receipt, months: twelve}\n",
        7,
        "warranty.months",
        "expected a whole number",
    ),
    (
        POLICY_HEAD.replace("definition: down", "definition: down\n    manual_only: true")
        + "classification:\n  - level: A\n",
        8,
        "classification[0].level",
        "manual_only",
    ),
]


@pytest.mark.parametrize(("text", "line", "key", "problem"), BAD_POLICIES)
def test_bad_policy_files(tmp_path: Path, text: str, line: int, key: str, problem: str) -> None:
    write_rules(tmp_path, {"policies/bad.yaml": text})
    with pytest.raises(ConfigError) as info:
        load_policy("bad", tmp_path)
    err = info.value
    assert problem in err.problem, str(err)
    assert (err.line, err.key) == (line, key), str(err)
    assert "\n" not in str(err)


def test_policy_uses_the_folders_own_calendars_first(tmp_path: Path) -> None:
    write_rules(
        tmp_path,
        {
            "calendars/cn-workdays.yaml": "timezone: UTC\nhours: {daily: '08:00-20:00'}\n",
            "policies/own.yaml": POLICY_HEAD + "classification: [{level: A}]\n",
        },
    )
    own = load_policy(tmp_path / "policies" / "own.yaml")  # finds ../calendars by itself
    assert own.levels["A"].targets["resolution"].calendar.workday_seconds == 12 * 3600
    assert own.classify("cpu_high", "info", "device", "common") == "A"


def test_load_policy_is_the_one_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Read once per reference; a failed load is not kept, so a fixed file loads.
    write_rules(tmp_path, {"policies/p.yaml": POLICY_HEAD + "clasification: []\n"})
    with pytest.raises(ConfigError, match="clasification: unknown key"):
        load_policy("p", tmp_path)
    write_rules(tmp_path, {"policies/p.yaml": POLICY_HEAD + "classification: [{level: A}]\n"})
    first = load_policy("p", tmp_path)
    assert load_policy("p", tmp_path) is first
    monkeypatch.chdir(tmp_path)  # a relative path and an absolute one are the same file
    assert load_policy("policies/p.yaml") is load_policy(tmp_path / "policies" / "p.yaml")
    clear_policy_cache()
    again = load_policy("p", tmp_path)
    assert again is not first and again == first
    # A preset name resolves through $FLEETDESK_RULES, so it is part of the key.
    assert "urgent" in load_policy("wthink").levels
    own = write_rules(
        tmp_path / "own",
        {
            "calendars/cn-workdays.yaml": GOOD_CALENDAR,
            "policies/wthink.yaml": POLICY_HEAD + "classification: [{level: A}]\n",
        },
    )
    monkeypatch.setenv(RULES_ENV, str(own))
    assert list(load_policy("wthink").levels) == ["A"]


def test_rules_check_names_every_bad_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_rules(
        tmp_path,
        {
            "calendars/good.yaml": GOOD_CALENDAR,
            "calendars/bad.yaml": "timezone: Mars/Olympus\nhours: {daily: '00:00-24:00'}\n",
            "policies/fine.yaml": POLICY_HEAD.replace("cn-workdays", "good")
            + "classification: [{level: A}]\n",
            "policies/broken-ref.yaml": POLICY_HEAD.replace("cn-workdays", "bad")
            + "classification: [{level: A}]\n",
            "policies/typo.yaml": POLICY_HEAD + "clasification: []\n",
        },
    )
    assert main(["rules", "check", str(tmp_path)]) == 2
    out, err = capsys.readouterr()
    lines = err.splitlines()
    assert len(lines) == 3
    cal = tmp_path / "calendars" / "bad.yaml"
    assert lines[0] == f"{cal}:1: timezone: unknown time zone 'Mars/Olympus'"
    assert lines[1].startswith(
        f"{tmp_path / 'policies' / 'broken-ref.yaml'}:5: levels.A.targets.resolution.calendar: "
        "calendar 'bad' is invalid"
    )
    assert lines[2].startswith(
        f"{tmp_path / 'policies' / 'typo.yaml'}:6: clasification: unknown key"
    )
    assert (
        "2 calendar file(s), 3 policy file(s), 0 rule file(s), 0 inventory file(s): 3 problem(s)"
        in out
    )


def test_rules_check_passes_the_shipped_rules(capsys: pytest.CaptureFixture[str]) -> None:
    from collector.preset_paths import default_rules_dir

    assert main(["rules", "check", str(default_rules_dir())]) == 0
    assert capsys.readouterr().out.endswith(
        "3 calendar file(s), 5 policy file(s), 1 rule file(s), 0 inventory file(s): ok\n"
    )


def test_rules_check_on_a_missing_or_empty_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["rules", "check", str(tmp_path / "nope")]) == 2
    assert main(["rules", "check", str(tmp_path)]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err == [
        f"fleetdesk rules check: {tmp_path / 'nope'}: not a folder",
        f"fleetdesk rules check: {tmp_path}: no files in "
        "calendars/, policies/, rules.d/, inventories/",
    ]
