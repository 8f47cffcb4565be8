"""A policy's warranty and exemptions as written in its file: every key read, every bad value
refused with its whole message (file line and key in the error)."""

from __future__ import annotations

from pathlib import Path

import pytest

from collector.config.errors import ConfigError
from collector.sla.contract import Charge, Warranty, WarrantyBasis
from collector.sla.policy import Policy
from tests.support.sla import policy_from_text, policy_refusal

HEAD = """\
levels:
  A:
    definition: down
    targets:
      resolution: {duration: 45m, calendar: cn-workdays}
classification: [{level: A}]
"""  # what follows starts on line 7


def load(tmp_path: Path, tail: str) -> Policy:
    return policy_from_text(tmp_path, HEAD + tail)


def refusal(tmp_path: Path, tail: str) -> ConfigError:
    return policy_refusal(tmp_path, HEAD + tail)


def test_every_warranty_key_is_read(tmp_path: Path) -> None:
    policy = load(
        tmp_path,
        "warranty:\n  basis: receipt\n  months: 1\n  repaired_parts_months: 1\n"
        "  extend_after_repair: true\n  note: courier signing date\n"
        "  after_warranty: parts\n  out_of_scope: free\n",
    )
    assert policy.warranty == Warranty(
        basis=WarrantyBasis.RECEIPT,
        months=1,  # one month is the shortest warranty, and allowed
        repaired_parts_months=1,
        extend_after_repair=True,
        note="courier signing date",
        after_warranty=Charge.PARTS,
        out_of_scope=Charge.FREE,
    )


def test_warranty_defaults(tmp_path: Path) -> None:
    policy = load(tmp_path, "warranty: {basis: activation, months: 24}\n")
    assert policy.warranty == Warranty(
        basis=WarrantyBasis.ACTIVATION,
        months=24,
        repaired_parts_months=None,
        extend_after_repair=False,
        note="",
        after_warranty=Charge.PARTS_AND_LABOUR,
        out_of_scope=Charge.PARTS_AND_LABOUR,
    )
    assert load(tmp_path / "none", "").warranty is None


BAD_WARRANTIES = [
    (
        "warranty: {basis: receipt, months: 12, colour: red}\n",
        "warranty.colour",
        "unknown key (expected one of: after_warranty, basis, extend_after_repair, months, "
        "note, out_of_scope, repaired_parts_months)",
    ),
    ("warranty: {months: 12}\n", "warranty", "missing key 'basis'"),
    ("warranty: {basis: receipt}\n", "warranty", "missing key 'months'"),
    (
        "warranty: {basis: receipt, months: 0}\n",
        "warranty.months",
        "must be a positive number of months, got 0",
    ),
    (
        "warranty: {basis: receipt, months: -3}\n",
        "warranty.months",
        "must be a positive number of months, got -3",
    ),
    (
        "warranty: {basis: receipt, months: 12, repaired_parts_months: 0}\n",
        "warranty.repaired_parts_months",
        "must be positive, got 0",
    ),
    (
        "warranty: {basis: receipt, months: 12, after_warranty: gratis}\n",
        "warranty.after_warranty",
        "unknown charge 'gratis' (expected one of: free, parts, parts_and_labour)",
    ),
    (
        "warranty: {basis: receipt, months: 12, out_of_scope: gratis}\n",
        "warranty.out_of_scope",
        "unknown charge 'gratis' (expected one of: free, parts, parts_and_labour)",
    ),
    (
        "warranty: {basis: receipt, months: 12, extend_after_repair: often}\n",
        "warranty.extend_after_repair",
        "expected true or false, got 'often'",
    ),
]


@pytest.mark.parametrize(("tail", "key", "problem"), BAD_WARRANTIES)
def test_a_bad_warranty_is_refused_with_the_whole_message(
    tmp_path: Path, tail: str, key: str, problem: str
) -> None:
    err = refusal(tmp_path, tail)
    assert (err.line, err.key, err.problem) == (7, key, problem)


def test_exemptions_as_written(tmp_path: Path) -> None:
    policy = load(tmp_path, "exemptions: [power_outage, misuse]\n")
    assert policy.exemptions == {"power_outage", "misuse"}
    assert policy.exempts("misuse") and not policy.exempts("hacker_attack")
    assert load(tmp_path / "empty", "exemptions: []\n").exemptions == frozenset()
    assert load(tmp_path / "null", "exemptions:\n").exemptions == frozenset()


def test_bad_exemptions_are_refused_with_the_whole_message(tmp_path: Path) -> None:
    err = refusal(tmp_path, "exemptions:\n  - misuse\n  - alien_attack\n")
    assert (err.line, err.key) == (9, "exemptions[1]")
    assert err.problem.startswith(
        "unknown exemption 'alien_attack' (expected one of: customer_accepted_risk, "
        "customer_data_leak, customer_equipment, "
    )
    err = refusal(tmp_path / "twice", "exemptions: [misuse, misuse]\n")
    assert (err.line, err.key, err.problem) == (
        7,
        "exemptions[1]",
        "exemption 'misuse' is listed twice",
    )
