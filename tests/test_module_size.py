"""No module in agent/ or collector/ over 500 lines (issue 10): each says what it is about in
its name, and a module that grows past the limit is split, not let grow."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LIMIT = 500


@pytest.mark.parametrize("package", ["agent", "collector"])
def test_no_module_over_500_lines(package: str) -> None:
    sizes = {
        str(path.relative_to(ROOT)): len(path.read_text(encoding="utf-8").splitlines())
        for path in (ROOT / package).rglob("*.py")
    }
    assert sizes, f"no {package} modules found"
    over = {name: n for name, n in sizes.items() if n > LIMIT}
    assert not over, f"split these below {LIMIT} lines: {over}"
