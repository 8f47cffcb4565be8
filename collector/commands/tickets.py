"""``fleetdesk tickets``: look tickets up by fault number, and manage the delivery outbox.

    fleetdesk tickets show --db URL FD-20251009-0042     the ticket, as JSON, with its SLA dues
    fleetdesk tickets list --db URL [--all] [--json]     one line per ticket, newest first:
                                                         the next SLA due time and time left
    fleetdesk tickets outbox --db URL                    counts and dead-lettered events, JSON
    fleetdesk tickets requeue --db URL [--sink NAME]     send dead-lettered events again
    fleetdesk tickets drop --db URL [--sink NAME]        give them up; their tickets go on
    fleetdesk tickets open --db URL --inventory FILE (--device ID | --site NAME) --kind KIND
        --level LEVEL [--policy P] [--onset ISO] [--sinks FILE]   a fault reported by phone

``open`` runs the same book and clocks as a detected fault and queues the opening for the
sinks whose ``match`` takes it. A running collector reads the ticket at its next start; while
it runs, open manual tickets through its API instead (the same book method).

Bad input (an unreachable database, a SQLite file that does not exist, an unknown fault number)
exits 2 with one line on stderr; a wrong path never creates an empty database.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable

    from collector.store.tickets import TicketStore
    from collector.tickets.model import Ticket
    from collector.tickets.sla_adapter import SlaEngine

HELP = "look up tickets by fault number; list them; inspect and requeue the delivery outbox"


def configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="tickets_command", metavar="ACTION", required=True)
    show = sub.add_parser("show", help="one ticket by its fault number, as JSON")
    show.add_argument("number", metavar="FAULT_NUMBER")
    listing = sub.add_parser("list", help="live tickets, newest first (--all: every ticket)")
    listing.add_argument("--all", action="store_true", help="closed and cancelled ones too")
    for command in (show, listing):
        command.add_argument("--json", action="store_true", help="JSON (show: always JSON)")
        command.add_argument("--rules", type=Path, help="rules folder with the policies' calendars")
    sub.add_parser("outbox", help="outbox rows by state and the dead-lettered events, JSON")
    requeue = sub.add_parser("requeue", help="send dead-lettered events again")
    requeue.add_argument("--sink", help="only this sink's events")
    drop = sub.add_parser(
        "drop", help="give up on dead-lettered events: the later events they hold back go on"
    )
    drop.add_argument("--sink", help="only this sink's events")
    opening = sub.add_parser("open", help="open a ticket for a fault reported by phone")
    where = opening.add_mutually_exclusive_group(required=True)
    where.add_argument("--device", help="the device's id (inventory)")
    where.add_argument("--site", help="a site: every device of it (inventory)")
    opening.add_argument("--inventory", type=Path, required=True, help="inventory file")
    opening.add_argument("--kind", required=True, help="fault kind, e.g. device_offline")
    opening.add_argument("--level", required=True, help="the policy's level, e.g. 3, A, major")
    opening.add_argument("--policy", help="default: the device's (the site's first device's)")
    opening.add_argument("--impact", default="outage", help="outage (default), degraded, ...")
    opening.add_argument("--onset", help="ISO 8601 with offset (default: now)")
    opening.add_argument("--actor", default="desk", help="who took the report")
    opening.add_argument("--comment", default="", help="what the customer said")
    opening.add_argument("--rules", type=Path, help="rules folder (default: the shipped one)")
    opening.add_argument("--sinks", type=Path, help="sinks file: queue for the matching sinks")
    for command in (show, listing, sub.choices["outbox"], requeue, drop, opening):
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

    from collector.tickets.sla_adapter import SlaEngine

    missing = _missing_sqlite_file(args.db)
    if missing is not None:  # opening would create an empty database and show nothing
        return fail(f"no database at {missing} (--db sqlite:///FILE names an existing file)")
    store = TicketStore(args.db)
    sla = SlaEngine(getattr(args, "rules", None))
    now = datetime.now(UTC)
    try:
        store.migrate()
        if args.tickets_command == "show":
            if not is_fault_number(args.number):
                return fail(f"not a fault number (like FD-20251009-0042): {args.number!r}")
            ticket = store.find(args.number)
            if ticket is None:
                return fail(f"no ticket numbered {args.number}")
            shown = {**codec.ticket_to_dict(ticket), "sla": sla_dues(ticket, sla, now)}
            print(json.dumps(shown, ensure_ascii=False, indent=2))
        elif args.tickets_command == "list":
            found = store.tickets(live_only=not args.all)
            if args.json:
                rows = [{**codec.ticket_to_dict(t), "sla": sla_dues(t, sla, now)} for t in found]
                print(json.dumps(rows, ensure_ascii=False, indent=2))
            for t in [] if args.json else found:
                where = t.device or f"site:{t.site}"
                print(
                    f"{t.number}  {t.state.value:<12} {where:<20} {t.kind:<22} "
                    f"{t.policy}/{t.level}  {t.coverage.value}  opened {codec.iso(t.opened_at)}"
                    f"{next_due(sla_dues(t, sla, now))}"
                )
        elif args.tickets_command == "open":
            return _open(args, store, fail)
        elif args.tickets_command == "outbox":
            report: dict[str, Any] = {"counts": store.outbox_counts(), "dead": store.dead_rows()}
            print(json.dumps(report, ensure_ascii=False, indent=2))
        elif args.tickets_command == "drop":
            count = store.drop_dead(time.time(), args.sink)
            print(f"dropped {count} dead-lettered event(s)")
        else:
            count = store.requeue_dead(time.time(), args.sink)
            print(f"requeued {count} dead-lettered event(s)")
    except (TicketStoreError, sa.exc.SQLAlchemyError) as exc:
        return fail(str(exc).splitlines()[0])
    finally:
        store.close()
    return 0


def sla_dues(ticket: Ticket, sla: SlaEngine, now: datetime) -> list[dict[str, Any]]:
    """Each target's due time and the seconds left (running targets; negative: overdue)."""
    from collector.tickets import codec

    out = []
    for target in ticket.targets:
        try:
            due = sla.instant_at(target, 1.0)
        except ValueError:  # a calendar that is gone: no due time to show
            due = None
        running = target.running and not target.paused
        out.append(
            {
                "target": target.name,
                "due": codec.iso(due) if due is not None else None,
                "left_s": round((due - now).total_seconds()) if due and running else None,
                "paused": target.paused,
                "outcome": target.outcome.value if target.outcome else None,
            }
        )
    return out


