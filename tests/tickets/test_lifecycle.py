"""Scenario tables for the pure ticket lifecycle, driven with explicit instants."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

from collector.sla.policy import EscalationAction, load_policy
from collector.tickets.book import TicketBook
from collector.tickets.inputs import DeskAction, DeskCommand, Verdict
from collector.tickets.model import Coverage, CoverageReason, EventKind, Outcome, State
from collector.tickets.numbers import MemoryNumbers, is_fault_number
from collector.tickets.sla_adapter import ticket_policy
from collector.tickets.terms import BREACH, DeviceWarranty
from tests.support.tickets import ENGINE, Devices, desk, fault, kinds, make_book, utc


def test_open_ack_resolve_followup_close(book: TicketBook, numbers: MemoryNumbers) -> None:
    [opened] = book.on_fault(fault("opened", "2025-10-09T08:00:00"), numbers)
    ticket = opened.ticket
    assert opened.kind is EventKind.OPENED
    assert ticket.number == "FD-20251009-0001" and is_fault_number(ticket.number)
    assert ticket.coverage is Coverage.WARRANTY
    [acked] = desk(book, ticket.number, "ack", "2025-10-09T09:00:00")
    response = acked.ticket.target("response")
    assert response is not None and response.outcome is Outcome.MET
    assert acked.ticket.state is State.ACKNOWLEDGED
    [resolved] = book.on_fault(fault("cleared", "2025-10-09T10:00:00"), numbers)
    assert resolved.kind is EventKind.RESOLVED and resolved.detail["reason"] == "fault_cleared"
    # xian-integrator's follow-up: closed 24 h after resolution when the fault stayed away.
    assert book.tick(utc("2025-10-10T09:59:59")) == []
    [closed] = book.tick(utc("2025-10-10T10:00:00"))
    assert closed.kind is EventKind.CLOSED and closed.at == utc("2025-10-10T10:00:00")
    assert book.live() == []


def test_fault_returning_within_followup_reopens_same_ticket(
    book: TicketBook, numbers: MemoryNumbers
) -> None:
    [opened] = book.on_fault(fault("opened", "2025-10-09T08:00:00"), numbers)
    book.on_fault(fault("cleared", "2025-10-09T08:30:00"), numbers)
    [reopened] = book.on_fault(fault("opened", "2025-10-09T20:00:00"), numbers)
    assert reopened.kind is EventKind.REOPENED
    assert reopened.ticket.number == opened.ticket.number
    assert reopened.detail["reason"] == "fault_returned"
    assert reopened.ticket.state is State.REOPENED
    # After the follow-up window a new fault makes a new ticket.
    book.on_fault(fault("cleared", "2025-10-09T21:00:00"), numbers)
    [closed] = book.tick(utc("2025-10-10T21:00:00"))
    assert closed.kind is EventKind.CLOSED
    [again] = book.on_fault(fault("opened", "2025-10-11T08:00:00"), numbers)
    assert again.kind is EventKind.OPENED and again.ticket.number == "FD-20251011-0001"


def test_desk_resolved_but_fault_persists_reopens_after_followup(
    book: TicketBook, numbers: MemoryNumbers
) -> None:
    [opened] = book.on_fault(fault("opened", "2025-10-09T08:00:00"), numbers)
    desk(book, opened.ticket.number, "resolve", "2025-10-09T09:00:00")
    [reopened] = book.tick(utc("2025-10-10T09:00:00"))
    assert reopened.kind is EventKind.REOPENED
    assert reopened.detail["reason"] == "fault_persisted"


def test_one_ticket_per_device_and_kind(book: TicketBook, numbers: MemoryNumbers) -> None:
    first = book.on_fault(fault("opened", "2025-10-09T08:00:00"), numbers)
    assert book.on_fault(fault("opened", "2025-10-09T08:05:00"), numbers) == []
    other_kind = book.on_fault(fault("opened", "2025-10-09T08:05:00", kind="cpu_high"), numbers)
    other_site = book.on_fault(
        fault("opened", "2025-10-09T08:06:00", device=None, site="s1", level="emergency"), numbers
    )
    numbers_seen = {e.ticket.number for e in first + other_kind + other_site}
    assert numbers_seen == {"FD-20251009-0001", "FD-20251009-0002", "FD-20251009-0003"}


def test_escalations_fire_at_exact_instants(numbers: MemoryNumbers) -> None:
    book = make_book(Devices())
    book.on_fault(fault("opened", "2025-10-09T08:00:00", policy="wthink", level="urgent"), numbers)
    # wthink "urgent" on the 7x8 hotline calendar (09:00-17:00 Asia/Shanghai, every day):
    # the fault starts 16:00 local; response 1h, onsite 1wd (8h), resolution 2wd (16h);
    # second line at 50 % of resolution, warning at 75 %, breach at 100 %.
    events = book.tick(utc("2025-10-12T00:00:00"))
    got = [(e.kind.value, e.detail["target"], e.detail["action"], e.at) for e in events]
    assert got == [
        ("escalated", "response", "warning", utc("2025-10-09T08:45:00")),  # 16:45 local
        ("breached", "response", "breach", utc("2025-10-09T09:00:00")),  # 17:00, closing time
        ("escalated", "onsite", "warning", utc("2025-10-10T06:00:00")),  # 1h + 5h next day
        ("escalated", "resolution", "second_line", utc("2025-10-10T08:00:00")),
        ("breached", "onsite", "breach", utc("2025-10-10T08:00:00")),
        ("escalated", "resolution", "warning", utc("2025-10-11T04:00:00")),  # 1h + 8h + 3h
        ("breached", "resolution", "breach", utc("2025-10-11T08:00:00")),
    ]
    assert book.tick(utc("2025-10-20T00:00:00")) == []


def test_escalations_after_restart_from_stored_tickets(numbers: MemoryNumbers) -> None:
    first = make_book(Devices())
    first.on_fault(fault("opened", "2025-10-09T08:00:00", policy="wthink", level="urgent"), numbers)
    early = first.tick(utc("2025-10-09T09:30:00"))
    assert kinds(early) == ["escalated", "breached"]
    # A new process loads the stored tickets and goes on where the first one stopped.
    second = make_book(Devices())
    second.load(first.live())
    later = second.tick(utc("2025-10-12T00:00:00"))
    assert [e.at for e in later] == [
        utc("2025-10-10T06:00:00"),
        utc("2025-10-10T08:00:00"),
        utc("2025-10-10T08:00:00"),
        utc("2025-10-11T04:00:00"),
        utc("2025-10-11T08:00:00"),
    ]


def test_pause_waiting_on_customer_moves_deadline(book: TicketBook, numbers: MemoryNumbers) -> None:
    [opened] = book.on_fault(fault("opened", "2025-10-09T08:00:00"), numbers)
    number = opened.ticket.number
    desk(book, number, "pause", "2025-10-09T09:00:00")
    assert book.tick(utc("2025-10-09T13:00:00")) == []  # 4 h response would be due at 12:00
    desk(book, number, "resume", "2025-10-09T11:00:00")
    events = book.tick(utc("2025-10-09T14:00:00"))
    assert [(e.kind.value, e.at) for e in events] == [
        ("escalated", utc("2025-10-09T13:00:00")),
        ("breached", utc("2025-10-09T14:00:00")),
    ]


def test_onsite_meets_onsite_and_resolution_meets_plan(
    book: TicketBook, numbers: MemoryNumbers
) -> None:
    # 003 emergency: an immediate response, due at detection (here: reported as breached).
    opened, *immediate = book.on_fault(
        fault("opened", "2025-10-09T08:00:00", device=None, site="s1", level="emergency"), numbers
    )
    assert [e.detail["target"] for e in immediate] == ["response", "response"]
    number = opened.ticket.number
    [onsite] = desk(book, number, "onsite", "2025-10-09T10:30:00")
    target = onsite.ticket.target("onsite")
    assert target is not None and target.outcome is Outcome.MET
    assert onsite.ticket.state is State.ONSITE
    events = desk(book, number, "resolve", "2025-10-10T10:00:00")
    # The 24 h plan: its 75 % warning (02:00) and breach (08:00) come before the late resolution.
    assert kinds(events) == ["escalated", "breached", "resolved"]
    plan = events[-1].ticket.target("plan")
    assert plan is not None and plan.outcome is Outcome.MISSED


def test_desk_refusals_have_reasons(book: TicketBook, numbers: MemoryNumbers) -> None:
    [opened] = book.on_fault(fault("opened", "2025-10-09T08:00:00"), numbers)
    number = opened.ticket.number
    unknown = book.on_desk(
        DeskCommand("FD-20251009-0099", DeskAction.ACK, utc("2025-10-09T08:01:00"))
    )
    assert unknown.verdict is Verdict.UNKNOWN_NUMBER and "FD-20251009-0099" in unknown.reason
    desk(book, number, "ack", "2025-10-09T08:02:00")
    again = book.on_desk(DeskCommand(number, DeskAction.ACK, utc("2025-10-09T08:03:00")))
    assert again.verdict is Verdict.ALREADY_DONE and again.events == ()
    desk(book, number, "cancel", "2025-10-09T08:04:00")
    ended = book.on_desk(DeskCommand(number, DeskAction.ACK, utc("2025-10-09T08:05:00")))
    assert ended.verdict is Verdict.TICKET_ENDED


def test_comment_and_cancel(book: TicketBook, numbers: MemoryNumbers) -> None:
    [opened] = book.on_fault(fault("opened", "2025-10-09T08:00:00"), numbers)
    [comment] = desk(book, opened.ticket.number, "comment", "2025-10-09T08:10:00", comment="hi")
    assert comment.kind is EventKind.COMMENTED and comment.detail["comment"] == "hi"
    [cancelled] = desk(book, opened.ticket.number, "cancel", "2025-10-09T08:20:00")
    assert cancelled.ticket.state is State.CANCELLED
    assert all(t.outcome is Outcome.NOT_NEEDED for t in cancelled.ticket.targets)


def test_absorbed_fault_cancels_its_ticket(book: TicketBook, numbers: MemoryNumbers) -> None:
    book.on_fault(fault("opened", "2025-10-09T08:00:00"), numbers)
    [cancelled] = book.on_fault(fault("absorbed", "2025-10-09T08:02:00"), numbers)
    assert cancelled.kind is EventKind.CANCELLED and cancelled.detail["reason"] == "absorbed"


def test_onset_in_past_emits_overdue_steps_at_opening(
    book: TicketBook, numbers: MemoryNumbers
) -> None:
    events = book.on_fault(
        fault("opened", "2025-10-09T13:00:00", onset="2025-10-09T08:00:00"), numbers
    )
    assert kinds(events) == ["ticket_opened", "escalated", "breached"]
    breach = events[-1]
    assert breach.at == utc("2025-10-09T13:00:00")
    assert breach.detail["due"] == utc("2025-10-09T12:00:00")


def test_events_carry_increasing_seq(book: TicketBook, numbers: MemoryNumbers) -> None:
    [opened] = book.on_fault(fault("opened", "2025-10-09T08:00:00"), numbers)
    more = desk(book, opened.ticket.number, "ack", "2025-10-09T08:01:00")
    more += desk(book, opened.ticket.number, "comment", "2025-10-09T08:02:00", comment="x")
    assert [e.seq for e in [opened, *more]] == [1, 2, 3]
    assert more[-1].event_id == f"{opened.ticket.number}:3"


# -- coverage -------------------------------------------------------------------------------


def opened_coverage(book: TicketBook, numbers: MemoryNumbers, **kw: object) -> tuple[str, str]:
    [opened, *_] = book.on_fault(fault("opened", **kw), numbers)  # type: ignore[arg-type]
    return opened.ticket.coverage.value, opened.ticket.coverage_reason.value


def test_coverage_in_warranty_and_expired(book: TicketBook, numbers: MemoryNumbers) -> None:
    assert opened_coverage(book, numbers, at="2025-10-09T08:00:00") == ("warranty", "in_warranty")
    assert opened_coverage(book, numbers, at="2025-10-09T08:00:00", device="old") == (
        "billable",
        "warranty_expired",
    )
    assert opened_coverage(book, numbers, at="2025-10-09T08:00:00", device="unknown") == (
        "billable",
        "warranty_unknown",
    )


def test_coverage_exempt_has_no_clock(book: TicketBook, numbers: MemoryNumbers) -> None:
    # 000 (wthink) names power outages among its exemptions.
    signal = fault(
        "opened", "2025-10-09T08:00:00", exempt="power_outage", policy="wthink", level="urgent"
    )
    [opened] = book.on_fault(signal, numbers)
    assert opened.ticket.coverage is Coverage.EXEMPT
    assert opened.ticket.coverage_reason is CoverageReason.EXEMPT_POWER_OUTAGE
    assert opened.ticket.targets == ()
    assert book.tick(utc("2025-10-12T00:00:00")) == []


def test_coverage_extended_by_repair_time(numbers: MemoryNumbers) -> None:
    # xian-integrator: 36 months from acceptance, extended by the time spent in repair.
    devices = Devices({"unit": DeviceWarranty(start=date(2022, 3, 1), months=None)})
    book = make_book(devices)
    [first] = book.on_fault(fault("opened", "2025-01-10T08:00:00", device="unit"), numbers)
    assert first.ticket.coverage_reason is CoverageReason.IN_WARRANTY
    desk(book, first.ticket.number, "resolve", "2025-01-19T20:00:00", repaired=True)
    book.on_fault(fault("cleared", "2025-01-19T20:00:00", device="unit"), numbers)
    # The warranty ended 2025-03-01; 9.5 days in repair extend it by 10 days, to 2025-03-11.
    *_, inside = book.on_fault(
        fault("opened", "2025-03-10T08:00:00", device="unit", kind="cpu_high"), numbers
    )
    assert inside.ticket.coverage_reason is CoverageReason.EXTENDED_AFTER_REPAIR
    *_, after = book.on_fault(
        fault("opened", "2025-03-11T08:00:00", device="unit", kind="disk_full"), numbers
    )
    assert after.ticket.coverage_reason is CoverageReason.WARRANTY_EXPIRED


def test_coverage_of_repaired_parts(numbers: MemoryNumbers) -> None:
    # mtbox: 12 months from receipt; repaired or replaced parts 1 year from the repair.
    devices = Devices({"box": DeviceWarranty(start=date(2023, 1, 1), months=None)})
    book = make_book(devices)
    hw = {"device": "box", "policy": "mtbox", "level": "hardware"}
    [first] = book.on_fault(fault("opened", "2025-03-01T08:00:00", **hw), numbers)  # type: ignore[arg-type]
    assert first.ticket.coverage is Coverage.BILLABLE
    desk(book, first.ticket.number, "resolve", "2025-03-04T08:00:00", repaired=True)
    *_, second = book.on_fault(
        fault("opened", "2026-03-03T08:00:00", kind="cpu_high", **hw),
        numbers,  # type: ignore[arg-type]
    )
    # 002: the repaired part has its own year; the box's warranty is not extended by it.
    assert second.ticket.coverage is Coverage.BILLABLE
    assert second.ticket.coverage_reason is CoverageReason.REPAIRED_PART_IN_WARRANTY
    assert second.ticket.part_warranty_until == date(2026, 3, 4)
    *_, third = book.on_fault(
        fault("opened", "2026-03-04T08:00:00", kind="disk_full", **hw),
        numbers,  # type: ignore[arg-type]
    )
    assert third.kind is EventKind.OPENED
    assert third.ticket.coverage_reason is CoverageReason.WARRANTY_EXPIRED


def test_fault_escalated_to_another_level_applies_its_targets(
    book: TicketBook, numbers: MemoryNumbers
) -> None:
    # xian-integrator: level 1 (response 12 h) becomes 3 (response 4 h) when the impact rises;
    # the response clock keeps its start (the onset) and takes the new duration.
    [opened] = book.on_fault(fault("opened", "2025-10-09T08:00:00", level="1"), numbers)
    assert opened.ticket.target("response") is not None
    [changed] = book.on_fault(fault("escalated", "2025-10-09T09:00:00", level="3",
                                    onset="2025-10-09T08:00:00"), numbers)  # fmt: skip
    assert changed.kind is EventKind.LEVEL_CHANGED
    assert changed.detail == {"reason": "fault_escalated", "previous_level": "1"}
    assert changed.ticket.level == "3"
    events = book.tick(utc("2025-10-09T12:00:00"))
    assert [(e.kind.value, e.at) for e in events] == [
        ("escalated", utc("2025-10-09T11:00:00")),
        ("breached", utc("2025-10-09T12:00:00")),
    ]
    # Level "emergency": an immediate response (already overdue: its steps fired), onsite
    # and plan start; the remote diagnosis waits for the desk's request.
    again, *overdue = book.on_fault(fault("escalated", "2025-10-09T12:30:00",
                                          level="emergency", onset="2025-10-09T08:00:00"),
                                    numbers)  # fmt: skip
    assert again.kind is EventKind.LEVEL_CHANGED
    # the on-site target counts from the onset: 4 h were up at 12:00, reported at once
    assert [(e.kind.value, e.detail["target"], e.detail["due"]) for e in overdue] == [
        ("escalated", "onsite", utc("2025-10-09T11:00:00")),
        ("breached", "onsite", utc("2025-10-09T12:00:00")),
    ]
    names = {t.name: t for t in again.ticket.targets}
    assert set(names) == {"onsite", "plan", "response"}
    assert (names["response"].duration, names["response"].outcome) == ("0", None)
    assert names["onsite"].start == utc("2025-10-09T08:00:00")


def test_level_changed_event_matches_the_webhook_schema(
    book: TicketBook, numbers: MemoryNumbers
) -> None:
    import json
    from pathlib import Path

    import jsonschema

    from collector.pipeline.ticket_service import render
    from tests.support.tickets import ENGINE

    schema = json.loads((Path(__file__).parents[2] / "docs" / "webhook.schema.json").read_text())
    book.on_fault(fault("opened", "2025-10-09T08:00:00", level="1"), numbers)
    [changed] = book.on_fault(fault("escalated", "2025-10-09T09:00:00", level="3",
                                    onset="2025-10-09T08:00:00"), numbers)  # fmt: skip
    jsonschema.validate(json.loads(render(changed, ENGINE)), schema)


def test_ticket_policy_takes_the_sla_steps_as_they_are() -> None:
    # One EscalationStep: the ticket book runs the SLA engine's steps, not a translated copy,
    # and adds a breach at 1.0 only when the file names none.
    policy = load_policy("wthink")
    steps = ENGINE.ticket_policy("wthink").steps
    assert len(steps) == len(policy.escalations)
    assert all(a is b for a, b in zip(steps, policy.escalations, strict=True))
    quiet = replace(
        policy,
        escalations=tuple(s for s in policy.escalations if s.action is not EscalationAction.BREACH),
    )
    assert ticket_policy(quiet, "quiet").steps == (*quiet.escalations, BREACH)
