"""The shipped policy presets: their deadlines (issue's table) and their classification."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from collector.sla.policy import EscalationAction, TargetStart, WarrantyBasis, load_policy
from collector.sla.vocabulary import CRITICALITIES, FAULT_KINDS, IMPACTS, SCOPES

SH = ZoneInfo("Asia/Shanghai")
PRESETS = ("shanghai-energy", "xian-integrator", "nanjing-instruments", "mtbox", "wthink")


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=SH)


# Start: Thursday 2026-10-01 03:00, the first day of the National Day holiday (Oct 1-7 off,
# Saturday Oct 10 a make-up working day).
HOLIDAY_START = at("2026-10-01T03:00")

DEADLINES = [
    # 001: response immediate, processing per class; A/B resolved in 1 h / 2 h on 7x24;
    # C/D (working days) have no resolution deadline: a later release fixes them.
    (
        "shanghai-energy",
        "A",
        {
            "response": "2026-10-01T03:00",
            "processing": "2026-10-01T03:15",
            "resolution": "2026-10-01T04:00",
        },
    ),
    (
        "shanghai-energy",
        "B",
        {
            "response": "2026-10-01T03:00",
            "processing": "2026-10-01T03:30",
            "resolution": "2026-10-01T05:00",
        },
    ),
    ("shanghai-energy", "C", {"response": "2026-10-08T09:00", "processing": "2026-10-08T09:45"}),
    ("shanghai-energy", "D", {"response": "2026-10-08T09:00", "processing": "2026-10-08T11:00"}),
    # 003: on site on request 4 h and remote diagnosis 24 h, here as if asked at the start.
    (
        "xian-integrator",
        "1",
        {
            "response": "2026-10-01T15:00",
            "onsite": "2026-10-01T07:00",
            "diagnosis": "2026-10-02T03:00",
        },
    ),
    (
        "xian-integrator",
        "2",
        {
            "response": "2026-10-01T11:00",
            "onsite": "2026-10-01T07:00",
            "diagnosis": "2026-10-02T03:00",
        },
    ),
    (
        "xian-integrator",
        "3",
        {
            "response": "2026-10-01T07:00",
            "onsite": "2026-10-01T07:00",
            "diagnosis": "2026-10-02T03:00",
        },
    ),
    (
        "xian-integrator",
        "emergency",
        {
            "response": "2026-10-01T03:00",
            "onsite": "2026-10-01T07:00",
            "plan": "2026-10-02T03:00",
            "diagnosis": "2026-10-02T03:00",
        },
    ),
    (
        "nanjing-instruments",
        "general",
        {
            "response": "2026-10-01T03:30",
            "onsite": "2026-10-01T05:00",
            "resolution": "2026-10-01T15:00",
            "repair": "2026-10-13T18:00",  # Oct 8, 9, 10 (make-up Saturday), 12, 13
        },
    ),
    (
        "nanjing-instruments",
        "important",
        {
            "response": "2026-10-01T03:30",
            "onsite": "2026-10-01T05:00",
            "resolution": "2026-10-01T15:00",
            "repair": "2026-10-13T18:00",
        },
    ),
    (
        "nanjing-instruments",
        "major",
        {
            "response": "2026-10-01T03:30",
            "onsite": "2026-10-01T05:00",
            "resolution": "2026-10-02T03:00",
            "repair": "2026-10-13T18:00",
        },
    ),
    (
        "nanjing-instruments",
        "special",
        {"response": "2026-10-01T03:30", "resolution": "2026-10-02T03:00"},
    ),
    ("mtbox", "hardware", {"repair": "2026-10-13T18:00"}),
    ("mtbox", "platform", {"response": "2026-10-08T11:00", "resolution": "2026-10-09T18:00"}),
    # every day 09:00-17:00, holidays included: 1wd = 8 h
    (
        "wthink",
        "urgent",
        {
            "response": "2026-10-01T10:00",
            "onsite": "2026-10-01T17:00",
            "resolution": "2026-10-02T17:00",
        },
    ),
    ("wthink", "normal", {"response": "2026-10-01T13:00", "resolution": "2026-10-05T17:00"}),
]


@pytest.mark.parametrize(("preset", "level", "expected"), DEADLINES)
def test_preset_deadlines_from_a_holiday_night(
    preset: str, level: str, expected: dict[str, str]
) -> None:
    policy = load_policy(preset)
    assert policy.deadlines(level, HOLIDAY_START) == {k: at(v) for k, v in expected.items()}


def test_presets_cover_every_level_in_the_table() -> None:
    for preset in PRESETS:
        covered = {level for name, level, _ in DEADLINES if name == preset}
        assert covered == set(load_policy(preset).levels)


def test_preset_durations_are_the_published_numbers() -> None:
    durations = {
        (p, lv, t): str(target.duration)
        for p in PRESETS
        for lv, level in load_policy(p).levels.items()
        for t, target in level.targets.items()
    }
    assert durations[("shanghai-energy", "D", "processing")] == "2h"
    assert durations[("shanghai-energy", "A", "resolution")] == "1h"
    assert durations[("shanghai-energy", "B", "resolution")] == "2h"
    assert ("shanghai-energy", "C", "resolution") not in durations
    assert durations[("nanjing-instruments", "major", "repair")] == "5wd"
    assert durations[("wthink", "urgent", "onsite")] == "1wd"
    assert durations[("xian-integrator", "emergency", "plan")] == "1d"
    calendars = {
        (p, lv, t): target.calendar.name
        for p in PRESETS
        for lv, level in load_policy(p).levels.items()
        for t, target in level.targets.items()
    }
    assert calendars[("shanghai-energy", "B", "resolution")] == "24x7"
    assert calendars[("shanghai-energy", "C", "processing")] == "cn-workdays"
    assert calendars[("nanjing-instruments", "general", "repair")] == "cn-workdays"
    assert calendars[("nanjing-instruments", "general", "onsite")] == "24x7"
    assert {c for (p, _, _), c in calendars.items() if p == "wthink"} == {"every-day-0900-1700"}


def _shanghai(kind: str, impact: str, scope: str, crit: str) -> str:
    return {"outage": "A", "at_risk": "B", "degraded": "C"}.get(impact, "D")


def _xian(kind: str, impact: str, scope: str, crit: str) -> str:
    if impact == "outage" and scope == "site":
        return "emergency"
    if impact in {"outage", "degraded"}:  # abnormal or interrupted: service is affected
        return "3" if crit == "common" else "2"
    return "1"


def _nanjing(kind: str, impact: str, scope: str, crit: str) -> str:
    if kind in {"device_offline", "temperature_high", "reboot", "site_outage"}:
        return "major"
    if kind in {"serial_link_down", "interface_down"}:
        return "important"
    return "general"


def _mtbox(kind: str, impact: str, scope: str, crit: str) -> str:
    hardware = {"device_offline", "temperature_high", "serial_link_down", "interface_down"}
    return "hardware" if kind in hardware | {"reboot"} else "platform"


def _wthink(kind: str, impact: str, scope: str, crit: str) -> str:
    return "urgent" if impact == "outage" else "normal"


EXPECTED_CLASSIFICATION: dict[str, Callable[[str, str, str, str], str]] = {
    "shanghai-energy": _shanghai,
    "xian-integrator": _xian,
    "nanjing-instruments": _nanjing,
    "mtbox": _mtbox,
    "wthink": _wthink,
}


@pytest.mark.parametrize("preset", PRESETS)
def test_preset_classification_over_every_combination(preset: str) -> None:
    policy = load_policy(preset)
    expected = EXPECTED_CLASSIFICATION[preset]
    for kind, impact, scope, crit in itertools.product(
        sorted(FAULT_KINDS), IMPACTS, SCOPES, CRITICALITIES
    ):
        got = policy.classify(kind, impact, scope, crit)
        assert got == expected(kind, impact, scope, crit), (kind, impact, scope, crit)


def test_special_is_never_chosen_automatically() -> None:
    policy = load_policy("nanjing-instruments")
    assert policy.levels["special"].manual_only
    chosen = {
        policy.classify(k, i, s, c)
        for k, i, s, c in itertools.product(FAULT_KINDS, IMPACTS, SCOPES, CRITICALITIES)
    }
    assert chosen == {"major", "important", "general"}


def test_classify_rejects_unknown_words() -> None:
    policy = load_policy("wthink")
    with pytest.raises(ValueError, match="unknown impact 'down'"):
        policy.classify("device_offline", "down", "device", "common")
    with pytest.raises(ValueError, match="unknown scope"):
        policy.classify("device_offline", "outage", "region", "common")


def test_escalation_steps_and_warranty() -> None:
    wthink = load_policy("wthink")
    steps = wthink.escalation_steps("urgent", "resolution")
    assert [(s.action, s.at) for s in steps] == [
        (EscalationAction.SECOND_LINE, 0.5),
        (EscalationAction.WARNING, 0.75),
        (EscalationAction.BREACH, 1.0),
    ]
    assert [s.action for s in wthink.escalation_steps("urgent", "response")] == [
        EscalationAction.WARNING,
        EscalationAction.BREACH,
    ]
    for preset in PRESETS:
        actions = {(s.action, s.at) for s in load_policy(preset).escalations}
        assert {(EscalationAction.WARNING, 0.75), (EscalationAction.BREACH, 1.0)} <= actions
    assert wthink.warranty is not None and wthink.warranty.basis is WarrantyBasis.ACTIVATION
    mtbox = load_policy("mtbox").warranty
    assert mtbox is not None
    assert (mtbox.basis, mtbox.months, mtbox.repaired_parts_months) == (
        WarrantyBasis.RECEIPT,
        12,
        12,
    )
    xian = load_policy("xian-integrator")
    assert xian.warranty is not None
    assert (xian.warranty.basis, xian.warranty.months, xian.warranty.extend_after_repair) == (
        WarrantyBasis.ACCEPTANCE,
        36,
        True,
    )
    assert xian.followup is not None
    assert xian.followup.due(at("2026-10-01T10:00")) == at("2026-10-02T10:00")


def test_unknown_level_names_the_levels() -> None:
    with pytest.raises(ValueError, match=r"has no level 'E' \(levels: A, B, C, D\)"):
        load_policy("shanghai-energy").deadlines("E", HOLIDAY_START)


def test_unknown_policy_names_the_presets() -> None:
    with pytest.raises(ValueError, match=r"unknown policy 'nope'.*wthink"):
        load_policy("nope")


def test_loaded_policies_are_hashable_values() -> None:
    a, b = load_policy("wthink"), load_policy("mtbox")
    assert len({a, b, load_policy("wthink")}) == 2
    assert hash(a.levels["urgent"]) == hash(load_policy("wthink").levels["urgent"])


def test_targets_a_desk_action_starts() -> None:
    """002/004 repair runs from the unit's receipt; 003 on site on request and diagnosis."""
    starts = {
        (p, lv, t): target.starts.value
        for p in PRESETS
        for lv, level in load_policy(p).levels.items()
        for t, target in level.targets.items()
        if target.starts not in (TargetStart.ONSET, TargetStart.DETECTION)
    }
    assert starts == {
        ("mtbox", "hardware", "repair"): "received",
        **{("nanjing-instruments", lv, "repair"): "received" for lv in NANJING_REPAIR},
        **{("xian-integrator", lv, "onsite"): "request" for lv in ("1", "2", "3")},
        **{("xian-integrator", lv, "diagnosis"): "request" for lv in XIAN_LEVELS},
    }


