"""``fleetdesk tickets``: look-ups by fault number, listing, outbox inspection and requeue."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlalchemy as sa

from collector.cli import main
from collector.store import ticket_tables as schema
from collector.store.tickets import TicketStore
from tests.support.tickets import make_events


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["tickets", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_show_list_outbox_requeue(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = f"sqlite:///{tmp_path / 't.db'}"
    store = TicketStore(db)
    store.migrate()
    make_events(store, devices=2)
    code, out, _ = run(capsys, "show", "--db", db, "FD-20251009-0002")
    assert code == 0
    shown = json.loads(out)
    assert (shown["number"], shown["device"], shown["state"]) == (
        "FD-20251009-0002",
        "d1",
        "resolved",
    )
    code, out, _ = run(capsys, "list", "--db", db)
    assert code == 0
    assert [line.split()[0] for line in out.splitlines()] == [
        "FD-20251009-0002",
        "FD-20251009-0001",
    ]
    with store.engine.begin() as conn:
        conn.execute(
            sa.update(schema.outbox)
            .where(schema.outbox.c.seq == 1)
            .values(state="dead", last_error="rejected: HTTP 400")
        )
    code, out, _ = run(capsys, "outbox", "--db", db)
    report = json.loads(out)
    assert report["counts"] == {"pending": 6, "delivered": 0, "dead": 2}
    assert {d["last_error"] for d in report["dead"]} == {"rejected: HTTP 400"}
    code, out, _ = run(capsys, "requeue", "--db", db, "--sink", "desk")
    assert (code, out) == (0, "requeued 2 dead-lettered event(s)\n")
    assert store.outbox_counts() == {"pending": 8, "delivered": 0, "dead": 0}
    store.close()


@pytest.mark.parametrize(
    ("number", "message"),
    [
        ("FD-20991231-0001", "fleetdesk tickets: no ticket numbered FD-20991231-0001\n"),
        ("42", "fleetdesk tickets: not a fault number (like FD-20251009-0042): '42'\n"),
    ],
)
def test_show_unknown_or_bad_number_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], number: str, message: str
) -> None:
    db = f"sqlite:///{tmp_path / 't.db'}"
    store = TicketStore(db)  # an existing, empty database (a missing file is refused)
    store.migrate()
    store.close()
    code, _, err = run(capsys, "show", "--db", db, number)
    assert (code, err) == (2, message)


def test_unreachable_database_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "list", "--db", "postgresql+psycopg://postgres@127.0.0.1:1/none")
    assert code == 2
    assert err.startswith("fleetdesk tickets: ") and len(err.splitlines()) == 1


def test_open_a_manual_ticket_for_a_site(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A fault reported by phone: the same book, clocks and numbers as a detected one."""
    db = f"sqlite:///{tmp_path / 't.db'}"
    created = TicketStore(db)  # the collector's database (a missing file is refused)
    created.migrate()
    created.close()
    inventory = Path(__file__).resolve().parents[2] / "examples" / "inventory.csv"
    code, out, err = run(
        capsys, "open", "--db", db, "--inventory", str(inventory), "--site", "pump-3",
        "--kind", "site_outage", "--level", "emergency", "--onset", "2026-11-25T10:00+08:00",
        "--actor", "hotline", "--comment", "station dark",
    )  # fmt: skip
    assert (code, err) == (0, "")
    ticket = json.loads(out)
    assert (ticket["site"], ticket["policy"], ticket["level"], ticket["manual"]) == (
        "pump-3",
        "xian-integrator",
        "emergency",
        True,
    )
    assert ticket["subject"]["devices"] == ["pump3-dtu1", "pump3-dtu2", "pump3-gw"]
    assert ticket["coverage_reason"] == "member_in_warranty"
    assert {t["name"]: t["start"] for t in ticket["targets"]}["plan"] == "2026-11-25T02:00:00Z"
    store = TicketStore(db)
    stored = store.find(ticket["number"])
    assert stored is not None and stored.manual
    store.close()
    code, _, err = run(
        capsys, "open", "--db", db, "--inventory", str(inventory), "--site", "pump-3",
        "--kind", "site_outage", "--level", "emergency",
    )  # fmt: skip
    assert code == 2 and "already has ticket" in err
    code, _, err = run(
        capsys, "open", "--db", db, "--inventory", str(inventory), "--device", "nope",
        "--kind", "reboot", "--level", "1",
    )  # fmt: skip
    assert code == 2 and "'nope' is not in" in err
