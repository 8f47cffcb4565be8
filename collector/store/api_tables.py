"""The REST API's tables: bearer tokens (stored as their SHA-256 only) and the audit of actions.

Migration step 5 of the collector store's one list (``collector/store/schema.py``).
"""

from __future__ import annotations

from typing import Final

import sqlalchemy as sa

metadata: Final = sa.MetaData()

_ID = sa.BigInteger().with_variant(sa.Integer, "sqlite")

# A token is shown once when created; only its SHA-256 (hex) is kept, so a copy of the
# database does not hand out access.
api_tokens: Final = sa.Table(
    "api_tokens",
    metadata,
    sa.Column("id", _ID, primary_key=True, autoincrement=True),
    sa.Column("sha256", sa.String(64), nullable=False, unique=True),
    sa.Column("name", sa.String(128), nullable=False),
    sa.Column("role", sa.String(16), nullable=False),  # viewer | operator | admin
    sa.Column("tenant", sa.String(64)),  # None: every tenant
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("revoked_at", sa.Float),
)

# Every action taken through the API or the board: who, what, why, on which ticket or window.
api_actions: Final = sa.Table(
    "api_actions",
    metadata,
    sa.Column("id", _ID, primary_key=True, autoincrement=True),
    sa.Column("at", sa.Float, nullable=False),
    sa.Column("actor", sa.String(128), nullable=False),
    sa.Column("action", sa.String(32), nullable=False),
    sa.Column("ticket", sa.String(32), index=True),
    sa.Column("target", sa.String(128)),  # a device, a site or a maintenance window
    sa.Column("reason", sa.Text, nullable=False, server_default=""),
    sa.Column("result", sa.String(32), nullable=False),
)


def v5_api(conn: sa.Connection) -> None:
    for table in (api_tokens, api_actions):
        table.create(conn, checkfirst=True)
