"""Small inline SVG line charts of a device's recent samples (no script, no library)."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from typing import Any

WIDTH, HEIGHT, PAD = 320, 80, 4


def series(samples: Sequence[dict[str, Any]]) -> dict[str, list[tuple[float, float]]]:
    """Numeric metrics by name: (time, value) points, oldest first."""
    out: dict[str, list[tuple[float, float]]] = {}
    for sample in samples:
        for name, value in sample["metrics"].items():
            if isinstance(value, bool) or not isinstance(value, int | float):
                continue
            out.setdefault(name, []).append((float(sample["at"]), float(value)))
    return out


def svg(name: str, points: Sequence[tuple[float, float]]) -> str:
    if not points:
        return ""
    t0, t1 = points[0][0], points[-1][0]
    lo = min(v for _, v in points)
    hi = max(v for _, v in points)
    span_t, span_v = (t1 - t0) or 1.0, (hi - lo) or 1.0

    def xy(t: float, v: float) -> str:
        x = PAD + (t - t0) / span_t * (WIDTH - 2 * PAD)
        y = HEIGHT - PAD - (v - lo) / span_v * (HEIGHT - 2 * PAD)
        return f"{x:.1f},{y:.1f}"

    path = " ".join(xy(t, v) for t, v in points)
    label = escape(name)
    last = points[-1][1]
    return (
        f'<figure class="chart"><figcaption>{label} <b>{last:g}</b> '
        f"<small>({lo:g} to {hi:g}, {len(points)} samples)</small></figcaption>"
        f'<svg viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{label} over time">'
        f'<polyline fill="none" stroke="currentColor" stroke-width="2" points="{path}"/>'
        "</svg></figure>"
    )


def charts(samples: Sequence[dict[str, Any]]) -> list[str]:
    return [svg(name, pts) for name, pts in sorted(series(samples).items())]
