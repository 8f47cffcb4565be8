"""The board's pages over the real app and SQLite (no browser): sign-in, scope, pagination,
filters, buttons by role, and the cookie that cannot act without the board's header."""

from __future__ import annotations

import time
from pathlib import Path

from starlette.testclient import TestClient

from tests.support.api import HEADER, Api
from tests.support.collector import telemetry


def signed_in(api: Api, who: str) -> TestClient:
    client = TestClient(api.app)
    reply = client.post("/board/login", data={"token": api.tokens[who]}, follow_redirects=False)
    assert reply.status_code == 303 and reply.headers["location"] == "/board"
    assert "httponly" in reply.headers["set-cookie"].lower()
    return client


def test_sign_in_is_required_and_a_bad_token_is_refused(tmp_path: Path) -> None:
    api = Api(tmp_path)
    client = TestClient(api.app)
    first = client.get("/board", follow_redirects=False)
    assert first.status_code == 303 and first.headers["location"].startswith("/board/login")
    bad = client.post("/board/login", data={"token": "fdt_wrong"})
    assert bad.status_code == 401 and "unknown or revoked token" in bad.text
    api.close()


def test_board_pages_by_role_and_tenant(tmp_path: Path) -> None:
    api = Api(tmp_path)
    api.report("gw-1", 1, disk_used_pct=97.0)
    api.report("nj-1", 1, tenant="globex", disk_used_pct=97.0)
    numbers = {t.device: t.number for t in api.service.api.tickets.book.live()}
    operator = signed_in(api, "operator")
    board = operator.get("/board").text
    assert numbers["gw-1"] in board and numbers["nj-1"] in board
    assert 'class="countdown"' in board
    ticket = operator.get(f"/board/tickets/{numbers['gw-1']}").text
    assert 'data-action="acknowledge"' in ticket and 'data-action="change_level"' in ticket
    device = operator.get("/board/devices/gw-1").text
    assert "<svg" in device and "disk_used_pct" in device
    fleet = operator.get("/board/fleet").text
    assert "north" in fleet and "south" in fleet

    viewer = signed_in(api, "viewer")
    assert "data-action" not in viewer.get(f"/board/tickets/{numbers['gw-1']}").text

    scoped = signed_in(api, "acme-viewer")
    board = scoped.get("/board").text
    assert numbers["gw-1"] in board and numbers["nj-1"] not in board
    assert scoped.get(f"/board/tickets/{numbers['nj-1']}").status_code == 404
    assert scoped.get("/board/devices/nj-1").status_code == 404
    assert "south" not in scoped.get("/board/fleet").text

    # the cookie alone cannot act (another site's form could send it); with the header it can
    url = f"/api/v1/tickets/{numbers['gw-1']}/actions"
    plain = operator.post(url, json={"action": "acknowledge"})
    assert plain.status_code == 401
    board_call = operator.post(url, json={"action": "acknowledge"},
                               headers={"X-Fleetdesk-Board": "1"})  # fmt: skip
    assert board_call.status_code == 200, board_call.text
    api.close()


def test_board_paginates_and_filters(tmp_path: Path) -> None:
    rows = "".join(
        f"d-{i},acme,WR5120,router,site-{i % 3},,common,acme,xian-integrator,2026-01-01,36,3600\n"
        for i in range(230)
    )
    api = Api(tmp_path, inventory=HEADER + rows)
    now = time.time()
    api.service.pipeline.feed([(f"fleet/v1/acme/d-{i}/telemetry",
                                telemetry(f"d-{i}", 1, disk_used_pct=97.0), now)
                               for i in range(230)])  # fmt: skip
    api.settle()
    client = signed_in(api, "viewer")
    first = client.get("/board").text
    assert first.count("<tr class=") == 100 and "page 1 of 3 (230 tickets)" in first
    last = client.get("/board?page=3").text
    assert last.count("<tr class=") == 30
    assert client.get("/board?page=99").text.count("<tr class=") == 30  # the last page
    assert client.get("/board?page=x").text.count("<tr class=") == 100
    none = client.get("/board?sla_status=breached").text
    assert "No open faults match." in none
    assert client.get("/board?level=3&exempt=no").text.count("<tr class=") == 100
    rows_only = client.get("/board/rows?page=2").text
    assert rows_only.startswith('<table class="faults" data-total="230">')
    api.close()
