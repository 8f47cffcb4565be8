"""The collector's HTTP server: ``/healthz`` and Prometheus ``/metrics``.

Starlette on uvicorn, run as one task of the service's TaskGroup: the desk endpoint, the REST
API (``/api/v1``) and the board come in as more routes of the same application. uvicorn's own
signal handling is switched off; the service owns SIGTERM and stops the server in its drain.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import h11
import sqlalchemy as sa
import uvicorn
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route
from uvicorn.protocols.http.h11_impl import H11Protocol

from collector.http.storage_errors import storage_unavailable
from collector.metrics import Metrics

log = logging.getLogger("fleetdesk.collector.http")

Health = Callable[[], tuple[bool, dict[str, Any]]]


def build_app(metrics: Metrics, health: Health, routes: Sequence[BaseRoute] = ()) -> Starlette:
    """``routes``: more endpoints (the inbound desk endpoint of the tickets)."""

    async def healthz(_request: Request) -> Response:
        # "degraded" (200: still running, catching up): a part is retrying a storage error;
        # detail["degraded"] names each part and why. "unavailable" (503): draining.
        ok, detail = health()
        status = "unavailable" if not ok else "degraded" if detail.get("degraded") else "ok"
        return JSONResponse({"status": status, **detail}, 200 if ok else 503)

    async def prometheus(_request: Request) -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    async def not_found(request: Request, _exc: Exception) -> Response:
        # a path no route takes (not even the API's mount: e.g. a newline in it) under /api/
        # still answers the API's JSON error
        if request.url.path.startswith("/api/"):
            body = {"error": "not_found", "detail": f"no such path: {request.url.path}"}
            return JSONResponse(body, 404)
        return Response("Not Found", 404, media_type="text/plain")

    return Starlette(
        routes=[Route("/healthz", healthz), Route("/metrics", prometheus), *routes],
        exception_handlers={404: not_found, sa.exc.SQLAlchemyError: storage_unavailable},
    )


class _JsonH11(H11Protocol):
    """uvicorn's HTTP/1.1 protocol, answering a request it cannot parse (a malformed or negative
    ``Content-Length``, a broken header) with a JSON 400 like every other refusal."""

    def send_400_response(self, msg: str) -> None:
        body = json.dumps({"error": "bad_http_request", "detail": msg or "malformed request"})
        headers = [(b"content-type", b"application/json"), (b"connection", b"close"),
                   (b"content-length", str(len(body)).encode())]  # fmt: skip
        self.transport.write(self.conn.send(h11.Response(status_code=400, headers=headers)))
        self.transport.write(self.conn.send(h11.Data(data=body.encode())))
        self.transport.write(self.conn.send(h11.EndOfMessage()))
        self.transport.close()


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield  # the service handles signals


async def serve(
    app: Starlette,
    host: str,
    port: int,
    stop: asyncio.Event,
    on_listening: Callable[[int], None] | None = None,
) -> None:
    """Serve until ``stop``; ``on_listening(port)`` gets the bound port (``port`` may be 0)."""
    config = uvicorn.Config(
        app, host=host, port=port, log_level="warning", lifespan="off", http=_JsonH11
    )
    server = _Server(config)

    async def serve_once() -> None:
        try:
            await server.serve()
        except SystemExit:  # uvicorn exits the process when it cannot bind; we report it
            raise OSError(f"http: cannot listen on {host}:{port}") from None

    task = asyncio.create_task(serve_once(), name="http-server")
    stopped = asyncio.create_task(stop.wait(), name="http-stop")
    while not server.started and not task.done() and not stop.is_set():
        await asyncio.wait({task, stopped}, timeout=0.01)
    if server.started and on_listening is not None:
        on_listening(server.servers[0].sockets[0].getsockname()[1])
    await asyncio.wait({task, stopped}, return_when=asyncio.FIRST_COMPLETED)
    stopped.cancel()
    server.should_exit = True
    await task