NANJING_REPAIR = ("general", "important", "major")
XIAN_LEVELS = ("1", "2", "3", "emergency")


def test_exemptions_are_the_seeds_own() -> None:
    assert load_policy("shanghai-energy").exemptions == frozenset()  # 001 names none
    assert load_policy("xian-integrator").exemptions == frozenset()  # 003 names none
    assert "power_outage" in load_policy("wthink").exemptions  # 000: force majeure list
    assert len(load_policy("wthink").exemptions) == 10
    assert "power_outage" not in load_policy("mtbox").exemptions  # 002 names electric shock
    assert load_policy("nanjing-instruments").exemptions == {"misuse", "unauthorised_disassembly"}


def test_charge_tiers_after_warranty() -> None:
    tiers = {
        p: (w.after_warranty.value, w.out_of_scope.value)
        for p in PRESETS
        if (w := load_policy(p).warranty) is not None
    }
    assert tiers["mtbox"] == ("parts_and_labour", "parts")  # 002 section 4
    assert tiers["xian-integrator"][0] == "parts"  # 003: repair free, parts charged
    assert tiers["nanjing-instruments"][0] == "parts"  # 004: free on-site service, parts


def test_operator_defaults_are_marked() -> None:
    """000 and 002's platform say "time agreed in the contract": the numbers are defaults."""
    for level in load_policy("wthink").levels.values():
        assert all(t.operator_default for t in level.targets.values())
    platform = load_policy("mtbox").levels["platform"].targets
    assert all(t.operator_default for t in platform.values())
    assert not load_policy("mtbox").levels["hardware"].targets["repair"].operator_default
    for preset in ("shanghai-energy", "xian-integrator", "nanjing-instruments"):
        for level in load_policy(preset).levels.values():
            assert not any(t.operator_default for t in level.targets.values())


