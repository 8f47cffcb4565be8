"""The collector's inbound desk endpoint (Starlette on uvicorn) alone in a process, for tests
that measure its memory from /proc. Usage: ``python -m tests.support.inbound_app DB_URL``;
prints ``port <n>`` once listening and serves until stdin closes."""

from __future__ import annotations

import asyncio
import sys

from starlette.applications import Starlette

from collector.http.app import serve
from collector.http.desk_inbound import DeskSink, InboundDesk
from collector.http.desk_route import desk_routes
from collector.pipeline.ticket_service import TicketService
from collector.store.tickets import TicketStore
from tests.support.tickets import ENGINE, Devices, make_book

SECRET = "whsec_c2VjcmV0LWtleS0xMjM0NTY3ODkwMTIzNDU2"


async def main(url: str) -> None:
    store = TicketStore(url)
    store.migrate()
    service = TicketService(
        book_factory=lambda: make_book(Devices()), store=store, sla=ENGINE, sinks=("a",)
    )
    desk = InboundDesk(service, SECRET, sinks={"a": DeskSink("a", "webhook", (SECRET,))})
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_reader(sys.stdin.fileno(), lambda: stop.set() if not sys.stdin.read(1) else None)

    def listening(port: int) -> None:
        print(f"port {port}", flush=True)

    await serve(Starlette(routes=desk_routes(desk)), "127.0.0.1", 0, stop, listening)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
