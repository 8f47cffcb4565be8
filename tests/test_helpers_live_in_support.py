"""Shared test helpers live in tests/support/: no test module imports another test module, a
conftest or a helper kept beside some other folder's tests (bench scripts neither)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def imported_test_modules(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        names: list[str] = []
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level > 0:
            names = [f"<relative import {'.' * node.level}{node.module or ''}>"]
        found += [
            n
            for n in names
            if n.startswith(("tests.", "<relative")) and not n.startswith("tests.support")
        ]
    return found


def test_no_test_imports_a_helper_outside_tests_support() -> None:
    files = sorted([*(ROOT / "tests").rglob("*.py"), *(ROOT / "bench").glob("*.py")])
    offenders = {
        str(f.relative_to(ROOT)): names
        for f in files
        if "support" not in f.relative_to(ROOT).parts[:2] and (names := imported_test_modules(f))
    }
    assert offenders == {}


def test_the_check_sees_an_offender(tmp_path: Path) -> None:
    bad = tmp_path / "test_bad.py"
    bad.write_text("from tests.tickets.test_delivery import helper\nfrom . import conftest\n")
    assert imported_test_modules(bad) == ["tests.tickets.test_delivery", "<relative import .>"]
