"""The answer to a request the state database could not serve (down, restarting, locked)."""

from __future__ import annotations

import logging

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

log = logging.getLogger("fleetdesk.collector.http")


async def storage_unavailable(request: Request, exc: Exception) -> Response:
    """A JSON 503 to retry, with one log line and no traceback. The pool drops its dead
    connections at the first error, so a request after a database restart finds a new one."""
    why = str(getattr(exc, "orig", None) or exc.__class__.__name__).splitlines()[0][:200]
    log.warning("%s %s: state database unavailable: %s", request.method, request.url.path, why)
    body = {
        "error": "storage_unavailable",
        "detail": "the state database did not answer; try again",
    }
    return JSONResponse(body, 503, headers={"Retry-After": "1"})
