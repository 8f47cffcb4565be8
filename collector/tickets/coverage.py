"""Coverage of a ticket, decided once at opening: warranty, billable or exempt, with a reason."""

from __future__ import annotations

import calendar
from datetime import date, timedelta

from collector.sla.policy import Warranty
from collector.tickets.model import Coverage, CoverageReason, RepairRecord
from collector.tickets.terms import DeviceWarranty

_EXEMPT_REASONS = {
    "power_outage": CoverageReason.EXEMPT_POWER_OUTAGE,
    "maintenance": CoverageReason.EXEMPT_MAINTENANCE,
}


def add_months(day: date, months: int) -> date:
    """``day`` plus whole calendar months, clamped to the last day (Jan 31 -> Feb 28)."""
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    last = calendar.monthrange(year, month + 1)[1]
    return date(year, month + 1, min(day.day, last))


def decide_coverage(
    *,
    on: date,
    exempt: str | None,
    terms: Warranty | None,
    device: DeviceWarranty,
    repairs: RepairRecord | None,
) -> tuple[Coverage, CoverageReason]:
    """Coverage of a fault that opens on ``on``.

    An exemption wins. Otherwise the device is in warranty from its start date for the
    inventory's months (else the policy's). Where the policy says so, a repair extends it:
    ``extend_after_repair`` pushes the end back by the time the device spent in repair, and
    ``repaired_parts_months`` covers the device that long from its last repair.
    """
    if exempt is not None:
        reason = _EXEMPT_REASONS.get(exempt)
        if reason is None:
            raise ValueError(f"unknown exemption {exempt!r}")
        return Coverage.EXEMPT, reason
    months = device.months if device.months is not None else (terms.months if terms else None)
    if device.start is None or months is None:
        return Coverage.BILLABLE, CoverageReason.WARRANTY_UNKNOWN
    if on < device.start:
        return Coverage.BILLABLE, CoverageReason.WARRANTY_NOT_STARTED
    end = add_months(device.start, months)
    if on < end:
        return Coverage.WARRANTY, CoverageReason.IN_WARRANTY
    if terms is not None and repairs is not None:
        if terms.extend_after_repair and on < end + _whole_days(repairs.repair_time):
            return Coverage.WARRANTY, CoverageReason.EXTENDED_AFTER_REPAIR
        parts = terms.repaired_parts_months
        if parts and repairs.last_repair <= on < add_months(repairs.last_repair, parts):
            return Coverage.WARRANTY, CoverageReason.EXTENDED_AFTER_REPAIR
    return Coverage.BILLABLE, CoverageReason.WARRANTY_EXPIRED


def _whole_days(span: timedelta) -> timedelta:
    """Repair time counts in started days: a repair of 2 days 3 hours extends by 3 days."""
    return timedelta(days=-(-span // timedelta(days=1)))