def next_due(dues: list[dict[str, Any]]) -> str:
    running = [d for d in dues if d["left_s"] is not None]
    if not running:
        return ""
    first = min(running, key=lambda d: d["left_s"])
    left = int(first["left_s"])
    sign, left = ("-", -left) if left < 0 else ("", left)
    hours, rest = divmod(left, 3600)
    text = f"{sign}{hours}h{rest // 60:02d}m"
    return f"  {first['target']} due {first['due']} ({text} left)"


def _open(args: argparse.Namespace, store: TicketStore, fail: Callable[[str], int]) -> int:
    from collector.delivery.sinks import load_sinks
    from collector.pipeline.ticket_service import TicketService
    from collector.rules.inventory import load_inventory
    from collector.sla.vocabulary import FAULT_KINDS, IMPACTS
    from collector.tickets import codec
    from collector.tickets.book import TicketBook
    from collector.tickets.from_rules import InventoryWarranty
    from collector.tickets.inputs import ManualReport
    from collector.tickets.sla_adapter import SlaEngine

    if args.kind not in FAULT_KINDS:
        return fail(f"unknown fault kind {args.kind!r} (one of: {', '.join(sorted(FAULT_KINDS))})")
    if args.impact not in IMPACTS:
        return fail(f"unknown impact {args.impact!r} (one of: {', '.join(IMPACTS)})")
    try:
        inventory = load_inventory(args.inventory)
        sinks = load_sinks(args.sinks) if args.sinks else {}
    except ValueError as exc:  # ConfigError: file, line, key
        return fail(str(exc))
    devices = InventoryWarranty(inventory)
    members = [args.device] if args.device else list(devices.site_devices(args.site))
    known = [inventory.get(d) for d in members]
    if not members or known[0] is None:
        return fail(f"{args.device or args.site!r} is not in {args.inventory}")
    policy = args.policy or known[0].policy
    now = datetime.now(UTC)
    onset = now
    if args.onset:
        try:
            onset = datetime.fromisoformat(args.onset)
        except ValueError:
            return fail(f"bad --onset {args.onset!r}: not an ISO 8601 timestamp")
        if onset.tzinfo is None:
            return fail(f"bad --onset {args.onset!r}: needs a UTC offset")
    sla = SlaEngine(args.rules)
    service = TicketService(
        book_factory=lambda: TicketBook(policies=sla, devices=devices, sla=sla),
        store=store,
        sla=sla,
        sinks={name: sink.matches for name, sink in sinks.items()},
    )
    try:
        report = ManualReport(
            at=now,
            onset=onset,
            kind=args.kind,
            level=args.level,
            policy=policy,
            device=args.device,
            site=args.site,
            impact=args.impact,
            actor=args.actor,
            comment=args.comment,
        )
        events = service.open_manual(report)
    except ValueError as exc:
        return fail(str(exc))
    print(json.dumps(codec.ticket_to_dict(events[0].ticket), ensure_ascii=False, indent=2))
    return 0


def _missing_sqlite_file(url: str) -> str | None:
    """The file a ``sqlite:`` URL names when it does not exist (None: it does, or not SQLite)."""
    import sqlalchemy as sa

    try:
        parsed = sa.engine.make_url(url)
    except sa.exc.ArgumentError:
        return None  # TicketStore names what is wrong with the URL
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return None if Path(parsed.database).is_file() else parsed.database
