"""The inbound desk endpoint as a Starlette route for the collector's HTTP server."""

from __future__ import annotations

import asyncio

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from collector.http.desk_inbound import MAX_BODY, PATH, InboundDesk, Reply


def desk_route(desk: InboundDesk) -> Route:
    async def desk_actions(request: Request) -> Response:
        length = request.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > MAX_BODY:
            reply = Reply(413, {"error": "body_too_large", "detail": f"at most {MAX_BODY} bytes"})
        else:
            body = await request.body()
            headers = {k.lower(): v for k, v in request.headers.items()}
            # the ticket transaction touches the database: off the event loop
            reply = await asyncio.to_thread(desk.handle, headers, body)
        return Response(reply.encoded(), reply.status, media_type="application/json")

    return Route(PATH, desk_actions, methods=["POST"])
