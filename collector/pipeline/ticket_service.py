"""The shell around the ticket book: each input is applied and stored in one transaction.

The book's events, the tickets they leave behind and one outbox row per (event, sink) are
committed together; if the transaction fails, the book is rebuilt from the database so memory
never runs ahead of what was committed.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime

from collector.store.tickets import TicketStore, TicketTx
from collector.tickets import codec
from collector.tickets.book import TicketBook
from collector.tickets.inputs import DeskCommand, DeskOutcome, FaultSignal
from collector.tickets.model import TicketEvent
from collector.tickets.terms import SlaMaths


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
        sinks: Sequence[str],
        on_commit: Callable[[Sequence[TicketEvent]], None] | None = None,
    ) -> None:
        self._book_factory = book_factory
        self._store = store
        self._sla = sla
        self._sinks = tuple(sinks)
        self._on_commit = on_commit
        # The book is not thread-safe and the collector calls in from several threads (fault
        # events, the ticket clock, inbound desk actions): one at a time.
        self._lock = threading.RLock()
        self.book = self._reload()

    def on_fault(self, signal: FaultSignal) -> list[TicketEvent]:
        return self._apply(lambda tx: self.book.on_fault(signal, tx))

    def on_faults(
        self, signals: Sequence[FaultSignal], cursor: int | None = None
    ) -> list[TicketEvent]:
        """Several fault signals, in order, in one transaction (one commit for a burst).

        ``cursor``: the id of the last stored fault event these signals came from; it is
        committed with the tickets, so each stored event is applied exactly once."""

        def apply(tx: TicketTx) -> list[TicketEvent]:
            events: list[TicketEvent] = []
            for signal in signals:
                events += self.book.on_fault(signal, tx)
            if cursor is not None:
                tx.set_ticket_cursor(cursor)
            return events

        return self._apply(apply)

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
        events = step(tx)
        bodies = {e.event_id: render(e, self._sla) for e in events}
        tx.save(events, bodies, self._sinks)
        repairs = {d: day for d, day in self.book.repairs.items() if repairs_before.get(d) != day}
        if repairs:
            tx.save_repairs(repairs)
        return events

    def _reload(self) -> TicketBook:
        book = self._book_factory()
        live, repairs = self._store.load_live()
        book.load(live, repairs)
        return book
