"""The contract's desk actions and manual tickets on the pure book (shipped presets)."""

from __future__ import annotations

from datetime import date

import pytest

from collector.tickets import codec
from collector.tickets.book import TicketBook
from collector.tickets.inputs import DeskAction, DeskCommand, ManualReport, Verdict
from collector.tickets.model import Coverage, CoverageReason, EventKind, Outcome
from collector.tickets.numbers import MemoryNumbers
from collector.tickets.terms import DeviceWarranty
from tests.support.tickets import Devices, desk, fault, kinds, make_book, utc


def command(number: str, action: str, at: str, **kw: object) -> DeskCommand:
    return DeskCommand(number, DeskAction(action), utc(at), **kw)  # type: ignore[arg-type]


def test_power_outage_is_exempt_only_where_the_policy_names_it(numbers: MemoryNumbers) -> None:
    book = make_book()
    at = "2025-10-09T08:00:00"
    [wthink] = book.on_fault(
        fault("opened", at, exempt="power_outage", policy="wthink", level="urgent"), numbers
    )
    assert (wthink.ticket.coverage, wthink.ticket.exempt) == (Coverage.EXEMPT, "power_outage")
    sh, *overdue = book.on_fault(
        fault("opened", at, exempt="power_outage", policy="shanghai-energy", level="A",
              kind="reboot"), numbers)  # fmt: skip
    assert sh.ticket.exempt is None and sh.ticket.claimed_exemption == "power_outage"
    assert sh.ticket.coverage is Coverage.WARRANTY
    assert sh.detail == {"claimed_exemption": "power_outage", "in_policy": False}
    assert {t.name for t in sh.ticket.targets} == {"response", "processing", "resolution"}
    assert kinds(overdue) == ["escalated", "breached"]  # the immediate response


def test_desk_marks_exempt_with_a_reason_and_the_clocks_stop(
    book: TicketBook, numbers: MemoryNumbers
) -> None:
    [opened] = book.on_fault(fault("opened", "2025-10-09T08:00:00"), numbers)
    number = opened.ticket.number
    no_reason = book.on_desk(
        command(number, "exempt", "2025-10-09T08:10:00", exemption="force_majeure")
    )
    assert no_reason.verdict is Verdict.NOT_ALLOWED and "reason" in no_reason.reason
    unknown = book.on_desk(
        command(number, "exempt", "2025-10-09T08:10:00", exemption="bad_luck", comment="x")
    )
    assert unknown.verdict is Verdict.NOT_ALLOWED
    [exempt] = desk(book, number, "exempt", "2025-10-09T08:10:00", exemption="force_majeure",
                    comment="flooded substation", actor="ops")  # fmt: skip
    assert exempt.kind is EventKind.COVERAGE_CHANGED
    assert exempt.ticket.coverage_reason is CoverageReason.EXEMPT_BY_DESK
    assert exempt.detail["in_policy"] is False  # 003 names no exemption; a person decided
    assert exempt.detail["why"] == "flooded substation" and exempt.detail["actor"] == "ops"
    assert all(t.outcome is Outcome.NOT_NEEDED for t in exempt.ticket.targets)
    assert book.tick(utc("2025-10-12T00:00:00")) == []  # no escalation follows
    # ... and back: the SLA is owed after all, the clocks run from the onset again
    [covered] = desk(book, number, "coverage", "2025-10-09T09:00:00", coverage="billable",
                     comment="not a flood after all")  # fmt: skip
    assert covered.ticket.exempt is None and covered.ticket.coverage is Coverage.BILLABLE
    assert covered.ticket.charge == "parts"  # 003 after warranty: parts charged, repair free
    events = book.tick(utc("2025-10-09T12:00:00"))  # level 3: response 4 h from 08:00
    assert [(e.kind.value, e.at) for e in events] == [
        ("escalated", utc("2025-10-09T11:00:00")),
        ("breached", utc("2025-10-09T12:00:00")),
    ]


