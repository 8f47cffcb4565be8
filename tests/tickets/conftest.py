"""Fixtures for the ticket tests: the ticket store on SQLite and on PostgreSQL (the helpers
live in tests/support/tickets.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from collector.store.tickets import TicketStore
from collector.tickets.book import TicketBook
from collector.tickets.numbers import MemoryNumbers
from tests.support.pg import fresh_database, reset_schema
from tests.support.tickets import make_book


@pytest.fixture
def book() -> TicketBook:
    return make_book()


@pytest.fixture
def numbers() -> MemoryNumbers:
    return MemoryNumbers()


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """A throw-away PostgreSQL database for this test run (the server must be up)."""
    with fresh_database("fleetdesk_tickets") as url:
        yield url


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'tickets.db'}"
    url: str = request.getfixturevalue("pg_database")
    reset_schema(url)
    return url


@pytest.fixture
def store(db_url: str) -> Iterator[TicketStore]:
    ticket_store = TicketStore(db_url)
    ticket_store.migrate()
    yield ticket_store
    ticket_store.close()
