# ruff: noqa: PLR0917  # FastAPI takes each query parameter as an argument
"""``/api/v1/devices`` and ``/api/v1/faults``: the fleet as the collector knows it.

A device's state: ``in_maintenance`` while a window covers it, ``offline`` with an open
``device_offline`` fault, ``faulty`` with any other open fault, ``unknown_reporting`` when it
reports but is not in the inventory, ``never_seen`` when listed but silent so far, else ``ok``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request

from collector.http.api import views
from collector.http.api.auth import Principal, not_found, viewer
from collector.http.api.context import ApiContext
from collector.http.api.models import DeviceDetail, DevicePage, DeviceState, FaultOut
from collector.http.api.tickets import ctx_of
from collector.rules.faults import Fault
from collector.rules.inventory import UNASSIGNED
from collector.store import api_store
from collector.tickets import codec

router = APIRouter(tags=["devices"])
Text = Annotated[str | None, Query(max_length=128)]


@dataclass(frozen=True, slots=True)
class Row:
    id: str
    tenant: str
    customer: str
    site: str | None
    cls: str
    model: str
    policy: str
    last_seen: float | None
    in_inventory: bool


def fleet(ctx: ApiContext) -> Iterator[Row]:
    seen = dict(ctx.registry.devices) if ctx.registry is not None else {}
    listed = set()
    if ctx.inventory is not None:
        for d in ctx.inventory:
            listed.add(d.device)
            live = seen.get(d.device)
            yield Row(
                d.device,
                d.tenant,
                d.customer,
                d.site,
                d.cls,
                d.model or (live.model if live else ""),
                d.policy,
                live.last_seen if live else None,
                d.assigned,
            )
    for dev_id, live in seen.items():
        if dev_id not in listed:
            yield Row(
                dev_id,
                live.tenant,
                UNASSIGNED,
                None,
                UNASSIGNED,
                live.model,
                "",
                live.last_seen,
                False,
            )


def faults_by_device(ctx: ApiContext) -> dict[str, list[Fault]]:
    out: dict[str, list[Fault]] = {}
    if ctx.engine is not None:
        for fault in ctx.engine.open_faults():
            for device in (fault.device,) if fault.device else fault.devices:
                out.setdefault(device, []).append(fault)
    return out


def state_of(ctx: ApiContext, row: Row, faults: list[Fault], now: datetime) -> str:
    engine = ctx.engine
    if engine is not None and engine.state.maintenance.holds(row.id, row.site, now.timestamp()):
        return "in_maintenance"
    if any(f.kind == "device_offline" for f in faults):
        return "offline"
    if faults:
        return "faulty"
    if not row.in_inventory:
        return "unknown_reporting"
    return "never_seen" if row.last_seen is None else "ok"


def device_view(ctx: ApiContext, row: Row, faults: list[Fault], now: datetime) -> dict[str, Any]:
    return {
        "id": row.id,
        "tenant": row.tenant,
        "customer": row.customer,
        "site": row.site,
        "cls": row.cls,
        "model": row.model,
        "state": state_of(ctx, row, faults, now),
        "last_seen": row.last_seen,
        "open_faults": len(faults),
        "in_inventory": row.in_inventory,
    }


def fault_view(ctx: ApiContext, fault: Fault, tickets: dict[str, str]) -> dict[str, Any]:
    return {
        "id": fault.id,
        "kind": fault.kind,
        "impact": fault.impact.value,
        "scope": fault.scope.value,
        "subject": fault.subject,
        "device": fault.device,
        "site": fault.site,
        "onset": codec.iso(fault.onset),
        "policy": fault.policy,
        "level": fault.level,
        "exempt": fault.exempt.value if fault.exempt else None,
        "ticket": tickets.get(fault.id),
    }


def devices_matching(ctx: ApiContext, who: Principal, **want: str | None) -> list[dict[str, Any]]:
    now = ctx.clock()
    faults = faults_by_device(ctx)
    out = []
    for row in fleet(ctx):
        if not who.sees(row.tenant):
            continue
        if any(v is not None and getattr(row, k) != v for k, v in want.items() if k != "state"):
            continue
        view = device_view(ctx, row, faults.get(row.id, []), now)
        if want.get("state") is not None and view["state"] != want["state"]:
            continue
        out.append(view)
    return out


@router.get("/devices", response_model=DevicePage, summary="devices, filtered")
def list_devices(
    request: Request,
    who: Annotated[Principal, Depends(viewer)],
    tenant: Text = None,
    customer: Text = None,
    site: Text = None,
    cls: Annotated[str | None, Query(alias="class", max_length=64)] = None,
    model: Text = None,
    state: DeviceState | None = None,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> dict[str, Any]:
    found = devices_matching(
        ctx_of(request),
        who,
        tenant=tenant,
        customer=customer,
        site=site,
        cls=cls,
        model=model,
        state=state,
    )
    return {
        "items": found[offset : offset + limit],
        "total": len(found),
        "offset": offset,
        "limit": limit,
    }


@router.get("/devices/{device}", response_model=DeviceDetail, summary="one device in full")
def show_device(
    request: Request, device: str, who: Annotated[Principal, Depends(viewer)]
) -> dict[str, Any]:
    return device_detail(ctx_of(request), who, device)


def device_detail(ctx: ApiContext, who: Principal, device: str) -> dict[str, Any]:
    row = next((r for r in fleet(ctx) if r.id == device), None)
    if row is None or not who.sees(row.tenant):
        raise not_found("device", device)
    now = ctx.clock()
    faults = faults_by_device(ctx).get(device, [])
    tickets = api_store.device_tickets(ctx.db, device)
    numbers = {t.fault_id: t.number for t in tickets}
    view = device_view(ctx, row, faults, now)
    samples = ctx.recent.latest(device) if ctx.recent is not None else []
    inv = ctx.inventory.get(device) if ctx.inventory is not None else None
    live = [t for t in tickets if t.state.value in ("open", "acknowledged", "onsite")]
    view.update(
        samples=[{"at": at, "metrics": dict(m)} for at, m in samples[-200:]],
        faults=[fault_view(ctx, f, numbers) for f in faults],
        tickets=[views.ticket_view(ctx, t, now) for t in tickets],
        warranty={
            "start": inv.warranty_start.isoformat() if inv and inv.warranty_start else None,
            "months": inv.warranty_months if inv else None,
            "policy": row.policy,
            "coverage_now": live[0].coverage.value if live else None,
        },
    )
    return view


@router.get("/faults", response_model=list[FaultOut], summary="open faults of the rules engine")
def list_faults(
    request: Request,
    who: Annotated[Principal, Depends(viewer)],
    kind: Text = None,
    device: Text = None,
    policy: Text = None,
    level: Text = None,
    exempt: bool | None = None,
) -> list[dict[str, Any]]:
    ctx = ctx_of(request)
    if ctx.engine is None:
        return []
    numbers = {t.fault_id: t.number for t in views.live_tickets(ctx)}
    tenants = {r.id: r.tenant for r in fleet(ctx)}
    out = []
    for fault in ctx.engine.open_faults():
        devices = (fault.device,) if fault.device else fault.devices
        if who.tenant is not None and not any(tenants.get(d) == who.tenant for d in devices):
            continue
        if (kind and fault.kind != kind) or (device and device not in devices):
            continue
        if (policy and fault.policy != policy) or (level and fault.level != level):
            continue
        if exempt is not None and (fault.exempt is not None) != exempt:
            continue
        out.append(fault_view(ctx, fault, numbers))
    return out
