"""The inbound desk endpoints as Starlette routes for the collector's HTTP server.

The body is read from the stream with a running count and refused (413) the moment it passes
``MAX_BODY``, before it is buffered: a desk (or anyone) sending an endless chunked body costs
at most one limit's worth of memory. uvicorn stops reading the socket while the app does not
read (its flow control), and closes the connection after an answer that left the body unread.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route

from collector.http.desk_inbound import (
    MAX_BODY,
    PATH,
    SINK_PREFIX,
    InboundDesk,
    Reply,
    check_length,
    refused,
    too_large,
)


async def _read(request: Request) -> bytes | Reply:
    refusal = check_length(request.headers.get("content-length"))
    if refusal is not None:
        return refusal
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > MAX_BODY:
                return too_large()
            chunks.append(chunk)
    except ClientDisconnect:
        return refused(400, "incomplete_body", "the client went away mid-body")
    return b"".join(chunks)


def _endpoint(handle: Callable[[Request, dict[str, str], bytes], Reply]) -> Callable[..., object]:
    async def endpoint(request: Request) -> Response:
        body = await _read(request)
        if isinstance(body, Reply):
            reply = body
        else:
            headers = {k.lower(): v for k, v in request.headers.items()}
            # the ticket transaction touches the database: off the event loop
            reply = await asyncio.to_thread(handle, request, headers, body)
        response = Response(reply.encoded(), reply.status, media_type="application/json")
        if reply.status == 413:
            response.headers["connection"] = "close"
        return response

    return endpoint


def desk_routes(desk: InboundDesk) -> list[Route]:
    shared = _endpoint(lambda _r, headers, body: desk.handle(headers, body))
    per_sink = _endpoint(
        lambda r, headers, body: desk.handle_sink(str(r.path_params["sink"]), headers, body)
    )
    return [
        Route(PATH, shared, methods=["POST"]),
        Route(SINK_PREFIX + "{sink}", per_sink, methods=["POST"]),
    ]


def desk_route(desk: InboundDesk) -> Route:
    """The shared-secret endpoint alone (``desk_routes`` has the per-sink one too)."""
    return desk_routes(desk)[0]
