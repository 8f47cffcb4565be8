"""The shell around the ticket book: each input is applied and stored in one transaction.

The book's events, the tickets they leave behind and one outbox row per (event, matching
sink) are committed together; if the transaction fails, the book is rebuilt from the database
so memory never runs ahead of what was committed. A sink receives only the tickets its
``match`` names (customers, tenants, policies, levels); a ticket that matches no sink is not
dropped silently: the book marks it ``routed: false`` (an ``unrouted`` event, stored) and
``on_unrouted`` counts it.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime

from collector.store.tickets import TicketStore, TicketTx
from collector.tickets import codec
from collector.tickets.book import TicketBook
from collector.tickets.inputs import DeskCommand, DeskOutcome, FaultSignal, ManualReport
from collector.tickets.model import EventKind, Ticket, TicketEvent
from collector.tickets.terms import SlaMaths

#: Whether a sink takes a ticket (``collector.delivery.sinks.Sink.matches``).
Route = Callable[[Ticket], bool]


def _every(_ticket: Ticket) -> bool:
    return True


def deadlines(event: TicketEvent, sla: SlaMaths) -> dict[str, datetime | None]:
    return {t.name: sla.instant_at(t, 1.0) for t in event.ticket.targets}


def render(event: TicketEvent, sla: SlaMaths) -> str:
    return json.dumps(codec.event_to_dict(event, deadlines(event, sla)), separators=(",", ":"))


class TicketService:
    def __init__(
        self,
        *,
        book_factory: Callable[[], TicketBook],
        store: TicketStore,
        sla: SlaMaths,
        sinks: Sequence[str] | Mapping[str, Route],
        on_commit: Callable[[Sequence[TicketEvent]], None] | None = None,
        on_unrouted: Callable[[Ticket], None] | None = None,
    ) -> None:
        """``sinks``: names (every ticket goes to each) or name -> which tickets it takes."""
        self._book_factory = book_factory
        self._store = store
        self._sla = sla
        self._routes: dict[str, Route] = (
            dict(sinks) if isinstance(sinks, Mapping) else {name: _every for name in sinks}
        )
        self._on_commit = on_commit
        self._on_unrouted = on_unrouted
        # The book is not thread-safe and the collector calls in from several threads (fault
        # events, the ticket clock, inbound desk actions): one at a time.
        self._lock = threading.RLock()
        self.book = self._reload()

    def on_fault(self, signal: FaultSignal, tx: TicketTx | None = None) -> list[TicketEvent]:
        """``tx``: inside a caller's transaction (it then wakes the worker itself)."""
        return self._apply(lambda own: self.book.on_fault(signal, own), tx)

    def on_faults(
        self,
        signals: Sequence[FaultSignal],
        cursor: int | None = None,
        tx: TicketTx | None = None,
    ) -> list[TicketEvent]:
        """Several fault signals, in order, in one transaction (one commit for a burst).

        ``cursor``: the id of the last stored fault event these signals came from; it is
        committed with the tickets, so each stored event is applied exactly once. ``tx``: in
        a caller's transaction (it wakes the worker, and calls ``rebuild`` if it rolls back)."""

        def apply(tx: TicketTx) -> list[TicketEvent]:
            events: list[TicketEvent] = []
            tx.reserve_numbers(Counter(s.at.date() for s in signals if s.event == "opened"))
            for signal in signals:
                events += self.book.on_fault(signal, tx)
            if cursor is not None:
                tx.set_ticket_cursor(cursor)
            return events

        return self._apply(apply, tx)

    def rebuild(self) -> None:
        """A caller's transaction holding this book's changes rolled back: forget them."""
        with self._lock:
            self.book = self._reload()

    def open_manual(self, report: ManualReport, tx: TicketTx | None = None) -> list[TicketEvent]:
        """A fault a person reported: the book's ``open_manual``, stored like any other."""
        return self._apply(lambda tx: self.book.open_manual(report, tx), tx)

    def on_desk(self, command: DeskCommand, tx: TicketTx | None = None) -> DeskOutcome:
        result: list[DeskOutcome] = []

        def apply(tx: TicketTx) -> list[TicketEvent]:
            outcome = self.book.on_desk(command)
            result.append(outcome)
            return list(outcome.events)

        self._apply(apply, tx)
        return result[0]

    def tick(self, at: datetime) -> list[TicketEvent]:
        return self._apply(lambda _tx: self.book.tick(at))

    @contextmanager
    def transaction(self) -> Iterator[TicketTx]:
        """A store transaction for several steps; the book is rebuilt if it fails."""
        with self._lock:
            try:
                with self._store.transaction() as tx:
                    yield tx
            except BaseException:
                self.book = self._reload()
                raise

    def next_wakeup(self) -> datetime | None:
        with self._lock:
            return self.book.next_wakeup()

    def _apply(
        self, step: Callable[[TicketTx], list[TicketEvent]], tx: TicketTx | None = None
    ) -> list[TicketEvent]:
        with self._lock:
            try:
                if tx is not None:
                    events = self._save(step, tx)
                else:
                    with self._store.transaction() as own:
                        events = self._save(step, own)
            except BaseException:
                self.book = self._reload()
                raise
        if events and self._on_commit is not None and tx is None:
            self._on_commit(events)
        return events

    def _save(
        self, step: Callable[[TicketTx], list[TicketEvent]], tx: TicketTx
    ) -> list[TicketEvent]:
        repairs_before = dict(self.book.repairs)
        events = self._routed(step(tx))
        tx.release_numbers()  # what on_faults reserved for openings that did not happen
        bodies = {e.event_id: render(e, self._sla) for e in events}
        tx.save(events, bodies, self.sinks_for)  # each event to the sinks its ticket matches
        repairs = {d: day for d, day in self.book.repairs.items() if repairs_before.get(d) != day}
        if repairs:
            tx.save_repairs(repairs)
        return events

    def sinks_for(self, ticket: Ticket) -> list[str]:
        """The sinks that take this ticket's events, in configuration order."""
        return [name for name, matches in self._routes.items() if matches(ticket)]

    def _routed(self, events: list[TicketEvent]) -> list[TicketEvent]:
        """Mark each newly opened ticket that no sink takes (when sinks are configured)."""
        if not self._routes:
            return events
        out: list[TicketEvent] = []
        for event in events:
            out.append(event)
            if event.kind is EventKind.OPENED and not self.sinks_for(event.ticket):
                marked = self.book.mark_unrouted(event.ticket.number, event.at)
                if marked is not None:
                    out.append(marked)
                    if self._on_unrouted is not None:
                        self._on_unrouted(marked.ticket)
        return out

    def _reload(self) -> TicketBook:
        book = self._book_factory()
        live, repairs = self._store.load_live()
        book.load(live, repairs)
        return book
