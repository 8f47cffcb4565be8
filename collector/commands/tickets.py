"""``fleetdesk tickets``: look tickets up by fault number, and manage the delivery outbox.

    fleetdesk tickets show --db URL FD-20251009-0042     the ticket, as JSON
    fleetdesk tickets list --db URL [--all]              one line per ticket, newest first
    fleetdesk tickets outbox --db URL                    counts and dead-lettered events, JSON
    fleetdesk tickets requeue --db URL [--sink NAME]     send dead-lettered events again

Bad input (an unreachable database, a SQLite file that does not exist, an unknown fault number)
exits 2 with one line on stderr; a wrong path never creates an empty database.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

HELP = "look up tickets by fault number; list them; inspect and requeue the delivery outbox"


def configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="tickets_command", metavar="ACTION", required=True)
    show = sub.add_parser("show", help="one ticket by its fault number, as JSON")
    show.add_argument("number", metavar="FAULT_NUMBER")
    listing = sub.add_parser("list", help="live tickets, newest first (--all: every ticket)")
    listing.add_argument("--all", action="store_true", help="closed and cancelled ones too")
    sub.add_parser("outbox", help="outbox rows by state and the dead-lettered events, JSON")
    requeue = sub.add_parser("requeue", help="send dead-lettered events again")
    requeue.add_argument("--sink", help="only this sink's events")
    for command in (show, listing, sub.choices["outbox"], requeue):
        command.add_argument(
            "--db", required=True, help="database URL: sqlite:///FILE or postgresql+psycopg://..."
        )


def run(args: argparse.Namespace) -> int:
    import sqlalchemy as sa

    from collector.store.tickets import TicketStore, TicketStoreError
    from collector.tickets import codec
    from collector.tickets.numbers import is_fault_number

    def fail(message: str) -> int:
        print(f"fleetdesk tickets: {message}", file=sys.stderr)
        return 2

    missing = _missing_sqlite_file(args.db)
    if missing is not None:  # opening would create an empty database and show nothing
        return fail(f"no database at {missing} (--db sqlite:///FILE names an existing file)")
    store = TicketStore(args.db)
    try:
        store.migrate()
        if args.tickets_command == "show":
            if not is_fault_number(args.number):
                return fail(f"not a fault number (like FD-20251009-0042): {args.number!r}")
            ticket = store.find(args.number)
            if ticket is None:
                return fail(f"no ticket numbered {args.number}")
            print(json.dumps(codec.ticket_to_dict(ticket), ensure_ascii=False, indent=2))
        elif args.tickets_command == "list":
            for t in store.tickets(live_only=not args.all):
                where = t.device or f"site:{t.site}"
                print(
                    f"{t.number}  {t.state.value:<12} {where:<20} {t.kind:<22} "
                    f"{t.policy}/{t.level}  {t.coverage.value}  opened {codec.iso(t.opened_at)}"
                )
        elif args.tickets_command == "outbox":
            report: dict[str, Any] = {"counts": store.outbox_counts(), "dead": store.dead_rows()}
            print(json.dumps(report, ensure_ascii=False, indent=2))
        else:
            count = store.requeue_dead(time.time(), args.sink)
            print(f"requeued {count} dead-lettered event(s)")
    except (TicketStoreError, sa.exc.SQLAlchemyError) as exc:
        return fail(str(exc).splitlines()[0])
    finally:
        store.close()
    return 0


def _missing_sqlite_file(url: str) -> str | None:
    """The file a ``sqlite:`` URL names when it does not exist (None: it does, or not SQLite)."""
    from pathlib import Path

    import sqlalchemy as sa

    try:
        parsed = sa.engine.make_url(url)
    except sa.exc.ArgumentError:
        return None  # TicketStore names what is wrong with the URL
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return None if Path(parsed.database).is_file() else parsed.database
