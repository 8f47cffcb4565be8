"""The collector shows which calendars estimate their holidays in the next 12 months."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

from prometheus_client import CollectorRegistry

from collector.preset_paths import default_rules_dir
from collector.service.calendars import EstimatedCalendars


def test_gauge_and_health_detail_name_calendar_and_year(tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    shutil.copytree(default_rules_dir() / "calendars", rules / "calendars")
    registry = CollectorRegistry()
    clock = [datetime(2026, 12, 2, tzinfo=UTC)]
    estimates = EstimatedCalendars(rules, clock=lambda: clock[0]).register(registry)
    assert estimates.now() == {"cn-workdays": [2027]}
    labels = {"calendar": "cn-workdays", "year": "2027"}
    assert registry.get_sample_value("fleetdesk_calendar_estimated", labels) == 1.0
    clock[0] = datetime(2025, 6, 1, tzinfo=UTC)  # 12 months ahead are all published
    assert estimates.now() == {}
    assert registry.get_sample_value("fleetdesk_calendar_estimated", labels) is None
    # the operator adds the official schedule: the estimate is gone
    clock[0] = datetime(2026, 12, 2, tzinfo=UTC)
    cal = rules / "calendars" / "cn-workdays.yaml"
    cal.write_text(cal.read_text() + "official:\n  2027:\n    holidays: [2027-01-01]\n")
    assert estimates.now() == {}
