"""Live events: the bounded ring, resumption with Last-Event-ID over a real server (uvicorn
on loopback, the collector's app), tenant scope, and ticket events as the board sees them."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx

from collector.http import app as http
from collector.http.api.app import ticket_listener
from collector.http.api.events import EventHub
from tests.support.api import Api
from tests.support.collector import eventually


def test_ring_keeps_recent_events_and_says_when_some_were_dropped() -> None:
    hub = EventHub(size=3)
    for n in range(5):
        hub.publish("ticket", {"n": n})
    assert hub.since(5) == []
    assert [e.id for e in hub.since(3) or []] == [4, 5]
    assert [e.id for e in hub.since(2) or []] == [3, 4, 5]
    assert hub.since(1) is None  # event 2 is gone: the client must reload


def test_ticket_events_become_fault_opened_ticket_and_sla_warning(tmp_path: Path) -> None:
    api = Api(tmp_path)
    ctx = api.service.api
    api.report("nj-1", 1, tenant="globex", disk_used_pct=97.0)
    assert api.service.tickets is not None
    ticket = api.service.tickets.runtime.service.book.live()[0]
    from collector.tickets.model import EventKind, TicketEvent

    events = [
        TicketEvent(EventKind.OPENED, ticket.opened_at, ticket),
        TicketEvent(EventKind.ESCALATED, ticket.opened_at, ticket),
        TicketEvent(EventKind.ACKNOWLEDGED, ticket.opened_at, ticket),
    ]
    ticket_listener(ctx)(events)
    got = list(ctx.hub.ring)[-3:]
    assert [e.type for e in got] == ["fault_opened", "sla_warning", "ticket"]
    assert got[0].data["number"] == ticket.number and got[0].data["tenant"] == "globex"
    api.close()


async def read_events(
    client: httpx.AsyncClient, url: str, token: str, count: int, last: int | None = None
) -> list[tuple[int, str, dict[str, object]]]:
    headers = {"Authorization": f"Bearer {token}"}
    if last is not None:
        headers["Last-Event-ID"] = str(last)
    out: list[tuple[int, str, dict[str, object]]] = []
    async with client.stream("GET", url, headers=headers) as reply:
        assert reply.status_code == 200
        assert reply.headers["content-type"].startswith("text/event-stream")
        fields: dict[str, str] = {}
        async for line in reply.aiter_lines():
            if line == "" and "data" in fields:
                out.append((int(fields["id"]), fields["event"], json.loads(fields["data"])))
                fields = {}
                if len(out) == count:
                    break
            elif ":" in line and not line.startswith(":"):
                key, _, value = line.partition(": ")
                fields[key] = value
    return out


async def test_sse_resumes_with_last_event_id_and_keeps_tenants_apart(tmp_path: Path) -> None:
    api = Api(tmp_path)
    hub = api.service.api.hub
    stop = asyncio.Event()
    ports: list[int] = []
    server = asyncio.create_task(http.serve(api.app, "127.0.0.1", 0, stop, ports.append))
    try:
        await eventually(lambda: bool(ports))
        url = f"http://127.0.0.1:{ports[0]}/api/v1/events"
        async with httpx.AsyncClient(timeout=10) as client:
            first = asyncio.create_task(read_events(client, url, api.tokens["viewer"], 2))
            await eventually(lambda: len(hub.subscribers) == 1)
            hub.publish("fault_opened", {"number": "A", "tenant": "acme"})
            hub.publish("ticket", {"number": "B", "tenant": "globex"})
            seen = await first
            assert [(i, t, d["number"]) for i, t, d in seen] == [
                (1, "fault_opened", "A"),
                (2, "ticket", "B"),
            ]
            await eventually(lambda: not hub.subscribers)
            hub.publish("sla_warning", {"number": "C", "tenant": "acme"})  # missed while away
            hub.publish("ticket", {"number": "D", "tenant": "globex"})
            resumed = await read_events(client, url, api.tokens["viewer"], 2, last=2)
            assert [(i, d["number"]) for i, _, d in resumed] == [(3, "C"), (4, "D")]
            scoped = await read_events(client, url, api.tokens["acme-viewer"], 2, last=0)
            assert [d["number"] for _, _, d in scoped] == ["A", "C"]
            refused = await client.get(url)
            assert refused.status_code == 401
    finally:
        stop.set()
        await server
        api.close()


async def test_closing_the_hub_ends_open_streams(tmp_path: Path) -> None:
    """The collector's drain closes the hub, so a connected board cannot hold shutdown."""
    hub = EventHub()
    stream = hub.stream(None)
    assert await anext(stream) == b"retry: 2000\n\n"
    reader = asyncio.ensure_future(anext(stream))
    await eventually(lambda: len(hub.subscribers) == 1)
    hub.close()
    try:
        await reader
        raise AssertionError("the stream went on after close")
    except StopAsyncIteration:
        pass
    assert [chunk async for chunk in hub.stream(None)] == []
