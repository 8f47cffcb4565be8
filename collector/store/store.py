"""The one data-access layer over the collector's state (SQLite or PostgreSQL).

SQLAlchemy Core with a synchronous engine: every method is a short transaction, and the async
service calls them through ``asyncio.to_thread`` so the event loop never waits on the disk.
Writes are batched by the callers (a registry flush, a batch of fault events), so the thread
hop costs little. SQLite runs in WAL mode so readers (the web board later) do not block the
writer. PostgreSQL URLs use psycopg 3: ``postgresql+psycopg://user@host/db``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from collector.store import database, schema
from collector.store.database import StoreError


@dataclass(frozen=True, slots=True)
class DeviceRow:
    id: str
    tenant: str
    model: str = ""
    serial: str = ""
    firmware: str = ""
    source: str = "mqtt"
    state: str = "unknown"
    boot: str = ""
    last_seq: int = -1
    gaps: int = 0
    seen_mask: int = 0
    last_seen: float | None = None
    unassigned: bool = False


# (at, device or site, kind, replay-line body, ticket input as JSON or None)
FaultRecord = tuple[float, str, str, dict[str, Any], str | None]


@dataclass(frozen=True, slots=True)
class OpenFault:
    key: str
    device: str
    kind: str
    opened_at: float
    body: dict[str, Any]


@dataclass(frozen=True, slots=True)
class OpenSet:
    """A change to the stored open-fault set: ``full``, it is replaced by ``faults`` (at start,
    and now and then); else ``faults`` are written (opened or changed) and ``removed`` keys go.
    A delta keeps a fault pass O(its events), not O(every open fault)."""

    faults: list[OpenFault]
    removed: list[str] = field(default_factory=list)
    full: bool = False


@dataclass(frozen=True, slots=True)
class FaultScope:
    """The partitions one collector owns (scale-out): its open-fault set replaces only theirs."""

    parts: frozenset[int]
    part_of: Callable[[str], int | None]  # a fault subject's (device or site) partition


# Fault events are consumed in id order behind one cursor; with several writers (partitions) an
# id taken earlier could commit later and be passed over. Partitioned collectors take this
# transaction lock before inserting, so ids are committed in order (fault events are rare).
FAULT_EVENTS_LOCK = 0x666C6401


class Store:
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    @classmethod
    def open(cls, url: str) -> Store:
        """Connect and bring the schema up to date (creates an SQLite file if needed)."""
        try:
            engine = database.create_engine(url)
        except sa.exc.SQLAlchemyError as exc:
            raise StoreError(f"store {database.safe_url(url)}: {exc}") from None
        store = cls(engine)
        store.migrate()
        return store

    def close(self) -> None:
        self.engine.dispose()

    def version(self) -> int:
        return database.version(self.engine)

    def migrate(self) -> int:
        return database.migrate(self.engine)

    # ----------------------------------------------------------------- devices

    def upsert_devices(self, rows: Sequence[DeviceRow]) -> None:
        if not rows:
            return
        with self.engine.begin() as conn:
            self._upsert_devices(conn, rows)

    def _upsert_devices(self, conn: sa.Connection, rows: Sequence[DeviceRow]) -> None:
        table = schema.devices
        if self.engine.dialect.name == "postgresql":
            from sqlalchemy.dialects.postgresql import insert as pg_insert

            stmt: Any = pg_insert(table)
        else:
            from sqlalchemy.dialects.sqlite import insert as sqlite_insert

            stmt = sqlite_insert(table)
        stmt = stmt.on_conflict_do_update(
            index_elements=[table.c.id],
            set_={c.name: stmt.excluded[c.name] for c in table.columns if c.name != "id"},
        )
        conn.execute(stmt, [_device_values(r) for r in rows])

    def commit_intake(
        self,
        rows: Sequence[DeviceRow],
        events: Sequence[FaultRecord],
        open_now: OpenSet | list[OpenFault] | None,
        *,
        scope: FaultScope | None = None,
        states: Mapping[str, dict[str, Any]] | None = None,
        then: Callable[[sa.Connection], None] | None = None,
    ) -> None:
        """One intake commit: device rows, fault events (with their ticket input) and, when
        faults changed, the open-fault set, in one transaction (the batch's MQTT messages are
        acknowledged after it). ``scope``: only these partitions' open faults are replaced;
        ``states``: state blobs saved in the same transaction (a partition's rules state, so a
        new owner continues from exactly the faults committed here); ``then``: more work in
        the same transaction, last (the tickets of these fault events)."""
        if not rows and not events and open_now is None and not states:
            return
        with self.engine.begin() as conn:
            if rows:
                self._upsert_devices(conn, rows)
            if events or open_now is not None:
                self._record_faults(conn, events, open_now, scope)
            for name, body in (states or {}).items():
                self._save_state(conn, name, body)
            if then is not None:
                then(conn)

    def devices(self) -> list[DeviceRow]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(schema.devices).order_by(schema.devices.c.id))
            return [_device_row(row._asdict()) for row in rows]

    def device(self, device_id: str) -> DeviceRow | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(schema.devices).where(schema.devices.c.id == device_id)
            ).first()
            return _device_row(row._asdict()) if row else None

    # ----------------------------------------------------------------- faults

    def record_faults(
        self,
        events: Iterable[FaultRecord],
        open_now: OpenSet | list[OpenFault],
        scope: FaultScope | None = None,
    ) -> None:
        """Append fault events and replace (a list) or change (``OpenSet``) the open-fault set
        (of ``scope``'s partitions, or all), in one transaction."""
        with self.engine.begin() as conn:
            self._record_faults(conn, list(events), open_now, scope)

    def _record_faults(
        self,
        conn: sa.Connection,
        events: Sequence[FaultRecord],
        open_now: OpenSet | list[OpenFault] | None,
        scope: FaultScope | None = None,
    ) -> None:
        rows = [
            {"at": at, "device": device, "kind": kind, "body": json.dumps(body), "signal": signal}
            for at, device, kind, body, signal in events
        ]
        if rows:
            if conn.dialect.name == "postgresql" and scope is not None:  # several writers
                conn.execute(sa.text(f"SELECT pg_advisory_xact_lock({FAULT_EVENTS_LOCK})"))
            conn.execute(schema.fault_events.insert(), rows)
        if open_now is None:
            return
        change = open_now if isinstance(open_now, OpenSet) else OpenSet(open_now, full=True)
        table = schema.faults
        if not change.full:
            gone = change.removed + [f.key for f in change.faults]
            for start in range(0, len(gone), 500):
                conn.execute(table.delete().where(table.c.fault_key.in_(gone[start : start + 500])))
        elif scope is None:
            conn.execute(table.delete())
        else:  # the other collectors' open faults stay
            conn.execute(table.delete().where(table.c.part.in_(sorted(scope.parts))))
        if change.faults:
            conn.execute(
                table.insert(),
                [
                    {
                        "fault_key": f.key,
                        "device": f.device,
                        "kind": f.kind,
                        "opened_at": f.opened_at,
                        "body": json.dumps(f.body),
                        "part": (scope.part_of(f.device) if scope is not None else None) or 0,
                    }
                    for f in change.faults
                ],
            )

    def open_faults(self) -> list[OpenFault]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(schema.faults).order_by(schema.faults.c.opened_at))
            return [
                OpenFault(r.fault_key, r.device, r.kind, r.opened_at, json.loads(r.body))
                for r in rows
            ]

    def fault_events_after(
        self, cursor: int, limit: int, conn: sa.Connection | None = None
    ) -> list[tuple[int, str | None]]:
        """(id, ticket input) of the fault events after ``cursor``, oldest first (``conn``: in
        that connection's transaction, which sees its own uncommitted events)."""
        table = schema.fault_events
        stmt = (
            sa.select(table.c.id, table.c.signal)
            .where(table.c.id > cursor)
            .order_by(table.c.id)
            .limit(limit)
        )
        if conn is not None:
            return [(int(r.id), r.signal) for r in conn.execute(stmt)]
        with self.engine.connect() as own:
            return [(int(r.id), r.signal) for r in own.execute(stmt)]

    def ticket_cursor(self) -> int:
        body = self.load_state(schema.TICKET_CURSOR)
        return int(body.get("id", 0)) if body else 0

    def fault_event_count(self) -> int:
        with self.engine.connect() as conn:
            return int(
                conn.execute(sa.select(sa.func.count()).select_from(schema.fault_events)).scalar()
                or 0
            )

    # ----------------------------------------------------------------- state blobs

    def save_state(self, name: str, body: dict[str, Any]) -> None:
        with self.engine.begin() as conn:
            self._save_state(conn, name, body)

    def save_states(self, states: Mapping[str, dict[str, Any]]) -> None:
        """Several blobs in one transaction (a collector's partitions)."""
        with self.engine.begin() as conn:
            for name, body in states.items():
                self._save_state(conn, name, body)

    @staticmethod
    def _save_state(conn: sa.Connection, name: str, body: dict[str, Any]) -> None:
        table = schema.service_state
        conn.execute(table.delete().where(table.c.name == name))
        conn.execute(table.insert().values(name=name, body=json.dumps(body), saved_at=time.time()))

    def load_state(self, name: str) -> dict[str, Any] | None:
        table = schema.service_state
        with self.engine.connect() as conn:
            body = conn.execute(sa.select(table.c.body).where(table.c.name == name)).scalar()
        if body is None:
            return None
        loaded = json.loads(body)
        return loaded if isinstance(loaded, dict) else None


def _device_values(row: DeviceRow) -> dict[str, Any]:
    return {
        "id": row.id,
        "tenant": row.tenant,
        "model": row.model,
        "serial": row.serial,
        "firmware": row.firmware,
        "source": row.source,
        "state": row.state,
        "boot": row.boot,
        "last_seq": row.last_seq,
        "gaps": row.gaps,
        "seen_mask": format(row.seen_mask, "x"),
        "last_seen": row.last_seen,
        "unassigned": row.unassigned,
    }


def _device_row(values: dict[str, Any]) -> DeviceRow:
    values["seen_mask"] = int(values["seen_mask"] or "0", 16)
    values["unassigned"] = bool(values["unassigned"])
    return DeviceRow(**values)
