"""Rule files and inventories: good ones load into frozen objects, bad ones are reported in one
line naming file, line, rule/key and reason (also through ``fleetdesk rules check``)."""

from __future__ import annotations

import contextlib
import dataclasses
import io
from pathlib import Path

import pytest

from collector import cli
from collector.rules.faults import Criticality, Impact
from collector.rules.inventory import InventoryError, load_inventory, parse_csv_inventory
from collector.rules.ruleset import Match, RuleError, Threshold, load_rules, parse_rules
from tests.support.rules import HEADER

ROOT = Path(__file__).resolve().parents[2]


def test_the_default_rules_cover_every_fault_kind_of_the_table() -> None:
    rules = load_rules(ROOT / "rules")
    assert rules.kinds == {
        "device_offline",
        "site_outage",
        "serial_link_down",
        "interface_down",
        "temperature_high",
        "cpu_high",
        "memory_high",
        "disk_full",
        "cellular_signal_weak",
        "wan_loss",
        "reboot",
        "flapping",
    }
    temp = next(r for r in rules.rules if r.name == "temperature_high")
    assert temp.impact is Impact.AT_RISK
    assert temp.condition == Threshold("temp_c", "above", 75.0, for_s=300.0, clear=70.0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        temp.name = "x"  # type: ignore[misc]


A = "rules:\n- name: a\n  impact: info\n"  # a rule's first lines, for the bad fixtures

BAD_RULES = [
    (
        "rules: [{name: a, impact: info, when: {bogus: {}}}]",
        1,
        "a",
        "when.bogus: unknown condition",
    ),
    ("rules:\n  - name: a\n    when: {offline: {}}", 2, "a", "impact: must be one of"),
    (
        A + "  when: {threshold: {metric: x, above: 1, below: 0}}",
        2,
        "a",
        "exactly one of above",
    ),
    (
        A + "  when: {threshold: {metric: x, above: 5, clear_below: 9}}",
        2,
        "a",
        "when.threshold.clear_below: the clear threshold must not be past",
    ),
    (
        A + "  when: {threshold: {metric: x, above: 5, for: 5 minutes}}",
        2,
        "a",
        "when.threshold.for: bad duration",
    ),
    (
        "rules:\n- name: a\n  impact: info\n  colour: red\n  when: {offline: {}}",
        2,
        "a",
        "colour: unknown key",
    ),
    (
        "rules:\n- name: a\n  impact: info\n  when: {event: {names: x}}",
        2,
        "a",
        "give clear_on names",
    ),
    (
        "rules:\n- name: a\n  impact: info\n  when: {threshold: {metric: CPU, above: 1}}",
        2,
        "a",
        "metric name",
    ),
    (
        "rules:\n- name: a\n  impact: info\n  match: {class: 7}\n  when: {offline: {}}",
        2,
        "a",
        "match.class",
    ),
    (
        "rules:\n- name: f\n  impact: info\n  when: {flapping: {of: [nothing]}}",
        2,
        "f",
        "when.flapping.of: no rule raises 'nothing'",
    ),
    ("rules:\n- name: a\n  impact: [info\n", 4, None, "not valid YAML"),
    ("rules:\n- name: a\n  name: b\n", 3, None, "rules[0].name: key given twice"),
    ("rules:\n- {name: Bad, impact: info, when: {offline: {}}}", 2, None, "name: must be"),
    ("rules:\n- {name: a, impact: info, when: {site_outage: {}}}", 2, "a", "needs an offline rule"),
]


@pytest.mark.parametrize(("text", "line", "rule", "message"), BAD_RULES)
def test_bad_rule_files_name_file_line_rule_and_reason(
    text: str, line: int, rule: str | None, message: str
) -> None:
    with pytest.raises(RuleError) as caught:
        parse_rules([(text, "bad.yaml")])
    error = caught.value
    assert (error.source, error.line) == ("bad.yaml", line)
    assert (f"rule {rule!r}:" in str(error)) == (rule is not None)
    assert message in str(error)
    assert str(error).startswith(f"bad.yaml:{line}:") and "\n" not in str(error)


def test_rule_names_are_unique_across_files() -> None:
    one = "rules:\n- {name: a, impact: info, when: {change: {metric: x}}}\n"
    two = "rules:\n\n- {name: a, impact: info, when: {change: {metric: y}}}\n"
    with pytest.raises(RuleError, match=r"two.yaml:3: rule 'a': name: also defined at one.yaml:2"):
        parse_rules([(one, "one.yaml"), (two, "two.yaml")])


def test_a_rule_may_name_its_fault_and_select_devices() -> None:
    text = """
rules:
  - name: wan_link_trap
    fault: interface_down
    impact: at_risk
    match: {class: [router, gateway], model: "WR5*", labels: {role: uplink}}
    when: {trap: {names: [linkDown], clear_on: linkUp, key: ifIndex}}
"""
    (rule,) = parse_rules([(text, "x.yaml")]).rules
    assert rule.fault == "interface_down" and rule.selector.classes == {"router", "gateway"}
    assert rule.condition == Match(
        "trap", frozenset({"linkDown"}), frozenset({"linkUp"}), "ifIndex"
    )


def _csv(*rows: str) -> str:
    return "\n".join((HEADER, *rows)) + "\n"


GOOD = "gw1,acme,WR5120,router,pump-3,,common,acme,shanghai-energy,2026-01-10,12,60"


def test_a_csv_inventory_loads_into_devices_with_sites_and_children() -> None:
    inv = parse_csv_inventory(
        _csv(GOOD, "dtu1,acme,WD150,dtu,pump-3,gw1,uncommon,acme,wthink,,,"), "inv.csv"
    )
    dtu = inv.get("dtu1")
    assert dtu is not None and dtu.parent == "gw1" and dtu.criticality is Criticality.UNCOMMON
    assert dtu.interval_s == 60 and dtu.warranty_start is None and dtu.cls == "dtu"
    assert inv.sites == {"pump-3": ("gw1", "dtu1")} and inv.children == {"gw1": ("dtu1",)}
    assert inv.get("nobody") is None


def test_a_yaml_inventory_is_accepted_too(tmp_path: Path) -> None:
    path = tmp_path / "inv.yaml"
    path.write_text(
        "devices:\n"
        "  - {device: gw1, tenant: acme, model: WR5120, class: router, site: s, parent: null,\n"
        "     criticality: common, customer: acme, policy: mtbox, warranty_start: 2026-01-10,\n"
        "     warranty_months: 12, interval_s: 30, labels: {role: uplink}}\n",
        encoding="utf-8",
    )
    dev = load_inventory(path).get("gw1")
    assert dev is not None and dev.interval_s == 30 and dev.labels == {"role": "uplink"}
    assert str(dev.warranty_start) == "2026-01-10"


BAD_INVENTORIES = [
    (HEADER.replace(",criticality", "") + "\n", 1, "header", "missing column(s): criticality"),
    (
        _csv(GOOD, GOOD.replace("gw1,", "x1,", 1).replace("common", "often")),
        3,
        "criticality",
        "common or uncommon",
    ),
    (_csv(GOOD.replace(",,", ",ghost,", 1)), 2, "parent", "unknown device 'ghost'"),
    (_csv(GOOD, GOOD), 3, "device", "duplicate device 'gw1'"),
    (_csv(GOOD.replace("2026-01-10", "2026-02-30")), 2, "warranty_start", "not a date"),
    (_csv(GOOD.replace(",60", ",0")), 2, "interval_s", "at least 1"),
    (_csv(GOOD.replace("shanghai-energy", "")), 2, "policy", "empty"),
    (
        _csv(
            "a,t,m,router,s,b,common,c,wthink,,,",
            "b,t,m,router,s,a,common,c,wthink,,,",
        ),
        2,
        "parent",
        "parent cycle",
    ),
]


@pytest.mark.parametrize(("text", "line", "key", "message"), BAD_INVENTORIES)
def test_bad_inventories_name_file_line_column_and_reason(
    text: str, line: int, key: str, message: str
) -> None:
    with pytest.raises(InventoryError) as caught:
        parse_csv_inventory(text, "inv.csv")
    assert (caught.value.line, caught.value.key) == (line, key)
    assert str(caught.value).startswith(f"inv.csv:{line}: {key}: ") and message in str(caught.value)


def _check(folder: Path) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main(["rules", "check", str(folder)])
    return code, out.getvalue(), err.getvalue()


def test_rules_check_validates_the_shipped_rules() -> None:
    code, out, err = _check(ROOT / "rules")
    assert code == 0, err
    assert "1 rule file(s)" in out


def test_rules_check_reports_bad_rule_files_and_inventories(tmp_path: Path) -> None:
    (tmp_path / "rules.d").mkdir()
    (tmp_path / "inventories").mkdir()
    (tmp_path / "rules.d" / "a.yaml").write_text(
        "rules:\n- {name: ok, impact: info, when: {change: {metric: x}}}\n", encoding="utf-8"
    )
    (tmp_path / "rules.d" / "b.yaml").write_text(
        "rules:\n- {name: ok, impact: info, when: {change: {metric: y}}}\n"
        "- {name: worse, impact: dire, when: {change: {metric: y}}}\n",
        encoding="utf-8",
    )
    (tmp_path / "inventories" / "good.csv").write_text(_csv(GOOD), encoding="utf-8")
    (tmp_path / "inventories" / "bad.csv").write_text(
        _csv(GOOD.replace("shanghai-energy", "no-such-contract")), encoding="utf-8"
    )
    code, out, err = _check(tmp_path)
    assert code == 2
    problems = err.splitlines()
    assert len(problems) == 2
    assert problems[0].startswith(f"{tmp_path / 'rules.d' / 'b.yaml'}:3: rule 'worse': impact:")
    assert problems[1].startswith(f"{tmp_path / 'inventories' / 'bad.csv'}: gw1.policy: ")
    assert "no-such-contract" in problems[1]
    assert "2 rule file(s), 2 inventory file(s): 2 problem(s)" in out


@pytest.mark.parametrize(
    ("window", "key", "message"),
    [
        (
            "{device: ghost, start: 2026-11-25T02:00:00Z, end: 2026-11-25T03:00:00Z}",
            "device",
            "unknown device",
        ),
        ("{site: s, start: 2026-11-25T02:00:00Z, end: 2026-11-25T03:00:00Z}", "", "exactly one"),
        ("{device: gw1, start: soon, end: 2026-11-25T03:00:00Z}", "start", "RFC 3339"),
    ],
)
def test_bad_maintenance_windows_in_a_yaml_inventory(
    tmp_path: Path, window: str, key: str, message: str
) -> None:
    path = tmp_path / "inv.yaml"
    path.write_text(
        "devices:\n"
        "  - {device: gw1, tenant: a, model: m, class: router, site: s, parent: null,\n"
        "     criticality: common, customer: a, policy: mtbox, warranty_start: null,\n"
        "     warranty_months: null, interval_s: 60}\n"
        f"maintenance:\n  - {window.replace('site: s,', 'site: s, device: gw1,')}\n",
        encoding="utf-8",
    )
    with pytest.raises(InventoryError) as caught:
        load_inventory(path)
    assert caught.value.key == "maintenance[1]" + (f".{key}" if key else "")
    assert message in str(caught.value)


def test_yaml_inventory_errors_name_the_line_of_the_device(tmp_path: Path) -> None:
    path = tmp_path / "inv.yaml"
    path.write_text(
        "devices:\n"
        "  - {device: gw1, class: router, policy: mtbox}\n"
        "  - {device: gw2, class: router, policy: mtbox,\n"
        "     criticality: often}\n",
        encoding="utf-8",
    )
    with pytest.raises(InventoryError) as caught:
        load_inventory(path)
    assert (caught.value.line, caught.value.key) == (3, "devices[2].criticality")
    assert str(caught.value).startswith(f"{path}:3: devices[2].criticality: must be common")


def test_an_empty_rule_file_adds_no_rules() -> None:
    one = "rules:\n- {name: a, impact: info, when: {change: {metric: x}}}\n"
    ruleset = parse_rules([(one, "one.yaml"), ("# nothing yet\n", "two.yaml"), ("", "three.yaml")])
    assert [r.name for r in ruleset.rules] == ["a"]
    assert ruleset.rules[0].line == 2
