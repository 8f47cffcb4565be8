"""No agent module over 500 lines (issue 10): each says what it is about in its name."""

from __future__ import annotations

from pathlib import Path

AGENT = Path(__file__).resolve().parents[2] / "agent"
LIMIT = 500


def test_no_agent_module_over_500_lines() -> None:
    sizes = {
        str(path.relative_to(AGENT.parent)): len(path.read_text(encoding="utf-8").splitlines())
        for path in AGENT.rglob("*.py")
    }
    assert sizes, "no agent modules found"
    over = {name: n for name, n in sizes.items() if n > LIMIT}
    assert not over, f"split these below {LIMIT} lines: {over}"
