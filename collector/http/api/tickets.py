# ruff: noqa: PLR0917  # FastAPI takes each query parameter as an argument
"""``/api/v1/tickets``: list, detail with its timeline, operator actions and manual tickets.

Every action goes through the ticket service in one transaction with its audit row (who, what,
why) and the outbox rows of the events it caused, exactly like a desk's inbound action.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse

from collector.http.api import views
from collector.http.api.auth import ApiError, Principal, not_found, operator, viewer
from collector.http.api.context import ApiContext
from collector.http.api.models import (
    ActionIn,
    ActionOut,
    ManualTicketIn,
    SlaStatus,
    TicketDetail,
    TicketPage,
)
from collector.sla.policy import load_policy
from collector.sla.vocabulary import FAULT_KINDS
from collector.store import api_store
from collector.tickets.inputs import DeskAction, DeskCommand, ManualReport, Verdict
from collector.tickets.model import State, Ticket, TicketEvent

router = APIRouter(tags=["tickets"])
_DESK = {
    "acknowledge": DeskAction.ACK,
    "on_site": DeskAction.ONSITE,
    "received_for_repair": DeskAction.RECEIVED,  # the unit arrived: its repair clock starts
    "resolve": DeskAction.RESOLVE,
    "comment": DeskAction.COMMENT,
    "pause": DeskAction.PAUSE,
    "resume": DeskAction.RESUME,
    "change_level": DeskAction.SET_LEVEL,
    "mark_exempt": DeskAction.EXEMPT,
    "change_coverage": DeskAction.COVERAGE,
}
_NEEDS = {"change_level": "level", "mark_exempt": "exempt", "change_coverage": "coverage"}
_VERDICT_STATUS = {Verdict.UNKNOWN_NUMBER: 404, Verdict.TICKET_ENDED: 409, Verdict.NOT_ALLOWED: 409}
StateName = Annotated[str | None, Query(pattern="^(" + "|".join(s.value for s in State) + ")$")]


def ctx_of(request: Request) -> ApiContext:
    ctx: ApiContext = request.app.state.ctx
    return ctx


def _visible_ticket(ctx: ApiContext, who: Principal, number: str) -> Ticket:
    ticket = views.find_ticket(ctx, number)
    if ticket is None or not views.visible(who.tenant, ctx, ticket):
        raise not_found("ticket", number)
    return ticket


def filtered(
    ctx: ApiContext,
    who: Principal,
    *,
    state: str | None = None,
    level: str | None = None,
    policy: str | None = None,
    customer: str | None = None,
    sla_status: str | None = None,
    exempt: bool | None = None,
    device: str | None = None,
    live: bool = True,
) -> list[Ticket]:
    found = views.all_tickets(ctx, True if live and state is None else None)
    out = []
    for t in found:
        if state is not None and t.state.value != state:
            continue
        if (level is not None and t.level != level) or (policy is not None and t.policy != policy):
            continue
        if device is not None and t.device != device:
            continue
        if exempt is not None and (t.exempt is not None) != exempt:
            continue
        if who.tenant is not None or customer is not None:
            dev = views.owner(ctx, t)
            if who.tenant is not None and (dev is None or dev.tenant != who.tenant):
                continue
            if customer is not None and (dev is None or dev.customer != customer):
                continue
        if sla_status is not None and views.sla_status(ctx, t) != sla_status:
            continue
        out.append(t)
    return views.sort_by_time_left(ctx, out, ctx.clock())


@router.get("/tickets", response_model=TicketPage, summary="tickets, by SLA time left")
def list_tickets(
    request: Request,
    who: Annotated[Principal, Depends(viewer)],
    state: StateName = None,
    level: Annotated[str | None, Query(max_length=32)] = None,
    policy: Annotated[str | None, Query(max_length=64)] = None,
    customer: Annotated[str | None, Query(max_length=64)] = None,
    sla_status: SlaStatus | None = None,
    exempt: bool | None = None,
    device: Annotated[str | None, Query(max_length=64)] = None,
    live: Annotated[bool, Query(description="only live tickets (unless state is given)")] = True,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> Any:
    ctx = ctx_of(request)
    found = filtered(
        ctx,
        who,
        state=state,
        level=level,
        policy=policy,
        customer=customer,
        sla_status=sla_status,
        exempt=exempt,
        device=device,
        live=live,
    )
    now = ctx.clock()
    page = [views.ticket_view(ctx, t, now) for t in found[offset : offset + limit]]
    # built by ticket_view to the TicketPage schema (schemathesis checks it): not validated
    # again per request, the board's busiest call
    body = {"items": page, "total": len(found), "offset": offset, "limit": limit}
    return JSONResponse(body)


def timeline(ctx: ApiContext, number: str) -> list[dict[str, Any]]:
    """The ticket's events (from its outbox rows) with every delivery attempt's outcome."""
    by_seq: dict[int, dict[str, Any]] = {}
    for row in api_store.deliveries(ctx.db, [number]):
        entry = by_seq.get(row["seq"])
        if entry is None:
            body = json.loads(row["body"])
            entry = by_seq[row["seq"]] = {
                "seq": row["seq"],
                "type": body.get("type", "?"),
                "at": body.get("at"),
                "detail": body.get("detail") or {},
                "deliveries": [],
            }
        entry["deliveries"].append(
            {
                k: row[k]
                for k in ("sink", "state", "attempts", "created_at", "done_at", "last_error")
            }
        )
    return [by_seq[k] for k in sorted(by_seq)]


@router.get("/tickets/{number}", response_model=TicketDetail, summary="one ticket, its timeline")
def show_ticket(
    request: Request, number: str, who: Annotated[Principal, Depends(viewer)]
) -> dict[str, Any]:
    return ticket_detail(ctx_of(request), who, number)


def ticket_detail(ctx: ApiContext, who: Principal, number: str) -> dict[str, Any]:
    ticket = _visible_ticket(ctx, who, number)
    view = views.ticket_view(ctx, ticket, ctx.clock())
    view["timeline"] = timeline(ctx, number)
    view["actions"] = api_store.actions(ctx.db, ticket=number)
    return view


def _service(ctx: ApiContext) -> Any:
    if ctx.tickets is None:
        raise ApiError(409, "tickets_off", "this collector runs without rules and tickets")
    return ctx.tickets


@router.post("/tickets/{number}/actions", response_model=ActionOut, summary="act on a ticket")
def act(
    request: Request,
    number: str,
    body: ActionIn,
    who: Annotated[Principal, Depends(operator)],
) -> dict[str, Any]:
    ctx = ctx_of(request)
    ticket = _visible_ticket(ctx, who, number)  # 404 unless this token may see it
    service = _service(ctx)
    at = ctx.clock()
    actor = f"api:{who.name}"
    events: list[TicketEvent] = []
    needed = _NEEDS.get(body.action)
    if needed is not None and not getattr(body, needed):
        raise ApiError(422, f"{needed}_required", f"{body.action} needs '{needed}'")
    if needed is not None and not body.reason:
        raise ApiError(422, "reason_required", f"{body.action} needs 'reason': say why")
    levels = ctx.sla.ticket_policy(ticket.policy).levels
    if body.action == "change_level" and body.level not in levels:
        raise ApiError(422, "unknown_level", f"{ticket.policy} has levels: {', '.join(levels)}")
    comment = body.reason or None
    command = DeskCommand(number, _DESK[body.action], at, actor, comment, body.repaired,
                          level=body.level, exemption=body.exempt, coverage=body.coverage,
                          charge=body.charge)  # fmt: skip
    with service.transaction() as tx:
        outcome = service.on_desk(command, tx)  # the desk's own path: book, outbox, one commit
        events += outcome.events
        result, detail = outcome.verdict.value, outcome.reason
        status = _VERDICT_STATUS.get(outcome.verdict, 200)
        api_store.record_action(tx.conn, actor=actor, action=body.action, result=result,
                                ticket=number, reason=body.reason, at=at.timestamp())  # fmt: skip
    if events and ctx.committed is not None:
        ctx.committed(events)
    if status != 200:
        raise ApiError(status, result, detail)
    after = views.find_ticket(ctx, number)
    view = views.ticket_view(ctx, after, ctx.clock()) if after is not None else None
    return {"result": result, "detail": detail or body.action, "ticket": view}


@router.post(
    "/tickets",
    response_model=ActionOut,
    status_code=201,
    summary="open a ticket by hand (a fault reported by phone)",
)
def open_manual(
    request: Request, body: ManualTicketIn, who: Annotated[Principal, Depends(operator)]
) -> dict[str, Any]:
    ctx = ctx_of(request)
    dev = ctx.inventory.get(body.device) if ctx.inventory is not None else None
    if dev is None or not who.sees(dev.tenant):
        raise not_found("device", body.device)
    if body.kind not in FAULT_KINDS:
        known = ", ".join(sorted(FAULT_KINDS))
        raise ApiError(422, "unknown_kind", f"kind {body.kind!r} is not one of: {known}")
    service = _service(ctx)
    at = ctx.clock()
    try:
        policy = load_policy(dev.policy, ctx.rules_dir)
    except ValueError as exc:
        raise ApiError(409, "policy_unusable", str(exc)) from None
    level = body.level or policy.classify(body.kind, body.impact, "device", dev.criticality.value)
    if level is not None and level not in policy.levels:
        known = ", ".join(sorted(policy.levels))
        raise ApiError(422, "unknown_level", f"policy {policy.name} has levels: {known}")
    if level is None:
        raise ApiError(422, "level_required", f"policy {policy.name} gives no level: name one")
    key = f"device:{dev.device}/{body.kind}"
    for live in views.live_tickets(ctx):
        if live.key == key:
            raise ApiError(409, "ticket_exists", f"ticket {live.number} is already open for this")
    actor = f"api:{who.name}"
    report = ManualReport(at=at, onset=at, kind=body.kind, level=level, policy=dev.policy,
                          device=dev.device, impact=body.impact, actor=actor,
                          comment=body.reason)  # fmt: skip
    try:
        with service.transaction() as tx:
            events = service.open_manual(report, tx)  # the book's own manual-ticket method
            opened = [e for e in events if e.ticket.key == key]
            number = opened[-1].ticket.number if opened else None
            api_store.record_action(tx.conn, actor=actor, action="open_ticket", ticket=number,
                                    target=dev.device, reason=body.reason,
                                    result="applied" if opened else "no_ticket",
                                    at=at.timestamp())  # fmt: skip
    except ValueError as exc:  # a live ticket of that kind appeared meanwhile, a level gone
        raise ApiError(409, "not_opened", str(exc)) from None
    if events and ctx.committed is not None:
        ctx.committed(events)
    if number is None:
        raise ApiError(409, "no_ticket", "the ticket book opened no ticket for this fault")
    ticket = views.find_ticket(ctx, number)
    assert ticket is not None
    return {
        "result": "applied",
        "detail": "opened",
        "ticket": views.ticket_view(ctx, ticket, ctx.clock()),
    }
