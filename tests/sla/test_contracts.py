"""Customer policies (a preset plus overrides) and a year's official calendar schedule."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from collector.commands.rules_check import check_rules_dir
from collector.config.errors import ConfigError
from collector.preset_paths import default_rules_dir
from collector.sla.calendar import estimated_calendars, load_calendar
from collector.sla.policy import load_policy

SH = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 12, 2, tzinfo=UTC)  # within 12 months of 2027


def rules_copy(tmp_path: Path) -> Path:
    rules = tmp_path / "rules"
    for folder in ("calendars", "policies"):
        shutil.copytree(default_rules_dir() / folder, rules / folder)
    return rules


def test_customer_policy_overrides_one_target(tmp_path: Path) -> None:
    rules = rules_copy(tmp_path)
    (rules / "policies" / "acme-water.yaml").write_text(
        "extends: xian-integrator\n"
        "description: acme's contract, response within 2 h at level 3\n"
        "overrides:\n"
        '  "3":\n'
        "    response: 2h\n"
        "    onsite: {duration: 3h, starts: request}\n"
    )
    policy = load_policy("acme-water", rules)
    start = datetime(2026, 10, 1, 3, 0, tzinfo=SH)
    assert policy.deadlines("3", start)["response"] == datetime(2026, 10, 1, 5, 0, tzinfo=SH)
    assert str(policy.levels["3"].targets["onsite"].duration) == "3h"
    base = load_policy("xian-integrator", rules)
    # everything else is the preset's, not a copy to keep in step
    assert policy.levels["1"] == base.levels["1"] and policy.classification == base.classification
    assert (policy.extends, policy.followup) == ("xian-integrator", base.followup)
    assert check_rules_dir(rules, now=NOW).problems == []


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("extends: xian-integrator\noverrides:\n  \"9\": {response: 1h}\n",
         r"acme\.yaml:3: overrides\.9: policy 'xian-integrator' has no level '9'"),
        ("extends: xian-integrator\noverrides:\n  \"3\": {response: soon}\n",
         r"acme\.yaml:3: overrides\.3\.response: "),
        ("extends: nope\n", r"acme\.yaml:1: extends: cannot load policy 'nope'"),
        ("extends: xian-integrator\nlevels: {}\n", r"acme\.yaml:2: levels: unknown key"),
        ("extends: shanghai-energy\noverrides:\n  C: {resolution: 1h}\n",
         r"acme\.yaml:3: overrides\.C: level 'C' is resolved by a later release"),
    ],
)  # fmt: skip
def test_customer_policy_errors_name_file_line_key(tmp_path: Path, body: str, message: str) -> None:
    rules = rules_copy(tmp_path)
    (rules / "policies" / "acme.yaml").write_text(body)
    with pytest.raises(ConfigError, match=message):
        load_policy("acme", rules)


# The example of docs/sla.md, "Calendar years": ILLUSTRATIVE dates (the State Council's 2027
# schedule is not in this repository); what matters is the shape and that it wins.
OFFICIAL_2027 = """
official:
  2027:
    source: illustrative (replace with the State Council's published schedule)
    holidays: [2027-01-01, 2027-02-05, 2027-02-06, 2027-02-07, 2027-02-08, 2027-02-09,
               2027-02-10, 2027-02-11, 2027-02-12, 2027-02-13, 2027-04-05, 2027-05-01,
               2027-05-02, 2027-05-03, 2027-05-04, 2027-05-05, 2027-06-09, 2027-09-15,
               2027-10-01, 2027-10-02, 2027-10-03, 2027-10-04, 2027-10-05, 2027-10-06,
               2027-10-07]
    working_days: [2027-01-31, 2027-02-20, 2027-04-25, 2027-09-26, 2027-10-09]
"""


def test_official_2027_schedule_replaces_the_estimate(tmp_path: Path) -> None:
    rules = rules_copy(tmp_path)
    cal_file = rules / "calendars" / "cn-workdays.yaml"
    assert estimated_calendars(NOW, rules) == {"cn-workdays": (2027,)}
    warned = check_rules_dir(rules, now=NOW).warnings
    assert len(warned) == 1 and "'cn-workdays'" in warned[0] and "2027" in warned[0]
    # Thursday 2027-02-04 17:00 + 6 working days (54 h of 9 h days): Thu 1 h, the festival
    # off (Feb 5-13), Mon 15 - Fri 19 45 h, the last 8 h on the make-up Saturday Feb 20.
    start = datetime(2027, 2, 4, 17, 0, tzinfo=SH)
    estimated = load_calendar(cal_file).add(start, 54 * 3600)
    cal_file.write_text(cal_file.read_text() + OFFICIAL_2027)
    calendar = load_calendar(cal_file)
    assert calendar.estimated_years(start, start) == ()
    assert estimated_calendars(NOW, rules) == {}
    assert check_rules_dir(rules, now=NOW).warnings == []
    assert calendar.add(start, 54 * 3600) == datetime(2027, 2, 20, 17, 0, tzinfo=SH)
    assert estimated != calendar.add(start, 54 * 3600)  # the estimate knew no make-up day
    # Friday 2027-01-29 17:00 + 2 h: the make-up Sunday 2027-01-31 works.
    due = calendar.add(datetime(2027, 1, 29, 17, 0, tzinfo=SH), 2 * 3600)
    assert due == datetime(2027, 1, 31, 10, 0, tzinfo=SH)


@pytest.mark.parametrize(
    ("official", "message"),
    [
        ("official:\n  27: {holidays: [2027-01-01]}\n", r"official\.27: expected a year"),
        ("official:\n  2027: {holidays: [2028-01-01]}\n", r"holiday 2028-01-01 is not in 2027"),
        ("official:\n  2027: {working_days: [2027-01-31]}\n", r"missing key 'holidays'"),
        (
            "official:\n  2027: {holidays: [2027-01-31], working_days: [2027-01-31]}\n",
            r"2027-01-31 is both a holiday and a working day",
        ),
    ],
)
def test_official_schedule_errors(tmp_path: Path, official: str, message: str) -> None:
    rules = rules_copy(tmp_path)
    cal_file = rules / "calendars" / "cn-workdays.yaml"
    cal_file.write_text(cal_file.read_text() + official)
    with pytest.raises(ConfigError, match=message):
        load_calendar(cal_file)
