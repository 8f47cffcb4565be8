"""Native desk webhooks and per-tenant desk secrets, through the collector's Starlette endpoint.

The bodies under fixtures/<desk>/inbound/ follow each vendor's documented webhook shape (Jira
Cloud webhooks, Zammad trigger webhooks, PagerDuty v3 webhooks; ServiceNow's outbound REST
body is ours, written by the business rule in docs/desks/servicenow.md); the test puts the
ticket's fault number (FD-NUMBER) and the desk's id for it (DESK-REF) in, then signs or
authenticates the request the way that desk does.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from starlette.applications import Starlette

from collector.http.app import serve
from collector.http.desk_inbound import SINK_PREFIX, DeskSink, InboundDesk
from collector.http.desk_route import desk_routes
from collector.pipeline.ticket_service import TicketService
from collector.store import ticket_tables as schema
from collector.store.tickets import TicketStore
from collector.tickets.model import Outcome
from tests.support.inbound import open_now, raw_request, signed
from tests.support.tickets import ENGINE, Devices, make_book, new_secret

FIXTURES = Path(__file__).parent / "fixtures"
TENANT_A, TENANT_B = new_secret(), new_secret()
JIRA_SECRET = "jira-webhook-secret-7d1f"
ZAMMAD_SECRET = "zammad-hmac-token-93ac"
SNOW_AUTH = "Basic " + base64.b64encode(b"fleetdesk-inbound:s3cret").decode()
PD_SECRET = "pd-v3-signing-secret-0b2e"
SINKS = ("tenant-a", "tenant-b", "jira", "zammad", "servicenow", "pagerduty")
REFS = {"jira": "OPS-7", "zammad": "101", "servicenow": "9d385017c611228701d22104cc95c371"}


class StarletteServer:
    """The collector's HTTP server (uvicorn) with the desk routes, on a thread of its own."""

    def __init__(self, desk: InboundDesk) -> None:
        self.app = Starlette(routes=desk_routes(desk))
        self.port = 0
        self._ready = threading.Event()
        self._loop = asyncio.new_event_loop()
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._stop = asyncio.Event()

        def listening(port: int) -> None:
            self.port = port
            self._ready.set()

        self._loop.run_until_complete(serve(self.app, "127.0.0.1", 0, self._stop, listening))

    def start(self) -> None:
        self._thread.start()
        assert self._ready.wait(10), "uvicorn did not start"

    def stop(self) -> None:
        stop = self._stop
        assert stop is not None
        self._loop.call_soon_threadsafe(stop.set)
        self._thread.join(10)


@pytest.fixture
def desks(store: TicketStore) -> Iterator[tuple[TicketService, str]]:
    service = TicketService(
        book_factory=lambda: make_book(Devices()), store=store, sla=ENGINE, sinks=SINKS
    )
    sinks = {
        "tenant-a": DeskSink("tenant-a", "webhook", (TENANT_A,)),
        "tenant-b": DeskSink("tenant-b", "webhook", (TENANT_B,)),
        "jira": DeskSink(
            "jira",
            "jira",
            (JIRA_SECRET,),
            {"priority:Highest": "set_level:1", "label:power-cut": "exempt:power_outage"},
        ),
        "zammad": DeskSink("zammad", "zammad", ("old-token", ZAMMAD_SECRET)),  # rotating
        "servicenow": DeskSink("servicenow", "servicenow", (SNOW_AUTH,)),
        "pagerduty": DeskSink(
            "pagerduty", "pagerduty", (PD_SECRET,), {"priority:P1": "set_level:1"}
        ),
    }
    server = StarletteServer(InboundDesk(service, None, sinks=sinks))
    server.start()
    try:
        yield service, f"http://127.0.0.1:{server.port}{SINK_PREFIX}"
    finally:
        server.stop()


def route_only_to(store: TicketStore, number: str, sink: str) -> None:
    """What per-customer routing leaves behind: the ticket's events go to one sink only."""
    o = schema.outbox
    with store.engine.begin() as conn:
        conn.execute(sa.delete(o).where(o.c.ticket == number, o.c.sink != sink))


