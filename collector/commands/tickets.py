"""``fleetdesk tickets``: look tickets up by fault number, and manage the delivery outbox.

    fleetdesk tickets show --db URL FD-20251009-0042     the ticket, as JSON, with its SLA dues
    fleetdesk tickets list --db URL [--all] [--json]     one line per ticket, newest first:
                                                         the next SLA due time and time left
    fleetdesk tickets outbox --db URL                    counts and dead-lettered events, JSON
    fleetdesk tickets requeue --db URL [--sink NAME]     send dead-lettered events again

Bad input (an unreachable database, an unknown fault number) exits 2 with one line on stderr.
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

    from collector.tickets.sla_adapter import SlaEngine

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
