"""Which business calendars guess their holidays in the coming 12 months, for operators.

A calendar whose holiday source has no official schedule for a year (chinese-calendar stops at
its last release year) estimates that year without make-up working days; deadlines there may
move once the State Council publishes the schedule. The collector shows it as the gauge
``fleetdesk_calendar_estimated{calendar, year}`` (1 per estimated year, computed at each
scrape) and under ``calendars_estimated`` in ``/healthz``; the fix is an ``official:`` entry in
the calendar file (docs/sla.md, "Calendar years").
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from collector.sla.calendar import estimated_calendars


class EstimatedCalendars(Collector):
    def __init__(
        self,
        rules_dir: Path | None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._rules_dir = rules_dir
        self._clock = clock

    def now(self) -> dict[str, list[int]]:
        """Calendar name -> its estimated years within the next 12 months."""
        try:
            found = estimated_calendars(self._clock(), self._rules_dir)
        except ValueError:  # a calendar file broke since start: rules check names it
            return {}
        return {name: list(years) for name, years in found.items()}

    def collect(self) -> Iterator[Metric]:
        gauge = GaugeMetricFamily(
            "fleetdesk_calendar_estimated",
            "1 for each calendar and year of the next 12 months whose holidays are estimated",
            labels=["calendar", "year"],
        )
        for name, years in self.now().items():
            for year in years:
                gauge.add_metric([name, str(year)], 1.0)
        yield gauge

    def register(self, registry: CollectorRegistry) -> EstimatedCalendars:
        registry.register(self)
        return self
