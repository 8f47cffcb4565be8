"""The board's pages: fault board, fleet, device and ticket, rendered on the server (Jinja2).

Sign-in stores the token in an HttpOnly cookie; the pages read through the same functions as
the API (so they show the same thing, tenant scope included) and the script acts through the
API itself. Live updates: the script listens to ``/api/v1/events`` and reloads the rows.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode

import jinja2
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from collector.http.api import devices, tickets
from collector.http.api.auth import COOKIE, ApiError, Principal, authenticate
from collector.http.api.context import ApiContext
from collector.http.api.ops import health_report
from collector.http.api.views import DEVICE_STATES, SLA_STATUSES, ticket_view
from collector.http.board.charts import charts
from collector.store.api_store import lookup_token

HERE = Path(__file__).parent
PAGE = 100  # rows per page: 5,000 open tickets stay 50 light pages
FILTERS = ("state", "level", "policy", "customer", "sla_status", "exempt")

_env = jinja2.Environment(
    loader=jinja2.FileSystemLoader(HERE / "templates"),
    autoescape=jinja2.select_autoescape(("html",)),
    undefined=jinja2.StrictUndefined,
)

_env.filters["short"] = lambda iso: str(iso)[:19].replace("T", " ") + " UTC"
_env.filters["epoch"] = lambda t: datetime.fromtimestamp(float(t), UTC).strftime("%H:%M:%S UTC")


def render(name: str, status: int = 200, **values: Any) -> HTMLResponse:
    return HTMLResponse(_env.get_template(name).render(**values), status)


def board_routes(ctx: ApiContext) -> list[BaseRoute]:
    def who(request: Request) -> Principal | None:
        try:
            return authenticate(request, ctx.db)
        except ApiError:
            return None

    def login_redirect(request: Request) -> Response:
        return RedirectResponse(f"/board/login?{urlencode({'next': request.url.path})}", 303)

    def banner() -> dict[str, Any]:
        report = health_report(ctx)
        return {"estimated": report["estimated_calendars"], "dead": report["dead_letters"]}

    def common(request: Request, me: Principal, title: str) -> dict[str, Any]:
        return {
            "me": me,
            "title": title,
            "banner": banner(),
            "path": request.url.path,
            "can_act": me.allows("operator"),
        }

    def board_data(request: Request, me: Principal) -> dict[str, Any]:
        q = request.query_params
        wanted: dict[str, Any] = {k: q.get(k) or None for k in FILTERS}
        exempt = wanted.pop("exempt")
        wanted["exempt"] = {"yes": True, "no": False}.get(exempt or "")
        if wanted["sla_status"] not in (None, *SLA_STATUSES):
            wanted["sla_status"] = None
        found = tickets.filtered(ctx, me, **wanted)
        page = max(1, int(q.get("page", "1"))) if q.get("page", "1").isdigit() else 1
        pages = max(1, -(-len(found) // PAGE))
        page = min(page, pages)
        now = ctx.clock()
        rows = [ticket_view(ctx, t, now) for t in found[(page - 1) * PAGE : page * PAGE]]
        base = {k: v for k, v in q.items() if k != "page" and v}
        return {
            "rows": rows,
            "total": len(found),
            "page": page,
            "pages": pages,
            "query": base,
            "qs": lambda p: urlencode({**base, "page": p}),
            "now": now.timestamp(),
            "filters": {k: q.get(k, "") for k in FILTERS},
            "sla_statuses": SLA_STATUSES,
        }

    async def index(_request: Request) -> Response:
        return RedirectResponse("/board", 303)

    async def login(request: Request) -> Response:
        nxt = request.query_params.get("next", "/board")
        nxt = nxt if nxt.startswith("/board") else "/board"
        if request.method == "GET":
            return render("login.html", next=nxt, error=None)
        # urlencoded by hand: Starlette's form parser needs python-multipart for one field
        form = parse_qs((await request.body())[:4096].decode(errors="replace"))
        token = (form.get("token") or [""])[0].strip()
        if not token or lookup_token(ctx.db, token) is None:
            return render("login.html", 401, next=nxt, error="unknown or revoked token")
        reply = RedirectResponse(nxt, 303)
        secure = request.url.scheme == "https"
        reply.set_cookie(COOKIE, token, httponly=True, samesite="strict", secure=secure)
        return reply

    async def logout(_request: Request) -> Response:
        reply = RedirectResponse("/board/login", 303)
        reply.delete_cookie(COOKIE)
        return reply

    def board(request: Request) -> Response:
        me = who(request)
        if me is None:
            return login_redirect(request)
        return render("board.html", **common(request, me, "Faults"), **board_data(request, me))

    def rows(request: Request) -> Response:
        me = who(request)
        if me is None:
            return Response("sign in again", 401)
        data = board_data(request, me)
        return render("rows.html", **common(request, me, "rows"), **data)

    def fleet(request: Request) -> Response:
        me = who(request)
        if me is None:
            return login_redirect(request)
        sites: dict[str, Counter[str]] = {}
        for dev in devices.devices_matching(ctx, me):
            sites.setdefault(dev["site"] or "(no site)", Counter())[dev["state"]] += 1
        listed = sorted(
            sites.items(), key=lambda kv: (-sum(n for s, n in kv[1].items() if s != "ok"), kv[0])
        )
        return render(
            "fleet.html", **common(request, me, "Fleet"), sites=listed, states=DEVICE_STATES
        )

    def device(request: Request) -> Response:
        me = who(request)
        if me is None:
            return login_redirect(request)
        try:
            detail = devices.device_detail(ctx, me, request.path_params["device"])
        except ApiError as exc:
            return render("error.html", exc.status, **common(request, me, "Not found"), error=exc)
        return render(
            "device.html",
            **common(request, me, detail["id"]),
            d=detail,
            charts=charts(detail["samples"]),
        )

    def ticket(request: Request) -> Response:
        me = who(request)
        if me is None:
            return login_redirect(request)
        try:
            detail = tickets.ticket_detail(ctx, me, request.path_params["number"])
        except ApiError as exc:
            return render("error.html", exc.status, **common(request, me, "Not found"), error=exc)
        return render(
            "ticket.html",
            **common(request, me, detail["number"]),
            t=detail,
            now=ctx.clock().timestamp(),
        )

    return [
        Route("/", index),
        Route("/board/login", login, methods=["GET", "POST"]),
        Route("/board/logout", logout),
        Route("/board", board),
        Route("/board/rows", rows),
        Route("/board/fleet", fleet),
        Route("/board/devices/{device}", device),
        Route("/board/tickets/{number}", ticket),
        Mount("/board/static", StaticFiles(directory=HERE / "static"), name="board-static"),
    ]
