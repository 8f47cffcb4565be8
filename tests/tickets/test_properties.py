"""Properties of the ticket book over random inputs: order, identity, and restart equivalence."""

from __future__ import annotations

import copy
from datetime import timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from collector.tickets.inputs import DeskAction, DeskCommand
from collector.tickets.model import LIVE_STATES, TicketEvent
from collector.tickets.numbers import MemoryNumbers
from tests.support.tickets import fault, make_book, utc

DEVICES = ("r1", "old", "x9")
KINDS = ("device_offline", "cpu_high")
START = utc("2025-10-09T08:00:00")

fault_step = st.tuples(
    st.just("fault"), st.sampled_from(["opened", "cleared"]), st.sampled_from(DEVICES),
    st.sampled_from(KINDS), st.sampled_from(["xian-integrator", "wthink"]),
)  # fmt: skip
desk_step = st.tuples(
    st.just("desk"), st.sampled_from(list(DeskAction)), st.integers(1, 6), st.booleans()
)
tick_step = st.tuples(st.just("tick"))
steps = st.lists(
    st.tuples(st.integers(0, 36 * 60), st.one_of(fault_step, desk_step, tick_step)),
    min_size=1,
    max_size=40,
)


def level_of(policy: str) -> str:
    return "3" if policy == "xian-integrator" else "urgent"


def apply(book, numbers, minutes: int, step: tuple) -> list[TicketEvent]:  # type: ignore[no-untyped-def, type-arg]
    at = START + timedelta(minutes=minutes)
    stamp = at.strftime("%Y-%m-%dT%H:%M:%S")
    if step[0] == "fault":
        _, event, device, kind, policy = step
        signal = fault(event, stamp, device=device, kind=kind, policy=policy,
                       level=level_of(policy))  # fmt: skip
        # the same (device, kind) keeps the policy it opened with
        live = {t.key: t for t in book.live()}
        key = f"device:{device}/{kind}"
        if key in live:
            signal = fault(event, stamp, device=device, kind=kind, policy=live[key].policy,
                           level=live[key].level)  # fmt: skip
        return list(book.on_fault(signal, numbers))
    if step[0] == "desk":
        _, action, n, repaired = step
        command = DeskCommand(f"FD-{at:%Y%m%d}-{n:04d}", action, at, repaired=repaired)
        return list(book.on_desk(command).events)
    return list(book.tick(at))


def run(steps_: list[tuple[int, tuple]]) -> list[tuple[int, tuple]]:  # type: ignore[type-arg]
    elapsed = 0
    out = []
    for gap, step in steps_:
        elapsed += gap
        out.append((elapsed, step))
    return out


@settings(max_examples=60, deadline=None)
@given(steps)
def test_events_in_time_order_with_per_ticket_sequence(raw: list) -> None:  # type: ignore[type-arg]
    book, numbers = make_book(), MemoryNumbers()
    events: list[TicketEvent] = []
    for minutes, step in run(raw):
        events += apply(book, numbers, minutes, step)
        keys = [t.key for t in book.live()]
        assert len(keys) == len(set(keys)), "one live ticket per (device, kind)"
        assert all(t.state in LIVE_STATES for t in book.live())
    assert [e.at for e in events] == sorted(e.at for e in events)
    seqs: dict[str, list[int]] = {}
    for e in events:
        seqs.setdefault(e.ticket.number, []).append(e.seq)
    for got in seqs.values():
        assert got == list(range(1, len(got) + 1))


@settings(max_examples=40, deadline=None)
@given(steps, st.integers(0, 40))
def test_a_book_rebuilt_from_its_tickets_goes_on_the_same(raw: list, split: int) -> None:  # type: ignore[type-arg]
    timeline = run(raw)
    first, numbers = make_book(), MemoryNumbers()
    for minutes, step in timeline[:split]:
        apply(first, numbers, minutes, step)
    second = make_book()
    second.load(first.live(), first.repairs)
    numbers2 = copy.deepcopy(numbers)
    for minutes, step in timeline[split:]:
        a = apply(first, numbers, minutes, step)
        b = apply(second, numbers2, minutes, step)
        assert [(e.kind, e.at, e.ticket) for e in a] == [(e.kind, e.at, e.ticket) for e in b]
