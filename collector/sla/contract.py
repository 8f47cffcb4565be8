"""The contract terms of a policy beyond its clocks: exemptions, warranty and charge tiers.

Parsed from a policy file by ``collector.sla.policy``; see docs/policies.md. Exemptions are
only those the seed names: a fault the rules engine calls exempt (power outage, late
maintenance) under a policy that does not name that exemption owes its SLA like any other.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from collector.config.yamlfile import Node
from collector.sla.vocabulary import EXEMPTIONS


class Charge(enum.StrEnum):
    """What the customer pays for a repair (the seeds' three tiers)."""

    FREE = "free"  # in warranty, in scope: repair and parts free
    PARTS = "parts"  # parts charged, labour free (e.g. after warranty under 003 and 004)
    PARTS_AND_LABOUR = "parts_and_labour"  # parts and labour charged


class TargetStart(enum.StrEnum):
    """When a target's clock starts."""

    ONSET = "onset"  # the fault's onset (the default)
    DETECTION = "detection"  # when the fault is detected, i.e. the ticket opens ("immediate")
    RECEIVED = "received"  # the unit is received for repair (a desk action; transport excluded)
    REQUEST = "request"  # the customer asks for it (on site on request, remote diagnosis)


class WarrantyBasis(enum.Enum):
    ACTIVATION = "activation"  # software authorisation / first activation date
    RECEIPT = "receipt"  # the customer's receipt (courier signing) date
    ACCEPTANCE = "acceptance"  # the acceptance sign-off date


@dataclass(frozen=True)
class Warranty:
    basis: WarrantyBasis
    months: int
    repaired_parts_months: int | None = None  # own warranty of a repaired/replaced part
    extend_after_repair: bool = False  # the unit's warranty is extended by repair time
    note: str = ""
    # What is charged: out of warranty, and in warranty but out of scope (an exempt cause).
    after_warranty: Charge = Charge.PARTS_AND_LABOUR
    out_of_scope: Charge = Charge.PARTS_AND_LABOUR


WARRANTY_KEYS = frozenset(
    {
        "basis",
        "months",
        "repaired_parts_months",
        "extend_after_repair",
        "note",
        "after_warranty",
        "out_of_scope",
    }
)


def parse_warranty(node: Node) -> Warranty:
    keys = node.mapping(WARRANTY_KEYS)
    node.require(keys, "basis", "months")
    basis = keys["basis"].choice(WarrantyBasis, "basis")
    months = keys["months"].integer()
    if months <= 0:
        raise keys["months"].error(f"must be a positive number of months, got {months}")
    parts = keys["repaired_parts_months"].integer() if "repaired_parts_months" in keys else None
    if parts is not None and parts <= 0:
        raise keys["repaired_parts_months"].error(f"must be positive, got {parts}")
    after = keys["after_warranty"].choice(Charge, "charge") if "after_warranty" in keys else None
    scope = keys["out_of_scope"].choice(Charge, "charge") if "out_of_scope" in keys else None
    return Warranty(
        basis=basis,
        months=months,
        repaired_parts_months=parts,
        extend_after_repair=(
            keys["extend_after_repair"].boolean() if "extend_after_repair" in keys else False
        ),
        note=keys["note"].text() if "note" in keys else "",
        after_warranty=after or Charge.PARTS_AND_LABOUR,
        out_of_scope=scope or Charge.PARTS_AND_LABOUR,
    )


def parse_exemptions(node: Node) -> frozenset[str]:
    """A list of exemption words; ``[]`` says the policy names none."""
    if node.is_null():
        return frozenset()
    out: set[str] = set()
    for item in node.items():
        word = item.text()
        if word not in EXEMPTIONS:
            known = ", ".join(sorted(EXEMPTIONS))
            raise item.error(f"unknown exemption {word!r} (expected one of: {known})")
        if word in out:
            raise item.error(f"exemption {word!r} is listed twice")
        out.add(word)
    return frozenset(out)
