"""What the REST API reads and writes besides the ticket service: tokens, the action audit,
and read-only queries over tickets and the outbox (a ticket's deliveries, dead letters).

Read-only queries never take the ticket service's lock: they read committed rows.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from collector.store import ticket_tables as tt
from collector.store.api_tables import api_actions, api_tokens
from collector.tickets import codec
from collector.tickets.model import Ticket

ROLES = ("viewer", "operator", "admin")
TOKEN_PREFIX = "fdt_"


@dataclass(frozen=True, slots=True)
class TokenInfo:
    id: int
    name: str
    role: str
    tenant: str | None


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(
    engine: sa.Engine, role: str, tenant: str | None = None, name: str = ""
) -> tuple[str, TokenInfo]:
    """A new random token (returned once, never stored) and what it grants."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    name = name or f"{role}{'@' + tenant if tenant else ''}"
    values = {
        "sha256": token_hash(token),
        "name": name,
        "role": role,
        "tenant": tenant,
        "created_at": time.time(),
    }
    with engine.begin() as conn:
        row_id = conn.execute(sa.insert(api_tokens).values(values)).inserted_primary_key
    return token, TokenInfo(int(row_id[0]) if row_id else 0, name, role, tenant)


def lookup_token(engine: sa.Engine, token: str) -> TokenInfo | None:
    t = api_tokens
    stmt = sa.select(t.c.id, t.c.name, t.c.role, t.c.tenant).where(
        t.c.sha256 == token_hash(token), t.c.revoked_at.is_(None)
    )
    with engine.connect() as conn:
        row = conn.execute(stmt).first()
    return TokenInfo(int(row.id), row.name, row.role, row.tenant) if row else None


def record_action(
    conn: sa.Connection,
    *,
    actor: str,
    action: str,
    result: str,
    ticket: str | None = None,
    target: str | None = None,
    reason: str = "",
    at: float | None = None,
) -> None:
    values = {
        "at": time.time() if at is None else at,
        "actor": actor,
        "action": action,
        "ticket": ticket,
        "target": target,
        "reason": reason,
        "result": result,
    }
    conn.execute(sa.insert(api_actions).values(values))


def actions(
    engine: sa.Engine, *, ticket: str | None = None, action: str | None = None, limit: int = 500
) -> list[dict[str, Any]]:
    a = api_actions
    stmt = sa.select(a).order_by(a.c.id).limit(limit)
    if ticket is not None:
        stmt = stmt.where(a.c.ticket == ticket)
    if action is not None:
        stmt = stmt.where(a.c.action == action)
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(stmt)]


def tickets(engine: sa.Engine, *, live: bool | None = None, limit: int = 10_000) -> list[Ticket]:
    """Stored tickets, newest first (``live`` None: every ticket)."""
    t = tt.tickets
    stmt = sa.select(t.c.body).order_by(t.c.opened_at.desc(), t.c.number.desc()).limit(limit)
    if live is not None:
        stmt = stmt.where(t.c.live == live)
    with engine.connect() as conn:
        return [codec.ticket_from_dict(json.loads(b)) for b in conn.execute(stmt).scalars()]


def ticket(engine: sa.Engine, number: str) -> Ticket | None:
    t = tt.tickets
    with engine.connect() as conn:
        body = conn.execute(sa.select(t.c.body).where(t.c.number == number)).scalar_one_or_none()
    return codec.ticket_from_dict(json.loads(body)) if body is not None else None


def deliveries(engine: sa.Engine, numbers: Sequence[str]) -> list[dict[str, Any]]:
    """Every outbox row of these tickets (one per event and sink), oldest first."""
    o = tt.outbox
    stmt = (
        sa.select(
            o.c.id,
            o.c.sink,
            o.c.event_id,
            o.c.ticket,
            o.c.seq,
            o.c.body,
            o.c.state,
            o.c.attempts,
            o.c.created_at,
            o.c.done_at,
            o.c.last_error,
        )
        .where(o.c.ticket.in_(list(numbers)))
        .order_by(o.c.ticket, o.c.seq, o.c.sink)
    )
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(stmt)]


def outbox_counts(engine: sa.Engine) -> dict[str, int]:
    o = tt.outbox
    counts = {"pending": 0, "delivered": 0, "dead": 0}
    with engine.connect() as conn:
        for state, n in conn.execute(sa.select(o.c.state, sa.func.count()).group_by(o.c.state)):
            counts[str(state)] = int(n)
    return counts


def device_tickets(engine: sa.Engine, device: str, limit: int = 200) -> list[Ticket]:
    """A device's tickets, newest first (its ticket key starts with ``device:<id>/``)."""
    t = tt.tickets
    stmt = (
        sa.select(t.c.body)
        .where(t.c.key.startswith(f"device:{device}/", autoescape=True))
        .order_by(t.c.opened_at.desc())
        .limit(limit)
    )
    with engine.connect() as conn:
        return [codec.ticket_from_dict(json.loads(b)) for b in conn.execute(stmt).scalars()]
