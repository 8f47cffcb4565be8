"""Policy files key by key: what each key of a level, a target, an escalation step and a
customer policy becomes, and every refusal with its whole message, line and key."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from collector.config.durations import parse_duration
from collector.config.errors import ConfigError
from collector.preset_paths import default_rules_dir
from collector.sla.contract import Charge, WarrantyBasis
from collector.sla.policy import EscalationAction, TargetStart, load_policy
from tests.support.sla import policy_from_text, policy_refusal, write_rules

LEVELS = """\
calendar: cn-workdays
levels:
  A:
    definition: down
    targets:
      response: 30m
      resolution: {duration: 4h, calendar: 24x7, starts: detection}
  B:
    definition: slow
    targets:
      onsite: {duration: 1wd, operator_default: true}
classification: [{level: A}]
"""


def test_every_level_and_target_key_is_read(tmp_path: Path) -> None:
    policy = policy_from_text(tmp_path, "name: p\n" + LEVELS)
    a, b = policy.levels["A"], policy.levels["B"]
    assert (policy.name, a.name, a.definition, b.definition) == ("p", "A", "down", "slow")
    response, resolution = a.targets["response"], a.targets["resolution"]
    assert (response.name, response.duration, response.calendar.name) == (
        "response",
        parse_duration("30m"),
        "cn-workdays",  # the policy's calendar
    )
    assert (response.starts, response.operator_default) == (TargetStart.ONSET, False)
    assert (resolution.calendar.name, resolution.starts) == ("24x7", TargetStart.DETECTION)
    onsite = b.targets["onsite"]
    assert (onsite.duration, onsite.operator_default) == (parse_duration("1wd"), True)


def target_file(target: str) -> str:
    return (
        f"levels:\n  A:\n    definition: down\n    targets:\n      {target}\nclassification: []\n"
    )


BAD_POLICIES = [
    ("name: other\n" + LEVELS, 1, "name", "name 'other' differs from the file name"),
    ("classification: []\n", 1, "", "missing key 'levels'"),
    ("levels: {}\nclassification: []\n", 1, "levels", "a policy needs at least one level"),
    (
        "levels:\n  A: {definition: down, targets: {response: 1h}, colour: red}\n",
        2,
        "levels.A.colour",
        "unknown key (expected one of: calendar, definition, manual_only, resolution_by_release,"
        " targets)",
    ),
    ("levels:\n  A: {targets: {response: 1h}}\n", 2, "levels.A", "missing key 'definition'"),
    ("levels:\n  A: {definition: down}\n", 2, "levels.A", "missing key 'targets'"),
    (
        "calendar: 24x7\nlevels:\n  A: {definition: down, targets: {}}\n",
        3,
        "levels.A.targets",
        "a level needs at least one target",
    ),
    (
        "calendar: 24x7\nlevels:\n  A:\n    definition: down\n    resolution_by_release: true\n"
        "    targets: {resolution: 1h}\n",
        5,
        "levels.A.resolution_by_release",
        "a level resolved by a later release has no 'resolution' target",
    ),
    (
        target_file("lunch: 1h"),
        5,
        "levels.A.targets.lunch",
        "unknown target 'lunch' (expected one of: response, processing, onsite, diagnosis, "
        "resolution, plan, repair, followup)",
    ),
    (
        target_file("response: {duration: 1h, calendar: 24x7, colour: red}"),
        5,
        "levels.A.targets.response.colour",
        "unknown key (expected one of: calendar, duration, operator_default, starts)",
    ),
    (
        target_file("response: {calendar: 24x7}"),
        5,
        "levels.A.targets.response",
        "missing key 'duration'",
    ),
    (
        target_file("response: {duration: 1h, calendar: 24x7, starts: dawn}"),
        5,
        "levels.A.targets.response.starts",
        "unknown starts 'dawn' (expected one of: onset, detection, received, request)",
    ),
    (
        target_file("response: 1h"),
        5,
        "levels.A.targets.response",
        "no calendar: give 'calendar' here, on the level or on the policy",
    ),
]


@pytest.mark.parametrize(("text", "line", "key", "problem"), BAD_POLICIES)
def test_a_bad_policy_is_refused_with_the_whole_message(
    tmp_path: Path, text: str, line: int, key: str, problem: str
) -> None:
    err = policy_refusal(tmp_path, text)
    assert (err.line, err.key, err.problem) == (line, key, problem)


def test_escalation_steps_as_written(tmp_path: Path) -> None:
    policy = policy_from_text(
        tmp_path,
        LEVELS + "escalations:\n"
        "  - {action: warning, at: 0.75, target: onsite, levels: [B], note: call the lead}\n"
        "  - {action: breach, at: 1}\n",
    )
    warning, breach = policy.escalations
    assert (warning.action, warning.at, warning.target, warning.levels, warning.note) == (
        EscalationAction.WARNING,
        0.75,
        "onsite",
        frozenset({"B"}),
        "call the lead",
    )
    assert (breach.levels, breach.target, breach.note) == (None, None, "")
    assert [s.action.value for s in policy.escalation_steps("B", "onsite")] == ["warning", "breach"]
    assert [s.action.value for s in policy.escalation_steps("A", "response")] == ["breach"]


BAD_STEPS = [
    ("{action: breach, at: 1, colour: red}", "escalations[0].colour",
     "unknown key (expected one of: action, at, levels, note, target)"),
    ("{at: 1}", "escalations[0]", "missing key 'action'"),
    ("{action: breach}", "escalations[0]", "missing key 'at'"),
    ("{action: breach, at: -0.5}", "escalations[0].at",
     "must be a fraction >= 0 of the target, got -0.5"),
    ("{action: breach, at: 1, levels: [Z]}", "escalations[0].levels[0]",
     "unknown level 'Z' (expected one of: A, B)"),
    ("{action: breach, at: 1, target: onsite, levels: [A]}", "escalations[0].target",
     "no level it applies to has a target 'onsite'"),
]  # fmt: skip


@pytest.mark.parametrize(("step", "key", "problem"), BAD_STEPS)
def test_a_bad_step_is_refused_with_the_whole_message(
    tmp_path: Path, step: str, key: str, problem: str
) -> None:
    err = policy_refusal(tmp_path, LEVELS + f"escalations:\n  - {step}\n")
    assert (err.line, err.key, err.problem) == (14, key, problem)


def test_a_customer_policy_takes_every_key_it_gives(tmp_path: Path) -> None:
    rules = write_rules(
        tmp_path,
        {
            "calendars/site.yaml": "timezone: Asia/Shanghai\nhours: {mon-sat: '08:00-20:00'}\n"
            "workday_hours: '08:00-20:00'\n",
            "policies/acme.yaml": (
                "name: acme\nextends: wthink\ndescription: acme's contract\nsource: contract 7\n"
                "overrides:\n  urgent:\n    response: 10m\n"
                "    onsite: {duration: 3h, calendar: site}\n"
                "warranty: {basis: receipt, months: 24, after_warranty: parts}\n"
                "exemptions: [misuse]\n"
            ),
            "policies/plain.yaml": "extends: wthink\n",
        },
    )
    acme, base = load_policy("acme", rules), load_policy("wthink")
    assert (acme.name, acme.extends, acme.description, acme.source) == (
        "acme",
        "wthink",
        "acme's contract",
        "contract 7",
    )
    assert acme.warranty is not None
    assert (acme.warranty.basis, acme.warranty.months, acme.warranty.after_warranty) == (
        WarrantyBasis.RECEIPT,
        24,
        Charge.PARTS,
    )
    assert acme.exemptions == {"misuse"}
    urgent = acme.levels["urgent"]
    response = urgent.targets["response"]
    old = base.levels["urgent"].targets["response"]
    assert (response.duration, response.calendar) == (parse_duration("10m"), old.calendar)
    assert response.operator_default is False  # the customer's contract names it
    assert urgent.targets["onsite"].calendar.name == "site"  # its own folder's calendar
    plain = load_policy("plain", rules)
    assert (plain.name, plain.description, plain.source) == ("plain", base.description, base.source)
    assert (plain.warranty, plain.exemptions, plain.levels) == (
        base.warranty,
        base.exemptions,
        base.levels,
    )


def test_a_customer_policy_extends_the_preset_of_its_own_folder(tmp_path: Path) -> None:
    """The folder's own 'xian-integrator' (a level defined differently) is the one extended."""
    rules = tmp_path / "rules"
    shutil.copytree(default_rules_dir() / "calendars", rules / "calendars")
    shipped = (default_rules_dir() / "policies" / "xian-integrator.yaml").read_text()
    (rules / "policies").mkdir()
    own = shipped.replace("definition:", "definition: OWN", 1)
    (rules / "policies" / "xian-integrator.yaml").write_text(own)
    (rules / "policies" / "acme.yaml").write_text("extends: xian-integrator\n")
    acme = load_policy("acme", rules)
    assert any(lv.definition.startswith("OWN") for lv in acme.levels.values())


BAD_CUSTOMERS = [
    ("name: other\nextends: wthink\n", 1, "name", "name 'other' differs from the file name"),
    ("extends: acme\n", 1, "extends", "a policy cannot extend itself"),
    (
        "extends: middle\n",
        1,
        "extends",
        "'middle' extends another policy: extend the preset itself",
    ),
]


@pytest.mark.parametrize(("text", "line", "key", "problem"), BAD_CUSTOMERS)
def test_customer_policy_refusals(
    tmp_path: Path, text: str, line: int, key: str, problem: str
) -> None:
    rules = write_rules(
        tmp_path, {"policies/acme.yaml": text, "policies/middle.yaml": "extends: wthink\n"}
    )
    with pytest.raises(ConfigError) as info:
        load_policy("acme", rules)
    assert (info.value.line, info.value.key, info.value.problem) == (line, key, problem)


def test_a_level_resolved_by_a_release_may_change_its_other_targets(tmp_path: Path) -> None:
    rules = write_rules(
        tmp_path,
        {"policies/acme.yaml": "extends: shanghai-energy\noverrides:\n  C: {response: 1h}\n"},
    )
    response = load_policy("acme", rules).levels["C"].targets["response"]
    assert response.duration == parse_duration("1h")
