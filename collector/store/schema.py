"""The collector's tables and the numbered migrations that create them.

Adding a migration: append a function ``(connection) -> None`` to ``MIGRATIONS``; it runs once,
in order, in the same transaction that records its number in ``schema_version``. Never edit a
migration that has shipped: add another one. Table objects below describe the latest schema and
are what the data-access layer queries with.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Final

import sqlalchemy as sa

from collector.store import api_tables, ticket_tables

metadata: Final = sa.MetaData()

schema_version: Final = sa.Table(
    "schema_version",
    metadata,
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("applied_at", sa.Float, nullable=False),  # epoch seconds
)

# The device registry: one row per device seen over MQTT or SNMP (or listed in the inventory).
devices: Final = sa.Table(
    "devices",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("tenant", sa.String(64), nullable=False),
    sa.Column("model", sa.String(128), nullable=False, server_default=""),
    sa.Column("serial", sa.String(128), nullable=False, server_default=""),
    sa.Column("firmware", sa.String(128), nullable=False, server_default=""),
    sa.Column("source", sa.String(16), nullable=False, server_default="mqtt"),
    sa.Column("state", sa.String(16), nullable=False, server_default="unknown"),
    sa.Column("boot", sa.String(64), nullable=False, server_default=""),
    sa.Column("last_seq", sa.BigInteger, nullable=False, server_default="-1"),
    sa.Column("gaps", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column(
        "seen_mask", sa.Text, nullable=False, server_default="0"
    ),  # hex bitmap below last_seq
    sa.Column("last_seen", sa.Float),  # epoch seconds of the last arrival
    sa.Column("unassigned", sa.Boolean, nullable=False, server_default=sa.false()),
)

# Open faults as the rules engine reported them (JSON), so a restart shows them at once.
faults: Final = sa.Table(
    "faults",
    metadata,
    sa.Column("fault_key", sa.String(255), primary_key=True),
    sa.Column("device", sa.String(64), nullable=False, index=True),
    sa.Column("kind", sa.String(64), nullable=False),
    sa.Column("opened_at", sa.Float, nullable=False),
    sa.Column("body", sa.Text, nullable=False),
    # the partition of the fault's device or site (scale-out: each collector replaces its own)
    sa.Column("part", sa.Integer, nullable=False, server_default="0"),
)

# Every fault event (opened, cleared, ...) in arrival order: the audit trail.
fault_events: Final = sa.Table(
    "fault_events",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("at", sa.Float, nullable=False),
    sa.Column("device", sa.String(64), nullable=False),
    sa.Column("kind", sa.String(64), nullable=False),
    sa.Column("body", sa.Text, nullable=False),
    # the ticket book's input (JSON), null when tickets are off: the durable fault-to-ticket
    # hand-off, consumed in id order behind the cursor service_state[TICKET_CURSOR]
    sa.Column("signal", sa.Text, nullable=True),
)

TICKET_CURSOR: Final = "ticket_cursor"

# Opaque state blobs that must survive a restart (the rules engine's timers and clocks).
service_state: Final = sa.Table(
    "service_state",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("saved_at", sa.Float, nullable=False),
)


def _v1_registry(conn: sa.Connection) -> None:
    devices.create(conn)


def _v2_faults(conn: sa.Connection) -> None:
    faults.create(conn)
    fault_events.create(conn)
    service_state.create(conn)


def v5_fault_handoff(conn: sa.Connection) -> None:
    """Fault events carry their ticket input; tickets consume them behind a cursor that starts
    after the events already there (those were ticketed by the in-memory hand-off)."""
    # a fresh database got the column from step 2 (which creates the table as described here)
    if "signal" not in {c["name"] for c in sa.inspect(conn).get_columns("fault_events")}:
        conn.execute(sa.text("ALTER TABLE fault_events ADD COLUMN signal TEXT"))
    last = conn.execute(sa.select(sa.func.max(fault_events.c.id))).scalar() or 0
    conn.execute(
        service_state.insert().values(
            name=TICKET_CURSOR, body=f'{{"id": {int(last)}}}', saved_at=time.time()
        )
    )


def v8_fault_partitions(conn: sa.Connection) -> None:
    """Open faults carry their partition, so several collectors keep each other's."""
    if "part" not in {c["name"] for c in sa.inspect(conn).get_columns("faults")}:
        conn.execute(sa.text("ALTER TABLE faults ADD COLUMN part INTEGER NOT NULL DEFAULT 0"))


Migration = Callable[[sa.Connection], None]

# Index + 1 is the schema version the step leads to. Tickets and the delivery outbox
# (collector/store/ticket_tables.py) are steps 3 and 4; the REST API's tokens and audit
# (collector/store/api_tables.py) step 5.
MIGRATIONS: Final[tuple[Migration, ...]] = (
    _v1_registry,
    _v2_faults,
    ticket_tables.v3_tickets,
    ticket_tables.v4_outbox,
    api_tables.v5_api,
    ticket_tables.v_inbound_seen_index,  # 6
    v5_fault_handoff,  # 7
    v8_fault_partitions,  # 8
    ticket_tables.v9_outbox_notify,  # 9
)