def fixture_body(desk: str, name: str, number: str) -> bytes:
    text = (FIXTURES / desk / "inbound" / f"{name}.json").read_text()
    data: Any = json.loads(
        text.replace("FD-NUMBER", number).replace("DESK-REF", REFS.get(desk, ""))
    )
    if desk == "zammad":
        data["ticket"]["id"] = data["article"]["ticket_id"] = int(REFS["zammad"])
    return json.dumps(data).encode()


def desk_headers(desk: str, body: bytes, delivery: str) -> dict[str, str]:
    if desk == "jira":
        digest = hmac.new(JIRA_SECRET.encode(), body, hashlib.sha256).hexdigest()
        return {"x-hub-signature": f"sha256={digest}", "x-atlassian-webhook-identifier": delivery}
    if desk == "zammad":
        digest = hmac.new(ZAMMAD_SECRET.encode(), body, hashlib.sha1).hexdigest()
        return {"x-hub-signature": f"sha1={digest}", "x-zammad-delivery": delivery,
                "x-zammad-trigger": "fleetdesk"}  # fmt: skip
    if desk == "servicenow":
        return {"authorization": SNOW_AUTH}
    digest = hmac.new(PD_SECRET.encode(), body, hashlib.sha256).hexdigest()
    return {"x-pagerduty-signature": f"v1=0000,v1={digest}"}  # rotation: several signatures


ACKS = {
    "jira": "issue_updated_in_progress",
    "zammad": "ticket_open",
    "servicenow": "incident_in_progress",
    "pagerduty": "incident_acknowledged",
}


@pytest.mark.parametrize("desk", sorted(ACKS))
def test_native_desk_webhook_acknowledges_and_stops_the_response_clock(
    desks: tuple[TicketService, str], store: TicketStore, desk: str
) -> None:
    service, base = desks
    number = open_now(service)
    route_only_to(store, number, desk)
    if desk in REFS:
        store.set_remote_ref(desk, number, REFS[desk])
    body = fixture_body(desk, ACKS[desk], number)
    reply = httpx.post(base + desk, content=body, headers=desk_headers(desk, body, "d-1"))
    assert reply.status_code == 200, reply.text
    assert reply.json()["result"] == "applied" and reply.json()["state"] == "acknowledged"
    ticket = service.book.get(number)
    assert ticket is not None and ticket.acknowledged_at is not None
    response = ticket.target("response")
    assert response is not None and response.outcome is Outcome.MET
    # the desk retries the same delivery: same answer, nothing applied twice
    again = httpx.post(base + desk, content=body, headers=desk_headers(desk, body, "d-1"))
    assert again.json() == reply.json()
    # a wrong signature / credential changes nothing
    wrong = desk_headers(desk, body, "d-2")
    if desk == "servicenow":
        wrong["authorization"] = "Basic " + base64.b64encode(b"fleetdesk-inbound:guess").decode()
    bad = httpx.post(base + desk, content=body + b" ", headers=wrong)
    assert bad.status_code == 401 and "error" in bad.json()


@pytest.mark.parametrize(("desk", "name"), [("jira", "comment_created"),
                                             ("pagerduty", "incident_annotated")])  # fmt: skip
def test_native_comments_become_ticket_comments_and_our_echoes_are_ignored(
    desks: tuple[TicketService, str], store: TicketStore, desk: str, name: str
) -> None:
    service, base = desks
    number = open_now(service)
    if desk in REFS:
        store.set_remote_ref(desk, number, REFS[desk])
    body = fixture_body(desk, name, number)
    reply = httpx.post(base + desk, content=body, headers=desk_headers(desk, body, "c-1"))
    assert reply.status_code == 200, reply.text
    mine = sa.select(schema.outbox.c.body).where(schema.outbox.c.sink == desk)
    with store.engine.connect() as conn:
        types = [json.loads(b)["type"] for b in conn.execute(mine).scalars()]
    assert types == ["ticket_opened", "commented"]
    echo = body.replace(b"Spare router is on the van, ETA 40 min.",
                        b"acknowledged at 2025-10-09T08:20:00Z; state acknowledged")  # fmt: skip
    echo = echo.replace(b"Power cut at the site, utility on it.",
                        b"commented at 2025-10-09T08:20:00Z; state open")  # fmt: skip
    ignored = httpx.post(base + desk, content=echo, headers=desk_headers(desk, echo, "c-2"))
    assert ignored.status_code == 202 and ignored.json()["result"] == "ignored"


