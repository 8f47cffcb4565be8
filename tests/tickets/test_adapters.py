"""Each desk adapter's requests, compared with fixtures written from the desks' API references.

The fixtures under fixtures/<desk>/ are the exact requests (method, URL, JSON body) each desk
expects for the same sample ticket's events. After a deliberate format change, edit them by
hand against the desk's reference (the test never writes them: it would then always pass).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from collector.delivery.adapters.jira import JiraAdapter
from collector.delivery.adapters.pagerduty import PagerDutyAdapter
from collector.delivery.adapters.servicenow import ServiceNowAdapter
from collector.delivery.adapters.webhook import WebhookAdapter
from collector.delivery.adapters.zammad import ZammadAdapter
from collector.delivery.request import Adapter, MissingRemoteRef
from collector.pipeline.ticket_service import deadlines
from collector.tickets import codec
from collector.tickets.inputs import DeskAction, DeskCommand
from collector.tickets.numbers import MemoryNumbers
from tests.support.tickets import ENGINE, fault, make_book, utc

FIXTURES = Path(__file__).parent / "fixtures"

ADAPTERS: dict[str, tuple[Adapter, str | None]] = {
    "webhook": (WebhookAdapter("https://desk.example.com/hooks/fleetdesk"), None),
    "jira": (
        JiraAdapter(
            "https://example.atlassian.net",
            "1",
            "10",
            transitions={"resolved": "31", "closed": "41", "reopened": "11"},
        ),
        "OPS-17",
    ),
    "zammad": (
        ZammadAdapter("https://zammad.example.com", "Field service", "noc@example.com"),
        "42",
    ),
    "servicenow": (
        ServiceNowAdapter("https://example.service-now.com", "Field Service"),
        "9d385017c611228701d22104cc95c371",
    ),
    "pagerduty": (
        PagerDutyAdapter(
            "R0UT1NGKEY0123456789012345678901", "https://events.pagerduty.com/v2/enqueue"
        ),
        None,
    ),
}


def sample_events() -> list[dict[str, Any]]:
    """One ticket's life: opened, acknowledged, breached, commented, resolved, closed."""
    sla = ENGINE
    book = make_book()
    numbers = MemoryNumbers()
    events = book.on_fault(
        fault("opened", "2025-10-09T08:00:00", policy="wthink", level="urgent"), numbers
    )
    number = events[0].ticket.number
    for action, at, extra in (
        ("ack", "2025-10-09T08:20:00", {}),
        ("comment", "2025-10-09T13:00:00", {"comment": "spare unit on its way"}),
        ("resolve", "2025-10-09T17:00:00", {}),
    ):
        cmd = DeskCommand(number, DeskAction(action), utc(at), actor="alice", **extra)  # type: ignore[arg-type]
        events += book.on_desk(cmd).events
    cleared = fault("cleared", "2025-10-09T17:30:00", policy="wthink", level="urgent")
    events += book.on_fault(cleared, numbers)
    events += book.tick(utc("2025-10-09T18:00:00"))
    wanted = {"ticket_opened", "acknowledged", "breached", "commented", "resolved", "closed"}
    chosen: dict[str, dict[str, Any]] = {}
    for e in events:
        if e.kind.value in wanted and e.kind.value not in chosen:
            chosen[e.kind.value] = codec.event_to_dict(e, deadlines(e, sla))
    return list(chosen.values())


@pytest.mark.parametrize("desk", sorted(ADAPTERS))
def test_requests_match_recorded_fixtures(desk: str) -> None:
    adapter, ref = ADAPTERS[desk]
    for event in sample_events():
        ticket_ref = None if event["type"] == "ticket_opened" else ref
        request = adapter.request(event, ticket_ref)
        sent = request if isinstance(request, tuple) else (request,)
        shown = [{"method": r.method, "url": r.url, "json": r.json} for r in sent if r is not None]
        got: object = shown[0] if len(shown) == 1 else (shown or None)
        path = FIXTURES / desk / f"{event['type']}.json"
        assert got == json.loads(path.read_text()), f"{desk} {event['type']}"
        json.dumps(got)  # serialisable as sent


def test_remote_refs_from_create_responses() -> None:
    opened = sample_events()[0]
    jsm = {"issueId": "10002", "issueKey": "OPS-17", "requestTypeId": "10"}
    assert ADAPTERS["jira"][0].ref_from(opened, jsm) == "OPS-17"
    assert ADAPTERS["zammad"][0].ref_from(opened, {"id": 42, "number": "31001"}) == "42"
    sys_id = {"result": {"sys_id": "9d38", "number": "INC0010001"}}
    assert ADAPTERS["servicenow"][0].ref_from(opened, sys_id) == "9d38"


@pytest.mark.parametrize("desk", ["jira", "zammad", "servicenow"])
def test_update_without_remote_ref_is_refused(desk: str) -> None:
    adapter, _ = ADAPTERS[desk]
    with pytest.raises(MissingRemoteRef):
        adapter.request(sample_events()[1], None)


def test_each_desk_builds_the_same_adapter_from_its_sink_keys(tmp_path: Path) -> None:
    from collector.delivery.sinks import load_sinks

    path = tmp_path / "sinks.yaml"
    path.write_text(
        "sinks:\n"
        "  - {name: webhook, type: webhook, url: https://desk.example.com/hooks/fleetdesk}\n"
        "  - name: jira\n    type: jira\n    url: https://example.atlassian.net\n"
        "    service_desk_id: 1\n    request_type_id: 10\n"
        "    transitions: {resolved: 31, closed: 41, reopened: 11}\n"
        "  - {name: zammad, type: zammad, url: https://zammad.example.com,\n"
        "     group: Field service, customer: noc@example.com}\n"
        "  - {name: servicenow, type: servicenow, url: https://example.service-now.com,\n"
        "     assignment_group: Field Service}\n"
        "  - {name: pagerduty, type: pagerduty, routing_key_env: PD_KEY}\n"
    )
    sinks = load_sinks(path, {"PD_KEY": "R0UT1NGKEY0123456789012345678901"})
    assert {name: sink.adapter for name, sink in sinks.items()} == {
        desk: adapter for desk, (adapter, _) in ADAPTERS.items()
    }
