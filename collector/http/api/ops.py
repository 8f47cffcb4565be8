# ruff: noqa: PLR0917  # FastAPI takes each query parameter as an argument
"""Maintenance windows (applied live to the rules engine), the SLA what-if questions of
``fleetdesk sla``, the system's own health, who the token is, new tokens, and the event stream.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request
from starlette.responses import StreamingResponse

from collector.config.durations import parse_duration
from collector.http.api.auth import ApiError, Principal, admin, not_found, operator, viewer
from collector.http.api.context import ApiContext
from collector.http.api.models import (
    Classified,
    Deadlines,
    Due,
    Health,
    MaintenanceIn,
    MaintenanceOut,
    TokenIn,
    TokenOut,
    Whoami,
)
from collector.http.api.tickets import ctx_of
from collector.rules.inputs import Maintenance
from collector.rules.maintenance import Window
from collector.sla.calendar import estimated_calendars as calendar_estimates
from collector.sla.calendar import load_calendar
from collector.sla.policy import load_policy, policy_names
from collector.store import api_store
from collector.tickets import codec

router = APIRouter()
Name = Annotated[str, Query(min_length=1, max_length=128)]


def instant(text: str, what: str) -> datetime:
    try:
        value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ApiError(422, "bad_instant", f"{what}: {text!r} is not ISO 8601") from None
    if value.tzinfo is None:
        raise ApiError(422, "bad_instant", f"{what}: {text!r} needs a UTC offset (Z, +08:00)")
    return value


# -- maintenance -----------------------------------------------------------------------------
def _window_view(w: Window, now: float) -> dict[str, Any]:
    return {
        "id": w.id,
        "device": w.device,
        "site": w.site,
        "active": w.start <= now < w.end,
        "start": codec.iso(datetime.fromtimestamp(w.start, UTC)),
        "end": codec.iso(datetime.fromtimestamp(w.end, UTC)),
    }


def _window_tenant(ctx: ApiContext, device: str | None, site: str | None) -> str | None:
    inv = ctx.inventory
    if inv is None:
        return None
    if device is not None:
        dev = inv.get(device)
        return dev.tenant if dev else None
    first = inv.sites.get(site or "", ())
    dev = inv.get(first[0]) if first else None
    return dev.tenant if dev else None


def _windows(ctx: ApiContext, who: Principal) -> list[Window]:
    if ctx.engine is None:
        return []
    found = ctx.engine.state.maintenance.windows.values()
    return [w for w in found if who.sees(_window_tenant(ctx, w.device, w.site))]


@router.get("/maintenance", response_model=list[MaintenanceOut], tags=["maintenance"])
def list_windows(request: Request, who: Annotated[Principal, Depends(viewer)]) -> list[Any]:
    now = time.time()
    return [_window_view(w, now) for w in _windows(ctx_of(request), who)]


@router.post(
    "/maintenance",
    response_model=MaintenanceOut,
    status_code=201,
    tags=["maintenance"],
    summary="announce a window: faults inside it are held",
)
async def create_window(
    request: Request, body: MaintenanceIn, who: Annotated[Principal, Depends(operator)]
) -> dict[str, Any]:
    ctx = ctx_of(request)
    if ctx.engine is None or ctx.feed is None:
        raise ApiError(409, "rules_off", "this collector runs without a rules engine")
    if (body.device is None) == (body.site is None):
        raise ApiError(422, "device_or_site", "name exactly one of 'device' or 'site'")
    inv = ctx.inventory
    known = inv is not None and (
        inv.get(body.device) is not None if body.device else body.site in inv.sites
    )
    tenant = _window_tenant(ctx, body.device, body.site)
    if not known or not who.sees(tenant):
        raise not_found("device" if body.device else "site", body.device or body.site or "")
    start, end = instant(body.start, "start"), instant(body.end, "end")
    if end <= start:
        raise ApiError(422, "bad_window", "the window must end after it starts")
    before = set(ctx.engine.state.maintenance.windows)
    ctx.feed(Maintenance(start, end, body.device, body.site))  # on the loop, like intake
    new = [w for i, w in ctx.engine.state.maintenance.windows.items() if i not in before]
    if not new:
        raise ApiError(409, "window_not_applied", "the rules engine did not take the window")
    window = new[0]
    await asyncio.to_thread(_audit, ctx, who, "maintenance", window.id, body.reason)
    ctx.hub.publish("maintenance", {"id": window.id, "change": "created"})
    return _window_view(window, time.time())


@router.delete(
    "/maintenance/{window_id}",
    response_model=MaintenanceOut,
    tags=["maintenance"],
    summary="cancel a window: it ends now",
)
async def cancel_window(
    request: Request,
    window_id: str,
    who: Annotated[Principal, Depends(operator)],
    reason: Annotated[str, Query(max_length=2000)] = "",
) -> dict[str, Any]:
    ctx = ctx_of(request)
    found = {w.id: w for w in _windows(ctx, who)}
    if window_id not in found or ctx.cancel is None:
        raise not_found("maintenance window", window_id)
    window = ctx.cancel(window_id)
    await asyncio.to_thread(_audit, ctx, who, "cancel_maintenance", window_id, reason)
    ctx.hub.publish("maintenance", {"id": window_id, "change": "cancelled"})
    return _window_view(window or found[window_id], time.time())


def _audit(ctx: ApiContext, who: Principal, action: str, target: str, reason: str) -> None:
    with ctx.db.begin() as conn:
        api_store.record_action(
            conn,
            actor=f"api:{who.name}",
            action=action,
            target=target,
            reason=reason,
            result="applied",
        )


# -- SLA what-if -----------------------------------------------------------------------------
@router.get("/sla/due", response_model=Due, tags=["sla"], summary="fleetdesk sla due")
def sla_due(
    request: Request,
    _who: Annotated[Principal, Depends(viewer)],
    calendar: Name,
    start: Name,
    duration: Annotated[str, Query(min_length=1, max_length=32)],
) -> dict[str, Any]:
    ctx = ctx_of(request)
    at = instant(start, "start")
    try:
        dur = parse_duration(duration)
        cal = load_calendar(calendar, ctx.rules_dir) if "/" not in calendar else None
    except (ValueError, OverflowError) as exc:
        raise ApiError(422, "bad_question", str(exc).splitlines()[0]) from None
    if cal is None:
        raise ApiError(422, "bad_question", "calendar: a preset name, not a path")
    try:
        due = cal.add(at, dur.seconds_on(cal.workday_seconds))
    except (ValueError, OverflowError) as exc:
        raise ApiError(422, "bad_question", str(exc).splitlines()[0]) from None
    return {
        "calendar": cal.name,
        "start": at.isoformat(),
        "duration": duration,
        "due": due.isoformat(),
        "estimated_years": list(cal.estimated_years(at, due)),
    }


def _policy(ctx: ApiContext, name: str) -> Any:
    if "/" in name or name not in policy_names(ctx.rules_dir):
        raise not_found("policy", name)
    try:
        return load_policy(name, ctx.rules_dir)
    except ValueError as exc:
        raise ApiError(409, "policy_unusable", str(exc).splitlines()[0]) from None


@router.get("/sla/deadlines", response_model=Deadlines, tags=["sla"])
def sla_deadlines(
    request: Request,
    _who: Annotated[Principal, Depends(viewer)],
    policy: Name,
    level: Annotated[str, Query(min_length=1, max_length=32)],
    start: Name,
) -> dict[str, Any]:
    ctx = ctx_of(request)
    found = _policy(ctx, policy)
    at = instant(start, "start")
    if level not in found.levels:
        known = ", ".join(sorted(found.levels))
        raise ApiError(422, "unknown_level", f"policy {policy} has levels: {known}")
    try:
        deadlines = found.deadlines(level, at)
    except (ValueError, OverflowError) as exc:
        raise ApiError(422, "bad_question", str(exc).splitlines()[0]) from None
    return {
        "policy": found.name,
        "level": level,
        "start": at.isoformat(),
        "deadlines": {k: v.isoformat() for k, v in deadlines.items()},
    }


@router.get("/sla/classify", response_model=Classified, tags=["sla"])
def sla_classify(
    request: Request,
    _who: Annotated[Principal, Depends(viewer)],
    policy: Name,
    kind: Name,
    impact: Name,
    scope: Annotated[str, Query(pattern="^(device|site)$")] = "device",
    criticality: Annotated[str, Query(pattern="^(common|uncommon)$")] = "common",
) -> dict[str, Any]:
    found = _policy(ctx_of(request), policy)
    try:
        rule = found.classification_rule(kind, impact, scope, criticality)
    except ValueError as exc:
        raise ApiError(422, "bad_question", str(exc).splitlines()[0]) from None
    return {
        "policy": found.name,
        "level": rule.level if rule else None,
        "rule": f"line {rule.line}: {rule.describe()}" if rule else None,
    }


# -- health ----------------------------------------------------------------------------------
_estimated: dict[str, Any] = {"at": 0.0, "names": []}
_rates: dict[str, Any] = {"at": 0.0, "totals": {}}


def estimated_calendars(ctx: ApiContext) -> list[str]:
    """Calendars whose holidays in the coming 12 months are an estimate (cached an hour)."""
    if time.monotonic() - _estimated["at"] < 3600 and _estimated["at"]:
        names: list[str] = _estimated["names"]
        return names
    try:
        found = sorted(calendar_estimates(ctx.clock(), ctx.rules_dir))
    except ValueError:  # a calendar file broke since start: rules check names it
        found = []
    _estimated.update(at=time.monotonic(), names=found)
    return found


def health_report(ctx: ApiContext) -> dict[str, Any]:
    registry = ctx.metrics.registry
    totals: dict[str, float] = {}
    rejects: dict[str, float] = {}
    for metric in registry.collect():
        for sample in metric.samples:
            if sample.name == "collector_messages_total":
                totals[sample.labels["outcome"]] = sample.value
            elif sample.name == "collector_rejects_total":
                rejects[sample.labels["reason"]] = sample.value
    now = time.monotonic()
    dt = now - _rates["at"] if _rates["at"] else 0.0
    rates = {
        f"{k}_per_s": (v - _rates["totals"].get(k, 0.0)) / dt if dt > 0 else 0.0
        for k, v in totals.items()
    }
    _rates.update(at=now, totals=totals)
    ok, detail = ctx.health() if ctx.health is not None else (True, {})
    outbox = api_store.outbox_counts(ctx.db)
    return {
        "status": "ok" if ok else "unavailable",
        "detail": detail,
        "intake": {**totals, **rates},
        "rejects": rejects,
        "tsdb_backlog": detail.get("tsdb_backlog"),
        "outbox": outbox,
        "dead_letters": outbox.get("dead", 0),
        "estimated_calendars": estimated_calendars(ctx),
    }


@router.get("/health", response_model=Health, tags=["system"])
def health(request: Request, _who: Annotated[Principal, Depends(viewer)]) -> dict[str, Any]:
    return health_report(ctx_of(request))


@router.get("/whoami", response_model=Whoami, tags=["system"])
def whoami(who: Annotated[Principal, Depends(viewer)]) -> dict[str, Any]:
    return {"name": who.name, "role": who.role, "tenant": who.tenant}


@router.post("/tokens", response_model=TokenOut, status_code=201, tags=["system"])
def new_token(
    request: Request, body: TokenIn, who: Annotated[Principal, Depends(admin)]
) -> dict[str, Any]:
    if who.tenant is not None and body.tenant != who.tenant:
        raise ApiError(403, "tenant_scope", f"this token may only create tokens for {who.tenant}")
    token, info = api_store.create_token(ctx_of(request).db, body.role, body.tenant, body.name)
    return {"token": token, "name": info.name, "role": info.role, "tenant": info.tenant}


# -- live events -----------------------------------------------------------------------------
@router.get(
    "/events",
    tags=["system"],
    response_class=StreamingResponse,
    summary="Server-Sent Events: fault_opened, ticket, sla_warning, maintenance",
    responses={200: {"content": {"text/event-stream": {}}}},
)
async def events(
    request: Request,
    who: Annotated[Principal, Depends(viewer)],
    last_event_id: Annotated[str | None, Header(max_length=20)] = None,
) -> StreamingResponse:
    last = int(last_event_id) if last_event_id and last_event_id.isdigit() else None
    stream = ctx_of(request).hub.stream(last, who.tenant)
    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return StreamingResponse(stream, media_type="text/event-stream", headers=headers)