def test_tenant_a_secret_cannot_act_on_tenant_b_ticket(
    desks: tuple[TicketService, str], store: TicketStore
) -> None:
    service, base = desks
    number = open_now(service)
    route_only_to(store, number, "tenant-b")
    body = json.dumps({"fault": number, "action": "resolve"}).encode()
    # A's desk, A's secret, B's ticket: unknown to A (it cannot even learn the ticket exists)
    reply = httpx.post(base + "tenant-a", content=body, headers=signed(body, "a1", TENANT_A))
    assert reply.status_code == 404 and reply.json()["error"] == "unknown_fault_number"
    # A's secret at B's door: refused
    reply = httpx.post(base + "tenant-b", content=body, headers=signed(body, "a2", TENANT_A))
    assert reply.status_code == 401 and reply.json()["error"] == "bad_signature"
    ticket = service.book.get(number)
    assert ticket is not None and ticket.resolved_at is None
    # B's own desk may
    reply = httpx.post(base + "tenant-b", content=body, headers=signed(body, "b1", TENANT_B))
    assert reply.status_code == 200 and reply.json()["state"] == "resolved"


def test_unknown_sink_path_and_native_body_errors_are_json_4xx(
    desks: tuple[TicketService, str],
) -> None:
    _, base = desks
    assert httpx.post(base + "nobody", content=b"{}").status_code == 404
    deep = b"[" * 30000 + b"]" * 30000
    reply = httpx.post(base + "jira", content=deep, headers=desk_headers("jira", deep, "x"))
    assert reply.status_code == 400 and reply.json()["error"] == "bad_json"
    odd = b'{"webhookEvent": 5, "issue": [], "changelog": {"items": "x"}}'
    reply = httpx.post(base + "jira", content=odd, headers=desk_headers("jira", odd, "y"))
    assert reply.status_code == 202  # nothing to act on, no 500
    missing = httpx.post(base + "servicenow", content=b"{}", headers={"authorization": "Basic x"})
    assert missing.status_code == 401 and missing.json()["error"] == "bad_credentials"
    port = int(base.split(":")[2].split("/")[0])
    for value in ("-1", "12abc", str(10**12)):
        head = f"POST {SINK_PREFIX}jira HTTP/1.1\r\nHost: x\r\nContent-Length: {value}\r\n\r\n"
        status, answer = raw_request(port, head.encode())
        assert 400 <= status < 500 and "error" in answer, (value, status, answer)


def test_jira_priority_and_label_change_the_level_and_exempt(
    desks: tuple[TicketService, str], store: TicketStore
) -> None:
    service, base = desks
    number = open_now(service)
    store.set_remote_ref("jira", number, REFS["jira"])
    body = fixture_body("jira", "issue_updated_priority_label", number)
    reply = httpx.post(base + "jira", content=body, headers=desk_headers("jira", body, "p-1"))
    assert reply.status_code == 200, reply.text
    assert reply.json()["results"] == ["applied", "applied"]
    ticket = service.book.get(number)
    assert ticket is not None and ticket.level == "1" and ticket.exempt == "power_outage"


def test_pagerduty_priority_changes_the_level(desks: tuple[TicketService, str]) -> None:
    service, base = desks
    number = open_now(service)
    body = fixture_body("pagerduty", "incident_priority_updated", number)
    reply = httpx.post(
        base + "pagerduty", content=body, headers=desk_headers("pagerduty", body, "x")
    )
    assert reply.status_code == 200, reply.text
    ticket = service.book.get(number)
    assert ticket is not None and ticket.level == "1"
