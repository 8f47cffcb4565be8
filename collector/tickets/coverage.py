"""Coverage of a ticket, decided at opening: warranty, billable or exempt, with a reason and
the contract's charge tier (free, parts, parts and labour).

A repaired or replaced part has its own warranty (``repaired_parts_months``, 002) without
extending the unit's: the ticket notes until when (``part_warranty_until``) and the desk, who
knows which part failed, changes the coverage if it is that part. A policy that extends the
unit's warranty after repair (``extend_after_repair``, 003 and 004) pushes the unit's end back.
"""

from __future__ import annotations

import calendar
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta

from collector.sla.contract import Charge
from collector.sla.policy import Warranty
from collector.tickets.inputs import FaultSignal
from collector.tickets.model import Coverage, CoverageReason, RepairRecord
from collector.tickets.terms import DeviceSource, DeviceWarranty

_EXEMPT_REASONS = {
    "power_outage": CoverageReason.EXEMPT_POWER_OUTAGE,
    "maintenance": CoverageReason.EXEMPT_MAINTENANCE,
}
_IN_WARRANTY = frozenset(
    {
        CoverageReason.IN_WARRANTY,
        CoverageReason.EXTENDED_AFTER_REPAIR,
        CoverageReason.MEMBER_IN_WARRANTY,
    }
)


@dataclass(frozen=True, slots=True)
class CoverageDecision:
    coverage: Coverage
    reason: CoverageReason
    charge: Charge
    part_warranty_until: date | None = None


def add_months(day: date, months: int) -> date:
    """``day`` plus whole calendar months, clamped to the last day (Jan 31 -> Feb 28)."""
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    last = calendar.monthrange(year, month + 1)[1]
    return date(year, month + 1, min(day.day, last))


def warranty_status(
    on: date, terms: Warranty | None, device: DeviceWarranty, repairs: RepairRecord | None
) -> tuple[CoverageReason, date | None]:
    """Whether the unit is in warranty on ``on``, and a repaired part's own warranty end."""
    part_until = None
    if terms is not None and repairs is not None and terms.repaired_parts_months:
        until = add_months(repairs.last_repair, terms.repaired_parts_months)
        part_until = until if repairs.last_repair <= on < until else None
    months = device.months if device.months is not None else (terms.months if terms else None)
    if device.start is None or months is None:
        return CoverageReason.WARRANTY_UNKNOWN, part_until
    if on < device.start:
        return CoverageReason.WARRANTY_NOT_STARTED, part_until
    end = add_months(device.start, months)
    if on < end:
        return CoverageReason.IN_WARRANTY, part_until
    extended = terms is not None and repairs is not None and terms.extend_after_repair
    if extended and repairs is not None and on < end + _whole_days(repairs.repair_time):
        return CoverageReason.EXTENDED_AFTER_REPAIR, part_until
    if part_until is not None:
        return CoverageReason.REPAIRED_PART_IN_WARRANTY, part_until
    return CoverageReason.WARRANTY_EXPIRED, part_until


def decide_coverage(
    *,
    on: date,
    exempt: str | None,
    terms: Warranty | None,
    device: DeviceWarranty,
    repairs: RepairRecord | None,
) -> CoverageDecision:
    """Coverage of a device's fault that opens on ``on``; an exemption wins (the caller has
    checked that the policy names it). In warranty: free; after it, or exempt (out of scope),
    the policy's tiers."""
    reason, part_until = warranty_status(on, terms, device, repairs)
    in_warranty = reason in _IN_WARRANTY
    after = terms.after_warranty if terms else Charge.PARTS_AND_LABOUR
    if exempt is not None:
        scope = terms.out_of_scope if terms else Charge.PARTS_AND_LABOUR
        exempt_reason = _EXEMPT_REASONS.get(exempt, CoverageReason.EXEMPT_BY_DESK)
        return CoverageDecision(
            Coverage.EXEMPT, exempt_reason, scope if in_warranty else after, part_until
        )
    if in_warranty:
        return CoverageDecision(Coverage.WARRANTY, reason, Charge.FREE, part_until)
    return CoverageDecision(Coverage.BILLABLE, reason, after, part_until)


def site_coverage(members: Iterable[CoverageDecision]) -> CoverageDecision | None:
    """A site outage takes its coverage from its member devices: covered when one is in
    warranty (the visit is owed for it), else the first member's; None without members."""
    decided = list(members)
    for member in decided:
        if member.coverage is Coverage.WARRANTY:
            return CoverageDecision(
                Coverage.WARRANTY, CoverageReason.MEMBER_IN_WARRANTY, Charge.FREE
            )
    return decided[0] if decided else None


def ticket_coverage(
    signal: FaultSignal,
    *,
    terms: Warranty | None,
    exempt: str | None,
    facts: DeviceWarranty,
    devices: DeviceSource,
    repairs: Mapping[str, RepairRecord],
) -> CoverageDecision:
    """A device's own coverage; a site's from its member devices (a site outage lists them)."""

    def of(device: str | None, facts: DeviceWarranty) -> CoverageDecision:
        return decide_coverage(
            on=signal.at.date(),
            exempt=exempt,
            terms=terms,
            device=facts,
            repairs=repairs.get(device) if device else None,
        )

    if signal.device is None and signal.devices and exempt is None:
        decided = site_coverage(of(d, devices.warranty(d)) for d in signal.devices)
        if decided is not None:
            return decided
    return of(signal.device, facts)


def _whole_days(span: timedelta) -> timedelta:
    """Repair time counts in started days: a repair of 2 days 3 hours extends by 3 days."""
    return timedelta(days=-(-span // timedelta(days=1)))
