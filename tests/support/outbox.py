"""The outbox as the delivery tests read it: its rows, and the webhook body's JSON schema."""

from __future__ import annotations

import json
from pathlib import Path

import sqlalchemy as sa

from collector.store import ticket_tables as schema
from collector.store.tickets import TicketStore

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((ROOT / "docs" / "webhook.schema.json").read_text())


def outbox_rows(store: TicketStore) -> list[sa.Row]:  # type: ignore[type-arg]
    with store.engine.connect() as conn:
        return list(conn.execute(sa.select(schema.outbox)))
