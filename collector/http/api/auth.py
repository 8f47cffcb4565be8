"""Bearer tokens: ``Authorization: Bearer <token>``; its SHA-256 is looked up in ``api_tokens``.

The board's pages keep the token in an HttpOnly cookie instead; a cookie is accepted for
reading, and for a change only together with the ``X-Fleetdesk-Board`` header, which another
site's page cannot send without the browser asking first (so no cross-site request forgery).
A tenant-scoped token answers 404 for another tenant's devices and tickets, as if they did not
exist, so their ids do not leak.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fastapi import Request

from collector.store.api_store import ROLES, TokenInfo, lookup_token

COOKIE = "fleetdesk_token"
BOARD_HEADER = "x-fleetdesk-board"
_CACHE_S = 5.0  # a revoked token stops working within this


class ApiError(Exception):
    def __init__(self, status: int, error: str, detail: str) -> None:
        super().__init__(detail)
        self.status, self.error, self.detail = status, error, detail


def not_found(what: str, ident: str) -> ApiError:
    return ApiError(404, f"unknown_{what}", f"no {what} {ident!r} (or not visible to this token)")


@dataclass(frozen=True, slots=True)
class Principal:
    name: str
    role: str
    tenant: str | None

    def allows(self, role: str) -> bool:
        return ROLES.index(self.role) >= ROLES.index(role)

    def sees(self, tenant: str | None) -> bool:
        return self.tenant is None or self.tenant == tenant


_cache: dict[str, tuple[float, TokenInfo | None]] = {}


def _token(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if header is not None:
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise ApiError(401, "bad_authorization", "use the header 'Authorization: Bearer TOKEN'")
        return value.strip()
    cookie = request.cookies.get(COOKIE)
    if cookie and (request.method in ("GET", "HEAD") or BOARD_HEADER in request.headers):
        return cookie
    return None


def authenticate(request: Request, db: Any = None) -> Principal:
    """``db``: the database of tokens (default: the API app's context)."""
    token = _token(request)
    if token is None:
        raise ApiError(
            401,
            "token_required",
            "send 'Authorization: Bearer TOKEN' "
            "(create one with: fleetdesk token create --role viewer --db URL)",
        )
    now = time.monotonic()
    cached = _cache.get(token)
    if cached is not None and now - cached[0] < _CACHE_S:
        info = cached[1]
    else:
        info = lookup_token(db if db is not None else request.app.state.ctx.db, token)
        if len(_cache) > 10_000:
            _cache.clear()
        _cache[token] = (now, info)
    if info is None:
        raise ApiError(401, "token_unknown", "this token is unknown or revoked: create a new one")
    return Principal(info.name, info.role, info.tenant)


def require(role: str) -> Callable[[Request], Principal]:
    def check(request: Request) -> Principal:
        who = authenticate(request)
        if not who.allows(role):
            raise ApiError(
                403, "role_required", f"this needs the {role} role; the token is {who.role}"
            )
        return who

    return check


viewer = require("viewer")
operator = require("operator")
admin = require("admin")