def test_on_site_on_request_starts_at_the_desk_action(
    book: TicketBook, numbers: MemoryNumbers
) -> None:
    # 003: at any level an engineer is on site within 4 h of the customer's request.
    [opened] = book.on_fault(fault("opened", "2025-10-09T08:00:00", level="1"), numbers)
    assert opened.ticket.target("onsite") is None
    [started] = desk(book, opened.ticket.number, "start", "2025-10-09T10:00:00", target="onsite")
    onsite = started.ticket.target("onsite")
    assert onsite is not None and onsite.start == utc("2025-10-09T10:00:00")
    again = book.on_desk(
        command(opened.ticket.number, "start", "2025-10-09T10:05:00", target="onsite")
    )
    assert again.verdict is Verdict.ALREADY_DONE
    events = book.tick(utc("2025-10-09T14:00:00"))
    assert [(e.kind.value, e.detail["target"], e.at) for e in events] == [
        ("escalated", "onsite", utc("2025-10-09T13:00:00")),
        ("breached", "onsite", utc("2025-10-09T14:00:00")),
    ]


def test_manual_ticket_for_a_site_runs_the_same_clocks(numbers: MemoryNumbers) -> None:
    devices = Devices(
        {
            "a": DeviceWarranty(start=date(2025, 1, 1), months=36, customer="acme", site="p4"),
            "b": DeviceWarranty(start=date(2019, 1, 1), months=12, customer="acme", site="p4"),
        }
    )
    book = make_book(devices)
    report = ManualReport(
        at=utc("2025-10-09T08:30:00"),
        onset=utc("2025-10-09T08:00:00"),
        kind="site_outage",
        level="emergency",
        policy="xian-integrator",
        site="p4",
        actor="hotline",
        comment="station dark",
    )
    opened, *immediate = book.open_manual(report, numbers)
    ticket = opened.ticket
    assert ticket.manual and ticket.subject.devices == ("a", "b")
    assert ticket.subject.customer == "acme"
    assert (ticket.coverage, ticket.coverage_reason) == (
        Coverage.WARRANTY,
        CoverageReason.MEMBER_IN_WARRANTY,
    )
    assert opened.detail["reported_by"] == "hotline"
    assert kinds(immediate) == ["escalated", "breached"]  # response due at detection
    plan = ticket.target("plan")
    assert plan is not None and plan.start == utc("2025-10-09T08:00:00")  # from the onset
    with pytest.raises(ValueError, match="already has ticket"):
        book.open_manual(report, numbers)
    bad = ManualReport(
        at=report.at, onset=report.onset, kind="reboot", level="9", policy="xian-integrator",
        device="a",
    )  # fmt: skip
    with pytest.raises(ValueError, match="has no level '9'"):
        book.open_manual(bad, numbers)
    # Resolved by the desk, a manual ticket closes after the follow-up (no telemetry to clear)
    desk(book, ticket.number, "resolve", "2025-10-09T10:00:00")
    closed = book.tick(utc("2025-10-10T10:00:00"))
    assert kinds(closed) == ["closed"]


def test_stored_tickets_round_trip_and_old_rows_read(
    book: TicketBook, numbers: MemoryNumbers
) -> None:
    [opened] = book.on_fault(fault("opened", "2025-10-09T08:00:00"), numbers)
    data = codec.ticket_to_dict(opened.ticket)
    assert codec.ticket_from_dict(data) == opened.ticket
    old = {k: v for k, v in data.items() if k not in {"subject", "charge", "manual", "routed"}}
    assert codec.ticket_from_dict(old).subject.customer == ""


def test_clock_actions_are_refused_on_a_resolved_ticket(
    book: TicketBook, numbers: MemoryNumbers
) -> None:
    [opened] = book.on_fault(fault("opened", "2025-10-09T08:00:00", level="1"), numbers)
    number = opened.ticket.number
    desk(book, number, "resolve", "2025-10-09T09:00:00")
    for action, kw in (("start", {"target": "onsite"}), ("set_level", {"level": "3"})):
        refused = book.on_desk(command(number, action, "2025-10-09T09:05:00", comment="late", **kw))
        assert refused.verdict is Verdict.NOT_ALLOWED and "resolved" in refused.reason
    # a release can still be noted on a resolved ticket
    [deferred] = desk(book, number, "defer", "2025-10-09T09:10:00", release="4.2")
    assert deferred.ticket.target_release == "4.2"
