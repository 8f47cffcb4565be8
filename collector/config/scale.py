"""The collector config's scale-out section (docs/scale-out.md)."""

from __future__ import annotations

from pydantic import Field

from collector.config.typed import Int, Seconds, Section


class ScaleConfig(Section):
    partitions: Int = Field(default=0, ge=0, le=4096)
    """0: this collector serves every device. N: the inventory's devices are split into N
    partitions that the collectors sharing the PostgreSQL store own between them (needs
    `store.url` on PostgreSQL and `rules.inventory`; every collector the same N)."""
    lease_check_s: Seconds = Field(default=1.0, ge=0.1, le=60.0)
    """How often a collector checks its database session and its share of the partitions
    (a dead collector's partitions are taken within about this long)."""
