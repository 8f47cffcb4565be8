"""The REST API over the collector's real app and a real SQLite store: every endpoint, every
role, tenant scope, and the errors a person can act on."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from collector.store import api_store
from tests.support.api import Api

V1 = "/api/v1"


def one_ticket(api: Api, client: TestClient, device: str = "gw-1", **metrics: Any) -> str:
    tenant = "acme" if device.startswith("gw") else "globex"
    api.report(device, 1, tenant=tenant, **(metrics or {"disk_used_pct": 97.0}))
    items = client.get(f"{V1}/tickets?device={device}", headers=api.auth("admin")).json()["items"]
    assert len(items) == 1, items
    number: str = items[0]["number"]
    return number


# -- auth ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("headers", "error"),
    [
        ({}, "token_required"),
        ({"Authorization": "Basic abc"}, "bad_authorization"),
        ({"Authorization": "Bearer fdt_not-a-token"}, "token_unknown"),
    ],
)
def test_no_or_bad_token_is_401_with_what_to_do(
    client: TestClient, headers: dict[str, str], error: str
) -> None:
    reply = client.get(f"{V1}/tickets", headers=headers)
    assert reply.status_code == 401
    assert reply.headers["www-authenticate"] == "Bearer"
    assert reply.json()["error"] == error and reply.json()["detail"]


def test_tokens_are_stored_hashed_only(api: Api) -> None:
    with api.store.engine.connect() as conn:
        rows = conn.exec_driver_sql("SELECT sha256, role FROM api_tokens").all()
    assert len(rows) == 5
    stored = {r[0] for r in rows}
    assert not stored & set(api.tokens.values())
    assert api_store.token_hash(api.tokens["viewer"]) in stored


def test_whoami(api: Api, client: TestClient) -> None:
    reply = client.get(f"{V1}/whoami", headers=api.auth("acme-operator"))
    assert reply.json() == {"name": "acme-operator", "role": "operator", "tenant": "acme"}


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("post", "/tickets/{n}/actions", {"action": "acknowledge"}),
        ("post", "/tickets", {"device": "gw-2", "kind": "phone_report"}),
        (
            "post",
            "/maintenance",
            {"device": "gw-2", "start": "2026-01-01T00:00Z", "end": "2026-01-02T00:00Z"},
        ),
        ("delete", "/maintenance/m1", None),
        ("post", "/tokens", {"role": "viewer"}),
    ],
)
def test_viewer_is_refused_every_change_with_403(
    api: Api, client: TestClient, method: str, path: str, body: Any
) -> None:
    number = one_ticket(api, client)
    url = V1 + path.format(n=number)
    kwargs: dict[str, Any] = {"headers": api.auth("viewer")}
    if body is not None:
        kwargs["json"] = body
    reply = getattr(client, method)(url, **kwargs)
    assert reply.status_code == 403, reply.text
    assert reply.json()["error"] == "role_required"
    assert "operator" in reply.json()["detail"] or "admin" in reply.json()["detail"]


def test_operator_cannot_create_tokens_admin_can(api: Api, client: TestClient) -> None:
    refused = client.post(f"{V1}/tokens", json={"role": "viewer"}, headers=api.auth("operator"))
    assert refused.status_code == 403
    made = client.post(
        f"{V1}/tokens", json={"role": "viewer", "tenant": "acme"}, headers=api.auth("admin")
    )
    assert made.status_code == 201
    token = made.json()["token"]
    me = client.get(f"{V1}/whoami", headers={"Authorization": f"Bearer {token}"})
    assert me.json()["tenant"] == "acme" and me.json()["role"] == "viewer"


# -- tenant scope ----------------------------------------------------------------------------
def test_tenant_token_gets_404_for_other_tenants_devices_and_tickets(
    api: Api, client: TestClient
) -> None:
    theirs = one_ticket(api, client, "nj-1", disk_used_pct=97.0)
    mine = one_ticket(api, client, "gw-1")
    scoped = api.auth("acme-operator")
    assert client.get(f"{V1}/devices/nj-1", headers=scoped).status_code == 404
    assert client.get(f"{V1}/devices/gw-1", headers=scoped).status_code == 200
    hidden = client.get(f"{V1}/tickets/{theirs}", headers=scoped)
    assert hidden.status_code == 404 and hidden.json()["error"] == "unknown_ticket"
    # the same answer as for a number that does not exist: nothing leaks
    missing = client.get(f"{V1}/tickets/FD-20000101-9999", headers=scoped)
    assert missing.json()["detail"].replace("FD-20000101-9999", theirs) == hidden.json()["detail"]
    act = client.post(
        f"{V1}/tickets/{theirs}/actions", json={"action": "acknowledge"}, headers=scoped
    )
    assert act.status_code == 404
    listed = client.get(f"{V1}/tickets", headers=scoped).json()
    assert [t["number"] for t in listed["items"]] == [mine]
    devices = client.get(f"{V1}/devices", headers=scoped).json()["items"]
    assert {d["id"] for d in devices} == {"gw-1", "gw-2"}
    faults = client.get(f"{V1}/faults", headers=scoped).json()
    assert {f["device"] for f in faults} == {"gw-1"}
    manual = client.post(
        f"{V1}/tickets", json={"device": "nj-2", "kind": "phone_report"}, headers=scoped
    )
    assert manual.status_code == 404


# -- devices and faults ----------------------------------------------------------------------
def test_devices_filters_and_states(api: Api, client: TestClient) -> None:
    one_ticket(api, client, "gw-1")
    api.report("nj-1", 1, tenant="globex", cpu_pct=3.0)
    auth = api.auth("viewer")

    def ids(query: str) -> set[str]:
        reply = client.get(f"{V1}/devices?{query}", headers=auth)
        assert reply.status_code == 200, reply.text
        return {d["id"] for d in reply.json()["items"]}

    assert ids("") == {"gw-1", "gw-2", "nj-1", "nj-2"}
    assert ids("tenant=globex") == {"nj-1", "nj-2"}
    assert ids("customer=acme-water") == {"gw-1", "gw-2"}
    assert ids("site=south&class=dtu&model=DTU-9") == {"nj-1", "nj-2"}
    assert ids("state=faulty") == {"gw-1"}
    assert ids("state=ok") == {"nj-1"}
    assert ids("state=never_seen") == {"gw-2", "nj-2"}
    api.report("stranger", 1, tenant="acme", cpu_pct=1.0)
    assert ids("state=unknown_reporting") == {"stranger"}
    bad = client.get(f"{V1}/devices?state=sleepy", headers=auth)
    assert bad.status_code == 422 and bad.json()["fields"][0]["where"] == "query.state"


def test_device_detail_has_samples_faults_tickets_warranty(api: Api, client: TestClient) -> None:
    number = one_ticket(api, client, "gw-1")
    api.report("gw-1", 2, disk_used_pct=98.0, cpu_pct=12.5)
    d = client.get(f"{V1}/devices/gw-1", headers=api.auth("viewer")).json()
    assert [s["metrics"]["disk_used_pct"] for s in d["samples"]] == [97.0, 98.0]
    assert [f["kind"] for f in d["faults"]] == ["disk_full"]
    assert d["faults"][0]["ticket"] == number
    assert [t["number"] for t in d["tickets"]] == [number]
    assert d["warranty"] == {
        "start": "2026-01-01",
        "months": 36,
        "policy": "xian-integrator",
        "coverage_now": "warranty",
    }
    missing = client.get(f"{V1}/devices/nope", headers=api.auth("viewer"))
    assert missing.status_code == 404 and missing.json()["error"] == "unknown_device"


def test_faults_list_and_filters(api: Api, client: TestClient) -> None:
    number = one_ticket(api, client, "gw-1")
    auth = api.auth("viewer")
    faults = client.get(f"{V1}/faults", headers=auth).json()
    assert [(f["kind"], f["ticket"]) for f in faults] == [("disk_full", number)]
    assert client.get(f"{V1}/faults?kind=device_offline", headers=auth).json() == []
    assert client.get(f"{V1}/faults?exempt=true", headers=auth).json() == []
    assert len(client.get(f"{V1}/faults?policy=xian-integrator&level=3", headers=auth).json()) == 1


# -- tickets ---------------------------------------------------------------------------------
def test_ticket_list_filters_and_sla_fields(api: Api, client: TestClient) -> None:
    acme = one_ticket(api, client, "gw-1")
    globex = one_ticket(api, client, "nj-1", disk_used_pct=97.0)
    auth = api.auth("viewer")

    def numbers(query: str) -> list[str]:
        reply = client.get(f"{V1}/tickets?{query}", headers=auth)
        assert reply.status_code == 200, reply.text
        return [t["number"] for t in reply.json()["items"]]

    assert set(numbers("")) == {acme, globex}
    assert numbers("customer=nanjing") == [globex]
    assert numbers("policy=xian-integrator") == [acme]
    assert numbers("level=3") == [acme]  # xian-integrator: a degraded disk is level 3
    assert numbers("sla_status=ok") == numbers("")
    assert numbers("sla_status=breached") == []
    assert numbers("exempt=true") == []
    assert numbers("state=open") == numbers("")
    assert numbers("state=closed") == []
    listed = client.get(f"{V1}/tickets", headers=auth).json()
    lefts = [t["time_left_s"] for t in listed["items"]]
    assert lefts == sorted(lefts)  # the board's order: least time left first
    first = listed["items"][0]
    assert first["targets"][0]["due"] and first["targets"][0]["left_s"] > 0
    page = client.get(f"{V1}/tickets?limit=1&offset=1", headers=auth).json()
    assert (page["total"], len(page["items"])) == (2, 1)
    assert client.get(f"{V1}/tickets?limit=0", headers=auth).status_code == 422
    assert client.get(f"{V1}/tickets?state=sleeping", headers=auth).status_code == 422


def test_acknowledge_stops_the_response_clock_in_one_transaction(
    api: Api, client: TestClient
) -> None:
    number = one_ticket(api, client)
    reply = client.post(
        f"{V1}/tickets/{number}/actions",
        headers=api.auth("operator"),
        json={"action": "acknowledge", "reason": "engineer called"},
    )
    assert reply.status_code == 200, reply.text
    ticket = reply.json()["ticket"]
    assert ticket["state"] == "acknowledged"
    response = ticket["targets"][0]
    assert (response["name"], response["running"], response["outcome"]) == (
        "response",
        False,
        "met",
    )
    detail = client.get(f"{V1}/tickets/{number}", headers=api.auth("viewer")).json()
    assert [e["type"] for e in detail["timeline"]] == ["ticket_opened", "acknowledged"]
    assert detail["timeline"][1]["detail"]["actor"] == "api:operator"
    assert detail["timeline"][1]["deliveries"][0]["sink"] == "desk"
    assert detail["timeline"][1]["deliveries"][0]["state"] == "pending"
    assert [(a["action"], a["actor"], a["reason"], a["result"]) for a in detail["actions"]] == [
        ("acknowledge", "api:operator", "engineer called", "applied")
    ]
    again = client.post(
        f"{V1}/tickets/{number}/actions",
        headers=api.auth("operator"),
        json={"action": "acknowledge"},
    )
    assert again.json()["result"] == "already_done"


def test_every_desk_action_through_the_api(api: Api, client: TestClient) -> None:
    number = one_ticket(api, client)
    auth = api.auth("operator")

    def do(action: str, **more: Any) -> Any:
        reply = client.post(
            f"{V1}/tickets/{number}/actions",
            headers=auth,
            json={"action": action, "reason": f"why {action}", **more},
        )
        return reply

    assert do("comment").json()["result"] == "applied"
    assert do("pause").json()["ticket"]["paused"] is True
    assert do("resume").json()["ticket"]["paused"] is False
    assert do("on_site").json()["ticket"]["state"] == "onsite"
    # xian-integrator names no target that starts on the unit's receipt
    no_repair = do("received_for_repair")
    assert no_repair.status_code == 409 and "receipt" in no_repair.json()["detail"]
    assert do("resolve", repaired=True).json()["ticket"]["state"] == "resolved"
    refused = do("pause")
    assert refused.status_code == 409 and refused.json()["error"] == "not_allowed"
    audit = client.get(f"{V1}/tickets/{number}", headers=auth).json()["actions"]
    assert [a["action"] for a in audit] == [
        "comment",
        "pause",
        "resume",
        "on_site",
        "received_for_repair",
        "resolve",
        "pause",
    ]
    invalid = do("dance")
    assert invalid.status_code == 422 and invalid.json()["error"] == "invalid_request"


def test_contract_actions_level_receipt_exemption_coverage(api: Api, client: TestClient) -> None:
    number = one_ticket(api, client, "nj-1", disk_used_pct=97.0)
    auth = api.auth("operator")
    url = f"{V1}/tickets/{number}/actions"

    def do(**body: Any) -> Any:
        return client.post(url, headers=auth, json=body)

    no_level = do(action="change_level", reason="x")
    assert no_level.status_code == 422 and no_level.json()["error"] == "level_required"
    no_reason = do(action="change_level", level="general")
    assert no_reason.status_code == 422 and no_reason.json()["error"] == "reason_required"
    unknown = do(action="change_level", level="x", reason="x")
    assert unknown.status_code == 422 and "special" in unknown.json()["detail"]
    general = do(action="change_level", level="general", reason="phone support not enough")
    assert general.status_code == 200, general.text
    assert general.json()["ticket"]["level"] == "general"
    received = do(action="received_for_repair", reason="courier delivered it")
    assert received.status_code == 200, received.text
    repair = [t for t in received.json()["ticket"]["targets"] if t["name"] == "repair"]
    assert repair and repair[0]["running"] and repair[0]["due"]
    special = do(action="change_level", level="special", reason="customer's line is down")
    assert special.json()["ticket"]["level"] == "special"
    # special: the technical manager is called at once (an escalation step at 0), on the
    # ticket clock's next tick (the collector's clock task; here by hand)
    assert api.service.tickets is not None
    api.service.tickets.runtime.service.tick(datetime.now(UTC))
    shown = client.get(f"{V1}/tickets/{number}", headers=auth).json()
    assert shown["sla_status"] == "escalated" and shown["escalations"]
    exempt = do(action="mark_exempt", exempt="misuse", reason="water in the unit")
    assert exempt.status_code == 200, exempt.text
    ticket = exempt.json()["ticket"]
    assert (ticket["exempt"], ticket["coverage"]) == ("misuse", "exempt")
    assert all(not t["running"] for t in ticket["targets"])
    back = do(action="change_coverage", coverage="warranty", reason="not misuse after all")
    assert back.json()["ticket"]["coverage"] == "warranty"
    assert back.json()["ticket"]["exempt"] is None
    bad = do(action="mark_exempt", exempt="bad_luck", reason="x")
    assert bad.status_code == 409 and "unknown exemption" in bad.json()["detail"]
    audit = client.get(f"{V1}/tickets/{number}", headers=auth).json()["actions"]
    assert [(a["action"], a["result"]) for a in audit][-3:] == [
        ("mark_exempt", "applied"),
        ("change_coverage", "applied"),
        ("mark_exempt", "not_allowed"),
    ]


def test_open_a_manual_ticket(api: Api, client: TestClient) -> None:
    auth = api.auth("operator")
    body = {
        "device": "nj-2",
        "kind": "serial_link_down",
        "impact": "outage",
        "level": "special",
        "reason": "customer phoned: display dead",
    }
    made = client.post(f"{V1}/tickets", headers=auth, json=body)
    assert made.status_code == 201, made.text
    ticket = made.json()["ticket"]
    assert (ticket["device"], ticket["kind"], ticket["level"]) == (
        "nj-2",
        "serial_link_down",
        "special",
    )
    twice = client.post(f"{V1}/tickets", headers=auth, json=body)
    assert twice.status_code == 409 and ticket["number"] in twice.json()["detail"]
    unknown = client.post(f"{V1}/tickets", headers=auth, json={**body, "device": "ghost"})
    assert unknown.status_code == 404
    audit = api_store.actions(api.store.engine, action="open_ticket")
    assert [(a["ticket"], a["reason"]) for a in audit] == [
        (ticket["number"], "customer phoned: display dead")
    ]


# -- maintenance -----------------------------------------------------------------------------
def test_maintenance_applies_live_and_cancel_raises_held_faults(
    api: Api, client: TestClient
) -> None:
    auth = api.auth("operator")
    window = client.post(
        f"{V1}/maintenance",
        headers=auth,
        json={
            "device": "gw-2",
            "start": "2026-01-01T00:00:00Z",
            "end": "2099-01-01T00:00:00Z",
            "reason": "firmware upgrade",
        },
    )
    assert window.status_code == 201, window.text
    window_id = window.json()["id"]
    assert window.json()["active"] is True
    api.report("gw-2", 1, disk_used_pct=97.0)
    assert client.get(f"{V1}/tickets?device=gw-2", headers=auth).json()["total"] == 0
    state = client.get(f"{V1}/devices/gw-2", headers=auth).json()["state"]
    assert state == "in_maintenance"
    listed = client.get(f"{V1}/maintenance", headers=api.auth("viewer")).json()
    assert [w["id"] for w in listed] == [window_id]
    cancelled = client.delete(f"{V1}/maintenance/{window_id}?reason=done early", headers=auth)
    assert cancelled.status_code == 200 and cancelled.json()["active"] is False
    api.settle()
    assert client.get(f"{V1}/tickets?device=gw-2", headers=auth).json()["total"] == 1
    audit = api_store.actions(api.store.engine)
    assert [(a["action"], a["target"]) for a in audit] == [
        ("maintenance", window_id),
        ("cancel_maintenance", window_id),
    ]
    assert client.delete(f"{V1}/maintenance/m99", headers=auth).status_code == 404


@pytest.mark.parametrize(
    ("body", "status", "error"),
    [
        ({"start": "2026-01-01T00:00Z", "end": "2026-01-02T00:00Z"}, 422, "device_or_site"),
        ({"device": "gw-1", "start": "yesterday", "end": "2026-01-02T00:00Z"}, 422, "bad_instant"),
        (
            {"device": "gw-1", "start": "2026-01-01T00:00", "end": "2026-01-02T00:00Z"},
            422,
            "bad_instant",
        ),
        (
            {"device": "gw-1", "start": "2026-01-02T00:00Z", "end": "2026-01-01T00:00Z"},
            422,
            "bad_window",
        ),
        (
            {"device": "ghost", "start": "2026-01-01T00:00Z", "end": "2026-01-02T00:00Z"},
            404,
            "unknown_device",
        ),
        (
            {"site": "south", "start": "2026-01-01T00:00Z", "end": "2026-01-02T00:00Z"},
            404,
            "unknown_site",
        ),  # another tenant's site, for an acme token
    ],
)
def test_maintenance_errors_name_the_problem(
    api: Api, client: TestClient, body: dict[str, str], status: int, error: str
) -> None:
    reply = client.post(f"{V1}/maintenance", headers=api.auth("acme-operator"), json=body)
    assert (reply.status_code, reply.json()["error"]) == (status, error), reply.text


# -- SLA what-if, health ---------------------------------------------------------------------
def test_sla_questions_match_the_cli(api: Api, client: TestClient) -> None:
    auth = api.auth("viewer")
    due = client.get(
        f"{V1}/sla/due",
        headers=auth,
        params={"calendar": "cn-workdays", "start": "2025-09-30T17:00:00+08:00", "duration": "2h"},
    )
    assert due.status_code == 200, due.text
    assert due.json()["due"] == "2025-10-09T10:00:00+08:00"  # over the National Day holidays
    deadlines = client.get(
        f"{V1}/sla/deadlines",
        headers=auth,
        params={
            "policy": "nanjing-instruments",
            "level": "special",
            "start": "2026-05-06T09:00:00+08:00",
        },
    ).json()
    assert deadlines["deadlines"]["response"] == "2026-05-06T09:30:00+08:00"
    classified = client.get(
        f"{V1}/sla/classify",
        headers=auth,
        params={"policy": "xian-integrator", "kind": "disk_full", "impact": "degraded"},
    ).json()
    assert classified["level"] == "3" and classified["rule"].startswith("line ")
    bad = client.get(
        f"{V1}/sla/due",
        headers=auth,
        params={
            "calendar": "cn-workdays",
            "start": "2025-09-30T17:00:00+08:00",
            "duration": "soon",
        },
    )
    assert bad.status_code == 422 and bad.json()["error"] == "bad_question"
    unknown = client.get(
        f"{V1}/sla/deadlines",
        headers=auth,
        params={"policy": "nobody", "level": "1", "start": "2026-05-06T09:00:00+08:00"},
    )
    assert unknown.status_code == 404
    level = client.get(
        f"{V1}/sla/deadlines",
        headers=auth,
        params={"policy": "xian-integrator", "level": "9", "start": "2026-05-06T09:00:00+08:00"},
    )
    assert level.status_code == 422 and "levels:" in level.json()["detail"]


def test_health_reports_intake_rejects_outbox_and_estimated_calendars(
    api: Api, client: TestClient
) -> None:
    one_ticket(api, client)
    api.service.pipeline.feed([("fleet/v1/acme/gw-1/telemetry", b"not json", 0.0)])
    report = client.get(f"{V1}/health", headers=api.auth("viewer")).json()
    assert report["intake"]["accepted"] == 1.0 and report["intake"]["rejected"] == 1.0
    assert sum(report["rejects"].values()) == 1.0
    assert report["outbox"]["pending"] == 1 and report["dead_letters"] == 0
    assert isinstance(report["estimated_calendars"], list)


def test_openapi_document_is_served(client: TestClient) -> None:
    doc = client.get(f"{V1}/openapi.json").json()
    assert doc["openapi"].startswith("3.")
    for path in (
        "/tickets",
        "/tickets/{number}",
        "/tickets/{number}/actions",
        "/devices",
        "/devices/{device}",
        "/faults",
        "/maintenance",
        "/maintenance/{window_id}",
        "/sla/due",
        "/sla/deadlines",
        "/sla/classify",
        "/health",
        "/events",
        "/whoami",
        "/tokens",
    ):
        assert path in doc["paths"], path
    assert doc["paths"]["/tickets"]["get"]["responses"]["401"]


def test_tickets_cli_shows_sla_due_and_time_left(
    api: Api, client: TestClient, capsys: pytest.CaptureFixture[str]
) -> None:
    from collector.cli import main

    number = one_ticket(api, client)
    db = api.cfg.store.url
    assert main(["tickets", "list", "--db", db, "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows[0]["number"] == number
    assert rows[0]["sla"][0]["target"] == "response" and rows[0]["sla"][0]["left_s"] > 0
    assert main(["tickets", "list", "--db", db]) == 0
    assert " response due " in capsys.readouterr().out
    assert main(["tickets", "show", "--db", db, number]) == 0
    assert json.loads(capsys.readouterr().out)["sla"][0]["due"]


def test_token_cli_prints_a_token_once(api: Api, capsys: pytest.CaptureFixture[str]) -> None:
    from collector.cli import main

    assert (
        main(
            ["token", "create", "--role", "operator", "--tenant", "acme", "--db", api.cfg.store.url]
        )
        == 0
    )
    out, err = capsys.readouterr()
    token = out.strip()
    assert token.startswith("fdt_") and token not in err
    info = api_store.lookup_token(api.store.engine, token)
    assert info is not None and (info.role, info.tenant) == ("operator", "acme")
    with pytest.raises(SystemExit) as refused:  # argparse names the allowed roles
        main(["token", "create", "--role", "root", "--db", api.cfg.store.url])
    assert refused.value.code == 2
    assert "choose from 'viewer', 'operator', 'admin'" in capsys.readouterr().err


def test_tokens_actions_and_audit_on_postgresql(tmp_path: Path, pg_url: str) -> None:
    """Migration 5 and the one-transaction action path on PostgreSQL too."""
    api = Api(tmp_path, sink_url="http://127.0.0.1:9/hook", store_url=pg_url)
    try:
        with TestClient(api.app) as client:
            number = one_ticket(api, client)
            reply = client.post(f"{V1}/tickets/{number}/actions", headers=api.auth("operator"),
                                json={"action": "acknowledge", "reason": "pg"})  # fmt: skip
            assert reply.status_code == 200, reply.text
            detail = client.get(f"{V1}/tickets/{number}", headers=api.auth("viewer")).json()
            assert [a["reason"] for a in detail["actions"]] == ["pg"]
            assert [e["type"] for e in detail["timeline"]] == ["ticket_opened", "acknowledged"]
    finally:
        api.close()


def test_a_path_no_route_takes_still_answers_json_under_api(client: TestClient) -> None:
    reply = client.get(f"{V1}/devices/a%0Ab")  # a newline: not even the API's mount takes it
    assert reply.status_code == 404 and reply.json()["error"] == "not_found"
    assert client.get("/nothing-here").text == "Not Found"


def test_a_manual_ticket_names_a_known_fault_kind(api: Api, client: TestClient) -> None:
    body = {"device": "gw-2", "kind": "gremlins", "reason": "phoned"}
    reply = client.post(f"{V1}/tickets", headers=api.auth("operator"), json=body)
    assert reply.status_code == 422 and "device_offline" in reply.json()["detail"]
