"""What the API and the board read and act on: the live service's parts, all optional but the
database, so the same app serves a collector with or without rules and tickets."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from collector.http.api.events import EventHub
from collector.intake.deadletter import Rejects
from collector.metrics import Metrics
from collector.pipeline.dedup import Registry
from collector.pipeline.ticket_service import TicketService
from collector.rules.engine import Engine
from collector.rules.inventory import Inventory
from collector.rules.maintenance import Window
from collector.store.tsdb import RecentSamples
from collector.tickets.model import TicketEvent
from collector.tickets.sla_adapter import SlaEngine


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass
class ApiContext:
    db: sa.Engine
    metrics: Metrics
    hub: EventHub = field(default_factory=EventHub)
    tickets: TicketService | None = None
    committed: Callable[[Sequence[TicketEvent]], None] | None = None  # wake worker and clock
    inventory: Inventory | None = None
    engine: Engine | None = None
    feed: Callable[[Any], None] | None = None  # a Maintenance input into the live pipeline
    cancel: Callable[[str], Window | None] | None = None  # end a maintenance window now
    registry: Registry | None = None
    recent: RecentSamples | None = None
    rejects: Rejects | None = None
    health: Callable[[], tuple[bool, dict[str, Any]]] | None = None
    rules_dir: Path | None = None
    sla: SlaEngine = field(default_factory=SlaEngine)
    clock: Callable[[], datetime] = _now
    # per ticket event (number, seq): due instants by target, and the nearest one (views.py)
    due_cache: dict[tuple[str, int], dict[str, datetime | None]] = field(default_factory=dict)
    order_cache: dict[tuple[str, int], float] = field(default_factory=dict)
