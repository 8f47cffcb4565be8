"""The REST API as one FastAPI application, mounted at ``/api/v1`` in the collector's app.

FastAPI rather than hand-written Starlette routes: the OpenAPI document
(``/api/v1/openapi.json``) is generated from the same pydantic models that validate requests
and shape responses, so it cannot drift from the code, and 422s name the field. It is Starlette
underneath, so it mounts inside the existing app and shares its server.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import sqlalchemy as sa
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse

from collector.http.api import devices, ops, tickets, views
from collector.http.api.auth import ApiError
from collector.http.api.context import ApiContext
from collector.http.api.models import Error
from collector.http.storage_errors import storage_unavailable
from collector.tickets.model import EventKind, TicketEvent

ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": Error, "description": "no token, or an unknown one"},
    403: {"model": Error, "description": "the token's role is not enough"},
    404: {"model": Error, "description": "not found (or another tenant's)"},
    409: {"model": Error, "description": "not possible in the current state"},
    422: {"model": Error, "description": "the request is not valid; 'fields' says where"},
    503: {"model": Error, "description": "the state database did not answer: retry (Retry-After)"},
}


def _error(status: int, error: str, detail: str, **more: Any) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse({"error": error, "detail": detail, **more}, status, headers=headers)


def build_api(ctx: ApiContext) -> FastAPI:
    api = FastAPI(
        title="fleetdesk collector API",
        version="1",
        openapi_url="/openapi.json",
        docs_url="/docs",
        redoc_url=None,
        responses=ERRORS,
    )
    api.state.ctx = ctx
    for router in (devices.router, tickets.router, ops.router):
        api.include_router(router)

    api.add_exception_handler(sa.exc.SQLAlchemyError, storage_unavailable)

    @api.exception_handler(ApiError)
    async def api_error(_request: Request, exc: ApiError) -> JSONResponse:
        return _error(exc.status, exc.error, exc.detail)

    @api.exception_handler(RequestValidationError)
    async def invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        fields = [
            {"where": ".".join(str(p) for p in e.get("loc", ())), "problem": e.get("msg", "")}
            for e in exc.errors()
        ]
        first = fields[0] if fields else {"where": "?", "problem": "invalid"}
        detail = f"{first['where']}: {first['problem']}"
        return _error(422, "invalid_request", detail, fields=fields)

    @api.exception_handler(HTTPException)
    async def http_error(_request: Request, exc: HTTPException) -> JSONResponse:
        names = {404: "not_found", 405: "method_not_allowed"}
        return _error(exc.status_code, names.get(exc.status_code, "http_error"), str(exc.detail))

    return api


def ticket_listener(ctx: ApiContext) -> Callable[[Sequence[TicketEvent]], None]:
    """Publishes every committed ticket event to the live stream (on the event loop)."""

    def publish(events: Sequence[TicketEvent]) -> None:
        now = ctx.clock()
        for event in events:
            t = event.ticket
            dev = views.owner(ctx, t)
            kind = "ticket"
            if event.kind is EventKind.OPENED:
                kind = "fault_opened"
            elif event.kind in (EventKind.ESCALATED, EventKind.BREACHED):
                kind = "sla_warning"
            data = {
                "number": t.number,
                "event": event.kind.value,
                "state": t.state.value,
                "tenant": dev.tenant if dev else None,
                "device": t.device,
                "site": t.site,
                "kind": t.kind,
                "level": t.level,
                "sla_status": views.sla_status(ctx, t),
                "time_left_s": views.time_left(ctx, t, now),
                "at": event.at.isoformat(),
                "detail": dict(event.detail),
            }
            ctx.hub.publish(kind, data)

    return publish
