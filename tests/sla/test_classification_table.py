"""A policy's classification table: each bad row refused with its whole message, and the row
that decided a fault explained by its line and its conditions (what `fleetdesk sla` and the
API print)."""

from __future__ import annotations

from pathlib import Path

import pytest

from collector.config.errors import ConfigError
from collector.sla.policy import Policy
from tests.support.sla import policy_from_text, policy_refusal

HEAD = """\
levels:
  A:
    definition: down
    targets:
      resolution: {duration: 45m, calendar: cn-workdays}
  B:
    definition: slow
    targets:
      resolution: {duration: 4h, calendar: cn-workdays}
classification:
"""  # the table starts on line 10


def load(tmp_path: Path, table: str) -> Policy:
    return policy_from_text(tmp_path, HEAD + table)


def refusal(tmp_path: Path, table: str) -> ConfigError:
    return policy_refusal(tmp_path, HEAD + table)


BAD_ROWS = [
    (
        "  - {level: A, colour: red}\n",
        "classification[0].colour",
        "unknown key (expected one of: level, when)",
    ),
    ("  - when: {kind: cpu_high}\n", "classification[0]", "missing key 'level'"),
    ("  - level: Z\n", "classification[0].level", "unknown level 'Z' (levels: A, B)"),
    (
        "  - {level: A, when: {colour: red}}\n",
        "classification[0].when.colour",
        "unknown key (expected one of: criticality, impact, kind, scope)",
    ),
    (
        "  - {level: A, when: {scope: planet}}\n",
        "classification[0].when.scope",
        "unknown scope 'planet' (expected one of: device, site)",
    ),
    (
        "  - {level: A, when: {criticality: vital}}\n",
        "classification[0].when.criticality",
        "unknown criticality 'vital' (expected one of: common, uncommon)",
    ),
    (
        "  - {level: A, when: {impact: [outage, down]}}\n",
        "classification[0].when.impact[1]",
        "unknown impact 'down' (expected one of: at_risk, degraded, info, intermittent, outage)",
    ),
]


@pytest.mark.parametrize(("table", "key", "problem"), BAD_ROWS)
def test_a_bad_row_is_refused_with_the_whole_message(
    tmp_path: Path, table: str, key: str, problem: str
) -> None:
    err = refusal(tmp_path, table)
    assert (err.line, err.key, err.problem) == (11, key, problem)


def test_the_deciding_row_is_explained_by_its_line_and_conditions(tmp_path: Path) -> None:
    policy = load(
        tmp_path,
        "  - when: {kind: [wan_loss, device_offline], impact: outage, scope: site,"
        " criticality: common}\n"
        "    level: A\n"
        "  - when: {impact: [degraded, at_risk]}\n"
        "    level: B\n"
        "  - level: B\n",
    )
    first = policy.classification_rule("wan_loss", "outage", "site", "common")
    assert first is not None and first.line == 11
    assert first.describe() == (
        "kind in ['device_offline', 'wan_loss'] and impact in ['outage'] and scope in ['site']"
        " and criticality in ['common'] -> A"
    )
    second = policy.classification_rule("cpu_high", "at_risk", "device", "common")
    assert second is not None and second.line == 13
    assert second.describe() == "impact in ['at_risk', 'degraded'] -> B"
    last = policy.classification_rule("cpu_high", "info", "device", "uncommon")
    assert last is not None and last.line == 15
    assert last.describe() == "anything -> B"


@pytest.mark.parametrize(
    ("fault", "problem"),
    [
        (("cpu_high", "down", "device", "common"), "unknown impact 'down' (expected one of: "
         "outage, at_risk, degraded, intermittent, info)"),
        (("cpu_high", "info", "planet", "common"), "unknown scope 'planet' (expected one of: "
         "device, site)"),
        (("cpu_high", "info", "site", "vital"), "unknown criticality 'vital' (expected one of: "
         "common, uncommon)"),
    ],
)  # fmt: skip
def test_classifying_an_unknown_word_names_it_and_the_words_known(
    tmp_path: Path, fault: tuple[str, str, str, str], problem: str
) -> None:
    policy = load(tmp_path, "  - level: B\n")
    with pytest.raises(ValueError) as info:
        policy.classify(*fault)
    assert str(info.value) == problem
