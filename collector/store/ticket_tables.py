"""The ticket tables, the delivery outbox and the migration steps that create them.

The steps are numbers 3 and 4 of the collector store's one migration list
(``collector/store/schema.py``), so one ``schema_version`` covers every table. Times are epoch
seconds (float) like the collector's tables.
"""

from __future__ import annotations

from typing import Final

import sqlalchemy as sa

metadata: Final = sa.MetaData()

_ID = sa.BigInteger().with_variant(sa.Integer, "sqlite")

# One counter row per day: incremented inside the opening transaction, so numbers are unique
# across restarts and across collectors sharing the database.
ticket_numbers: Final = sa.Table(
    "ticket_numbers",
    metadata,
    sa.Column("day", sa.String(8), primary_key=True),  # YYYYMMDD
    sa.Column("last", sa.Integer, nullable=False),
)

tickets: Final = sa.Table(
    "tickets",
    metadata,
    sa.Column("number", sa.String(32), primary_key=True),
    sa.Column("key", sa.String(255), nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("live", sa.Boolean, nullable=False),
    sa.Column("opened_at", sa.Float, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
    sa.Column("body", sa.Text, nullable=False),  # codec.ticket_to_dict as JSON
    # At most one live ticket per (device or site, fault kind), even with several collectors.
    sa.Index(
        "tickets_one_live_per_key",
        "key",
        unique=True,
        sqlite_where=sa.text("live"),
        postgresql_where=sa.text("live"),
    ),
)

device_repairs: Final = sa.Table(
    "device_repairs",
    metadata,
    sa.Column("device", sa.String(64), primary_key=True),
    sa.Column("repaired_on", sa.String(10), nullable=False),  # ISO date of the last repair
    sa.Column("repair_seconds", sa.Float, nullable=False),  # total time spent in repair
)

# One row per (event, sink). A row is written in the same transaction as the ticket change.
outbox: Final = sa.Table(
    "outbox",
    metadata,
    sa.Column("id", _ID, primary_key=True, autoincrement=True),
    sa.Column("sink", sa.String(64), nullable=False),
    sa.Column("event_id", sa.String(64), nullable=False),
    sa.Column("ticket", sa.String(32), nullable=False),
    sa.Column("seq", sa.Integer, nullable=False),
    sa.Column("body", sa.Text, nullable=False),  # codec.event_to_dict as JSON
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("state", sa.String(16), nullable=False),  # pending | delivered | dead
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("next_attempt_at", sa.Float, nullable=False),
    sa.Column("last_error", sa.Text),
    sa.Column("done_at", sa.Float),
    sa.UniqueConstraint("sink", "event_id", name="outbox_once_per_sink"),
    sa.Index("outbox_due", "state", "next_attempt_at"),
    sa.Index("outbox_ticket", "sink", "ticket", "id"),
)

# What a service desk's API called our ticket (Jira key, Zammad id, ServiceNow sys_id).
remote_refs: Final = sa.Table(
    "remote_refs",
    metadata,
    sa.Column("sink", sa.String(64), primary_key=True),
    sa.Column("ticket", sa.String(32), primary_key=True),
    sa.Column("ref", sa.String(255), nullable=False),
)

# Inbound desk requests already applied (webhook-id), so a desk's retry is applied once.
inbound_seen: Final = sa.Table(
    "inbound_seen",
    metadata,
    sa.Column("webhook_id", sa.String(255), primary_key=True),
    sa.Column("received_at", sa.Float, nullable=False),
    sa.Column("status", sa.Integer, nullable=False),
    sa.Column("response", sa.Text, nullable=False),
    sa.Index("inbound_seen_received", "received_at"),  # pruning
)


# checkfirst: a database whose version table was reset (as the store tests do) keeps these
# tables; creating them again must not fail.
def v3_tickets(conn: sa.Connection) -> None:
    for table in (ticket_numbers, tickets, device_repairs):
        table.create(conn, checkfirst=True)


def v4_outbox(conn: sa.Connection) -> None:
    for table in (outbox, remote_refs, inbound_seen):
        table.create(conn, checkfirst=True)


_SEEN_INDEX = "inbound_seen_received"


def v_inbound_seen_index(conn: sa.Connection) -> None:
    """An index to prune ``inbound_seen`` by age (a new database has it from step 4)."""
    indexes = {i["name"] for i in sa.inspect(conn).get_indexes("inbound_seen")}
    if _SEEN_INDEX not in indexes:
        conn.execute(sa.text(f"CREATE INDEX {_SEEN_INDEX} ON inbound_seen (received_at)"))


#: The PostgreSQL channel a commit that queued outbox rows notifies (``fleetdesk deliver``
#: listens on it, so a worker in its own process starts at the commit instead of a poll later).
OUTBOX_CHANNEL = "fleetdesk_outbox"


def v9_outbox_notify(conn: sa.Connection) -> None:
    """PostgreSQL: every statement that queues outbox rows notifies ``OUTBOX_CHANNEL``.

    A trigger, so every writer (the collector, the API, ``fleetdesk tickets``) wakes the
    workers without a statement of its own; PostgreSQL sends it at commit, once per
    transaction, and never for a rolled-back one. SQLite has no notifications (workers poll)."""
    if conn.dialect.name != "postgresql":
        return
    conn.execute(
        sa.text(
            "CREATE OR REPLACE FUNCTION fleetdesk_outbox_notify() RETURNS trigger "
            "LANGUAGE plpgsql AS $$ BEGIN "
            f"PERFORM pg_notify('{OUTBOX_CHANNEL}', ''); RETURN NULL; END $$"
        )
    )
    for trigger in ("outbox_notify_insert", "outbox_notify_requeue"):
        conn.execute(sa.text(f"DROP TRIGGER IF EXISTS {trigger} ON outbox"))
    conn.execute(
        sa.text(
            "CREATE TRIGGER outbox_notify_insert AFTER INSERT ON outbox "
            "FOR EACH STATEMENT EXECUTE FUNCTION fleetdesk_outbox_notify()"
        )
    )
    # a requeued dead row (not a worker settling its own rows: that would wake it for nothing)
    conn.execute(
        sa.text(
            "CREATE TRIGGER outbox_notify_requeue AFTER UPDATE OF state ON outbox FOR EACH ROW "
            "WHEN (NEW.state = 'pending' AND OLD.state <> 'pending') "
            "EXECUTE FUNCTION fleetdesk_outbox_notify()"
        )
    )
