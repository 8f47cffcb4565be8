"""Every key of the collector's typed config is documented in docs/collector.md, with a meaning.

The keys are walked from the pydantic models themselves (not from the generated reference),
so a new field fails here until the reference is regenerated and the field has a docstring.
"""

from __future__ import annotations

import typing
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from collector.config.collector import CollectorConfig

DOCS = Path(__file__).resolve().parents[2] / "docs" / "collector.md"


def _models(annotation: Any) -> tuple[list[type[BaseModel]], bool]:
    """The models inside an annotation, and whether it is a list of them (``key[]``)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation], False
    found: list[type[BaseModel]] = []
    many = typing.get_origin(annotation) in (tuple, list)
    for arg in typing.get_args(annotation):
        inner, inner_many = _models(arg)
        found += inner
        many = many or inner_many
    return found, many and bool(found)


def config_keys(model: type[BaseModel], prefix: str = "") -> list[str]:
    keys = []
    for name, field in model.model_fields.items():
        key = prefix + (field.alias or name)
        models, many = _models(field.annotation)
        keys.append(key + ("[]" if many else ""))  # a list of sections is `key[]`
        for inner in models:
            keys += config_keys(inner, key + ("[]." if many else "."))
    return keys


def documented() -> dict[str, str]:
    text = DOCS.read_text(encoding="utf-8")
    table = text[text.index("<!-- generated: fleetdesk collector --reference -->") :]
    rows: dict[str, str] = {}
    for line in table[: table.index("<!-- end generated -->")].splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 4 and cells[0].startswith("`"):
            rows[cells[0].strip("`")] = cells[-1]
    return rows


def test_every_config_key_is_documented_with_its_meaning() -> None:
    keys, docs = config_keys(CollectorConfig), documented()
    assert len(keys) > 50  # the walk found the nested sections
    missing = [k for k in keys if k not in docs]
    assert not missing, f"undocumented keys (fleetdesk collector --reference): {missing}"
    blank = [k for k in keys if not docs[k]]
    assert not blank, f"keys without a meaning (add a docstring to the field): {blank}"


def test_the_walk_sees_a_key_the_docs_lack() -> None:
    class Extra(BaseModel):
        brand_new: int = 0

    class WithExtra(CollectorConfig):
        extra: Extra = Extra()

    keys = config_keys(WithExtra)
    assert "extra.brand_new" in keys and "extra.brand_new" not in documented()