# Start: Friday 2026-10-09 17:30, half an hour before the close; Saturday Oct 10 is the
# National Day make-up working day (09:00-18:00), Sunday Oct 11 is off. Working-day targets
# only (the 24x7 ones do not see the difference).
MAKEUP_START = at("2026-10-09T17:30")
MAKEUP_DEADLINES = [
    # 001 C/D: response due at detection (the start), processing 45 min / 2 h
    ("shanghai-energy", "C", "processing", "2026-10-10T09:15"),  # 30 min Fri + 15 min Sat
    ("shanghai-energy", "D", "processing", "2026-10-10T10:30"),
    ("shanghai-energy", "C", "response", "2026-10-09T17:30"),
    # 002: repair 5 working days (45 h) from the receipt: Fri 0.5, Sat 9, Mon-Wed 27, Thu 8.5
    ("mtbox", "hardware", "repair", "2026-10-15T17:30"),
    ("mtbox", "platform", "response", "2026-10-10T10:30"),  # operator default 2 h
    ("mtbox", "platform", "resolution", "2026-10-12T17:30"),  # 2 wd = 18 h: 0.5 + 9 + 8.5
    # 004: the repair cycle runs on cn-workdays as well
    ("nanjing-instruments", "major", "repair", "2026-10-15T17:30"),
]


@pytest.mark.parametrize(("preset", "level", "target", "due"), MAKEUP_DEADLINES)
def test_preset_deadlines_across_a_makeup_working_day(
    preset: str, level: str, target: str, due: str
) -> None:
    assert load_policy(preset).deadlines(level, MAKEUP_START)[target] == at(due)
