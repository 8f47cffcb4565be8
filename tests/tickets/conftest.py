"""Shared pieces for the ticket tests: a small policy table and a book factory."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from collector.store.tickets import TicketStore
from collector.tickets.book import TicketBook
from collector.tickets.inputs import FaultSignal
from collector.tickets.numbers import MemoryNumbers
from collector.tickets.sla_adapter import SlaEngine
from collector.tickets.terms import DeviceWarranty


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


#: The shipped policies through the real SLA engine (read once, by `load_policy`).
ENGINE = SlaEngine()


@dataclass
class Devices:
    table: dict[str, DeviceWarranty] = field(default_factory=dict)

    def warranty(self, device: str) -> DeviceWarranty:
        return self.table.get(device, DeviceWarranty(start=None))

    def site_devices(self, site: str) -> tuple[str, ...]:
        return tuple(sorted(d for d, w in self.table.items() if w.site == site))


DEVICES = {
    "r1": DeviceWarranty(start=date(2025, 1, 1), months=36),
    "old": DeviceWarranty(start=date(2020, 1, 1), months=12),
}


def make_book(devices: Devices | None = None) -> TicketBook:
    return TicketBook(policies=ENGINE, devices=devices or Devices(dict(DEVICES)), sla=ENGINE)


@pytest.fixture
def book() -> TicketBook:
    return make_book()


@pytest.fixture
def numbers() -> MemoryNumbers:
    return MemoryNumbers()


def fault(
    event: str,
    at: str,
    *,
    device: str | None = "r1",
    site: str | None = None,
    kind: str = "device_offline",
    policy: str = "xian-integrator",
    level: str = "3",
    onset: str | None = None,
    exempt: str | None = None,
) -> FaultSignal:
    return FaultSignal(
        event=event,
        at=utc(at),
        fault_id=f"{device or site}/{kind}",
        kind=kind,
        impact="outage",
        device=device,
        site=site,
        onset=utc(onset or at),
        policy=policy,
        level=level,
        exempt=exempt,
    )


# -- databases: the ticket store runs against SQLite and the local PostgreSQL ---------------

PG_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """A throw-away PostgreSQL database for this test run (the local server must be up)."""
    import sqlalchemy as sa

    name = f"fleetdesk_tickets_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    except sa.exc.OperationalError as exc:
        pytest.fail(f"PostgreSQL at 127.0.0.1:5432 is not reachable: {exc}")
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _reset_pg(url: str) -> None:
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("DROP SCHEMA public CASCADE"))
        conn.execute(sa.text("CREATE SCHEMA public"))
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'tickets.db'}"
    url: str = request.getfixturevalue("pg_database")
    _reset_pg(url)
    return url


@pytest.fixture
def store(db_url: str) -> Iterator[TicketStore]:
    ticket_store = TicketStore(db_url)
    ticket_store.migrate()
    yield ticket_store
    ticket_store.close()
