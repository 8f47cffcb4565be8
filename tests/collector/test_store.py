"""The data-access layer against SQLite and the local PostgreSQL (a throw-away database)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from collector.store import DeviceRow, OpenFault, Store, StoreError, schema


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'state.db'}"
    else:
        url = request.getfixturevalue("pg_url")
    _drop_all(url)  # the PostgreSQL database is shared by the session's tests
    s = Store.open(url)
    yield s
    s.close()
    _drop_all(url)


def _drop_all(url: str) -> None:
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        schema.metadata.drop_all(conn)
        conn.execute(sa.text("DROP TABLE IF EXISTS schema_version"))
    engine.dispose()


def test_migrations_run_once_and_record_their_version(store: Store) -> None:
    assert store.version() == len(schema.MIGRATIONS)
    assert store.migrate() == len(schema.MIGRATIONS)  # idempotent
    names = set(sa.inspect(store.engine).get_table_names())
    assert {"devices", "faults", "fault_events", "service_state", "schema_version"} <= names


def test_a_new_migration_is_applied_on_open(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    extra = sa.Table("extra", sa.MetaData(), sa.Column("id", sa.Integer, primary_key=True))
    monkeypatch.setattr(schema, "MIGRATIONS", (*schema.MIGRATIONS, extra.create))
    assert store.migrate() == len(schema.MIGRATIONS)
    assert sa.inspect(store.engine).has_table("extra")
    extra.drop(store.engine)


def test_devices_upsert_and_read_back(store: Store) -> None:
    first = DeviceRow(id="dev-1", tenant="acme", boot="b1", last_seq=7, seen_mask=2**63 + 5)
    store.upsert_devices([first, DeviceRow(id="dev-2", tenant="acme", unassigned=True)])
    changed = DeviceRow(
        id="dev-1",
        tenant="acme",
        model="WR5120",
        serial="S1",
        firmware="1.2",
        state="online",
        boot="b2",
        last_seq=3,
        gaps=4,
        last_seen=1_700_000_000.5,
    )
    store.upsert_devices([changed])
    assert store.devices() == [changed, DeviceRow(id="dev-2", tenant="acme", unassigned=True)]
    assert store.device("nope") is None
    store.upsert_devices([first])
    assert store.device("dev-1") == first  # a 64-bit bitmap survives


def test_faults_and_state_blobs(store: Store) -> None:
    fault = OpenFault("f1", "dev-1", "device_offline", 1_700_000_000.0, {"level": "A"})
    store.record_faults([(1.0, "dev-1", "device_offline", {"event": "opened"}, None)], [fault])
    assert store.open_faults() == [fault]
    store.record_faults([(2.0, "dev-1", "device_offline", {"event": "cleared"}, None)], [])
    assert store.open_faults() == []
    assert store.fault_event_count() == 2
    assert store.load_state("engine") is None
    store.save_state("engine", {"timers": [1, 2]})
    store.save_state("engine", {"timers": [3]})
    assert store.load_state("engine") == {"timers": [3]}


def test_unreachable_database_is_one_line_error() -> None:
    with pytest.raises(StoreError) as err:
        Store.open("postgresql+psycopg://nobody:secret@127.0.0.1:1/none?connect_timeout=2")
    assert "\n" not in str(err.value) and "secret" not in str(err.value)
    assert "127.0.0.1:1/none" in str(err.value)
