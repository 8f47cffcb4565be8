"""The REST API under load: the fault list with 5,000 open tickets, and SSE fan-out.

Prints one JSON object: requests per second and p50/p99 latency of ``GET /api/v1/tickets``
(the board's first page, sorted by SLA time left over all 5,000 open tickets) and of the board
page itself, beside a static file from the same server in the same run (the baseline: what
the server, the loopback and the client cost without our code); then 100 connected
``/api/v1/events`` clients and how long each published event takes to reach all of them.
The collector's real app over SQLite, served by uvicorn on loopback in its own thread; the
client runs in the main thread. Run from the repository root:

    .venv/bin/python bench/api.py
"""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx

from collector.http import app as http
from tests.support.api import HEADER, Api
from tests.support.collector import telemetry

TICKETS = 5000
REQUESTS = 400
CONCURRENCY = 8
CLIENTS = 100
EVENTS = 50


def build(tmp: Path) -> Api:
    rows = "".join(
        f"d-{i},acme,WR5120,router,site-{i % 50},,common,acme,xian-integrator,2026-01-01,36,3600\n"
        for i in range(TICKETS)
    )
    api = Api(tmp, inventory=HEADER + rows)
    now = time.time()
    batch = [
        (f"fleet/v1/acme/d-{i}/telemetry", telemetry(f"d-{i}", 1, disk_used_pct=97.0), now)
        for i in range(TICKETS)
    ]
    api.service.pipeline.feed(batch)
    assert api.service.tickets is not None
    asyncio.run(api.service.tickets.runtime.drain())
    assert len(api.service.tickets.runtime.service.book.live()) == TICKETS
    return api


async def load(client: httpx.AsyncClient, url: str, headers: dict[str, str]) -> dict[str, Any]:
    latencies: list[float] = []
    todo = iter(range(REQUESTS))

    async def worker() -> None:
        for _ in todo:
            t0 = time.perf_counter()
            reply = await client.get(url, headers=headers)
            latencies.append(time.perf_counter() - t0)
            assert reply.status_code == 200, reply.text[:200]

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    elapsed = time.perf_counter() - t0
    latencies.sort()
    return {
        "requests_per_s": round(REQUESTS / elapsed, 1),
        "p50_ms": round(statistics.median(latencies) * 1000, 2),
        "p99_ms": round(latencies[int(len(latencies) * 0.99) - 1] * 1000, 2),
    }


async def fan_out(base: str, token: str, api: Api, loop: asyncio.AbstractEventLoop) -> Any:
    hub = api.service.api.hub
    received: list[list[float]] = [[] for _ in range(CLIENTS)]
    limits = httpx.Limits(max_connections=CLIENTS + 10)
    async with httpx.AsyncClient(timeout=60, limits=limits) as client:

        async def listen(n: int) -> None:
            headers = {"Authorization": f"Bearer {token}"}
            async with client.stream("GET", f"{base}/api/v1/events", headers=headers) as reply:
                async for line in reply.aiter_lines():
                    if line.startswith("data: "):
                        sent = json.loads(line[6:])["sent"]
                        received[n].append(time.time() - sent)
                        if len(received[n]) == EVENTS:
                            return

        tasks = [asyncio.create_task(listen(n)) for n in range(CLIENTS)]
        while len(hub.subscribers) < CLIENTS:  # noqa: ASYNC110  # another thread's hub
            await asyncio.sleep(0.05)
        t0 = time.perf_counter()
        for i in range(EVENTS):
            data = {"number": f"E{i}", "tenant": "acme", "sent": time.time()}
            loop.call_soon_threadsafe(hub.publish, "ticket", data)
            await asyncio.sleep(0.01)
        await asyncio.gather(*tasks)
        elapsed = time.perf_counter() - t0
    lags = sorted(x for per in received for x in per)
    return {
        "clients": CLIENTS,
        "events": EVENTS,
        "deliveries": len(lags),
        "deliveries_per_s": round(len(lags) / elapsed, 1),
        "lag_p50_ms": round(statistics.median(lags) * 1000, 2),
        "lag_p99_ms": round(lags[int(len(lags) * 0.99) - 1] * 1000, 2),
    }


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        api = build(Path(tmp))
        setup_s = time.perf_counter() - t0
        ports: list[int] = []
        server_loop: list[asyncio.AbstractEventLoop] = []
        stop: list[asyncio.Event] = []

        async def serve() -> None:
            server_loop.append(asyncio.get_running_loop())
            stop.append(asyncio.Event())
            await http.serve(api.app, "127.0.0.1", 0, stop[0], ports.append)

        thread = threading.Thread(target=lambda: asyncio.run(serve()), daemon=True)
        thread.start()
        while not ports:
            time.sleep(0.05)
        base = f"http://127.0.0.1:{ports[0]}"
        token = api.tokens["viewer"]
        auth = {"Authorization": f"Bearer {token}"}
        cookie = {"Cookie": f"fleetdesk_token={token}"}

        async def run() -> dict[str, Any]:
            async with httpx.AsyncClient(timeout=60) as client:
                await client.get(f"{base}/api/v1/tickets", headers=auth)  # warm the caches
                return {
                    "fault_list": await load(client, f"{base}/api/v1/tickets?limit=100", auth),
                    "board_page": await load(client, f"{base}/board", cookie),
                    "static_file": await load(client, f"{base}/board/static/board.css", {}),
                    "sse": await fan_out(base, token, api, server_loop[0]),
                }

        report = asyncio.run(run())
        server_loop[0].call_soon_threadsafe(stop[0].set)
        thread.join(10)
        api.close()
    out = {"open_tickets": TICKETS, "requests": REQUESTS, "concurrency": CONCURRENCY,
           "setup_s": round(setup_s, 1), **report}  # fmt: skip
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
