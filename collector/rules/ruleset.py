"""Rules: the model (``rule_model``) and the file loader (``rule_files``), under one name.

``load_rules`` reads the shipped rules folder, or a folder or file of the operator's.
"""

from __future__ import annotations

from collector.rules.rule_files import (
    RULES_SUBDIR,
    RuleError,
    check_rule_file,
    load_rules,
    parse_rule_files,
    parse_rules,
    rule_error,
    rule_files,
)
from collector.rules.rule_model import (
    Change,
    Condition,
    Flapping,
    Match,
    Offline,
    Op,
    PowerLoss,
    Rule,
    RuleSet,
    Selector,
    SiteOutage,
    Threshold,
)

__all__ = [
    "RULES_SUBDIR",
    "Change",
    "Condition",
    "Flapping",
    "Match",
    "Offline",
    "Op",
    "PowerLoss",
    "Rule",
    "RuleError",
    "RuleSet",
    "Selector",
    "SiteOutage",
    "Threshold",
    "check_rule_file",
    "load_rules",
    "parse_rule_files",
    "parse_rules",
    "rule_error",
    "rule_files",
]
