"""The demo's end: what the collector did, from its own store and from the desk's side.

Also the two probes of the collector's HTTP app: ``check_http`` (what answered) and
``board_urls`` (the NOC board and REST API, with a viewer and an operator token).
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from collector.demo.desk import Desk
from collector.demo.fleet import Fleet
from collector.demo.script import Cast
from collector.store.tickets import TicketStore
from collector.tickets.model import Coverage


def board_tokens(workdir: Path) -> dict[str, str]:
    """A viewer and an operator token for the board and the API, made in the demo's store
    (the same functions as ``fleetdesk token create``; stored hashed, shown once here)."""
    from collector.store.api_store import create_token

    engine = sa.create_engine(f"sqlite:///{workdir / 'state.db'}")
    try:
        return {role: create_token(engine, role, name=f"demo-{role}")[0] for role in ROLES}
    finally:
        engine.dispose()


ROLES = ("viewer", "operator")


def board_urls(base: str, tokens: dict[str, str]) -> list[str]:
    """The board and API lines to print, with the tokens to sign in with."""
    return [
        f"board      {base}/board   (sign in with a token below)",
        f"api        {base}/api/v1/   (OpenAPI: {base}/api/v1/openapi.json)",
        *(f"token      {role:<9} {token}" for role, token in tokens.items()),
    ]


def _get(url: str, token: str | None = None) -> int:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    try:
        with urllib.request.urlopen(
            urllib.request.Request(url, headers=headers), timeout=5
        ) as resp:
            resp.read()
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except OSError:
        return 0


def check_http(base: str, token: str | None = None) -> dict[str, int]:
    """Status of each page of the collector's HTTP app (0: no answer); the API and the board
    are asked with ``token`` (a viewer's)."""
    status = {path: _get(base + path) for path in ("/healthz", "/metrics")}
    if token is not None:
        for path in ("/api/v1/tickets", "/api/v1/devices"):
            status[path] = _get(base + path, token)
    return status


def _site_devices(url: str) -> dict[str, list[str]]:
    """The devices each site-outage fault listed (from the collector's fault log)."""
    engine = sa.create_engine(url)
    out: dict[str, list[str]] = {}
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                sa.text("SELECT body FROM fault_events WHERE kind = 'site_outage'")
            ).fetchall()
    finally:
        engine.dispose()
    for (body,) in rows:
        data = json.loads(body)
        if data.get("event") == "opened" and data.get("site"):
            out[data["site"]] = list(data.get("devices", []))
    return out


def summarize(
    *,
    url: str,
    fleet: Fleet,
    roles: Cast,
    desk: Desk,
    http: dict[str, int],
    demo: Any,
    interrupted: bool,
) -> dict[str, Any]:
    store = TicketStore(url)
    try:
        tickets = store.tickets(live_only=False, limit=100_000)
        outbox = store.outbox_counts()
    finally:
        store.close()
    levels: dict[str, Counter[str]] = {}
    targets: Counter[str] = Counter()
    for t in tickets:
        levels.setdefault(t.policy, Counter())[t.level or "-"] += 1
        for clock in t.targets:
            targets[clock.outcome.value if clock.outcome else "running"] += 1
    sites = _site_devices(url)
    site_tickets = [
        {
            "number": t.number,
            "site": t.site,
            "state": t.state.value,
            "devices": sites.get(t.site or "", []),
        }
        for t in tickets
        if t.kind == "site_outage"
    ]
    exempt = [
        {"number": t.number, "device": t.device, "kind": t.kind, "exempt": t.exempt}
        for t in tickets
        if t.coverage is Coverage.EXEMPT or t.exempt
    ]
    snap = desk.snapshot()
    return {
        "interrupted": interrupted,
        "fleet": {
            "devices": len(fleet.devices),
            "agents": len(fleet.agents),
            "snmp": len(fleet.devices) - len(fleet.agents),
            "sites": len(fleet.sites),
            "customers": sorted({d.customer.name for d in fleet.devices}),
        },
        "services": dict(demo.notes),
        "tickets": {
            "total": len(tickets),
            "by_policy_level": {p: dict(sorted(c.items())) for p, c in sorted(levels.items())},
            "by_state": dict(Counter(t.state.value for t in tickets)),
            "by_kind": dict(Counter(t.kind for t in tickets)),
            "exempt": exempt,
            "site_outage": site_tickets,
            "closed_after_followup": sum(1 for t in tickets if t.state.value == "closed"),
        },
        "sla": {
            "targets": dict(targets),
            "met": targets.get("met", 0),
            "breached": targets.get("missed", 0) + snap["by_type"].get("breached", 0),
            "note": "targets run in real policy time (not accelerated); "
            "the desk's acknowledgement meets the response target",
        },
        "webhooks": {
            "outbox": outbox,
            "delivered": outbox.get("delivered", 0),
            "received": snap["received"],
            "verified": snap["verified"],
            "refused": snap["refused"],
            "by_type": snap["by_type"],
            "acks_sent": snap["acks_sent"],
            "acks_accepted": snap["acks_ok"],
        },
        "http": http,
        "cast": {k: getattr(roles, k) for k in roles.__dataclass_fields__},
        "agent_errors": dict(demo.pool.errors) if demo.pool is not None else {},
    }


def table(summary: dict[str, Any]) -> str:
    """The summary as the plain-text table the demo prints at the end."""
    lines = ["", "tickets by policy and level"]
    for policy, counts in summary["tickets"]["by_policy_level"].items():
        shown = ", ".join(f"{level}: {n}" for level, n in counts.items())
        lines.append(f"  {policy:<22} {shown}")
    t = summary["tickets"]
    lines.append(
        f"  {'total':<22} {t['total']}  ({', '.join(f'{k} {v}' for k, v in t['by_state'].items())})"
    )
    for site in t["site_outage"]:
        lines.append(f"  site outage {site['number']} {site['site']}: {', '.join(site['devices'])}")
    for ex in t["exempt"]:
        lines.append(f"  exempt      {ex['number']} {ex['device']} {ex['kind']} ({ex['exempt']})")
    s, w = summary["sla"], summary["webhooks"]
    lines += [
        "SLA targets",
        f"  met {s['met']}, breached {s['breached']}, "
        + ", ".join(f"{k} {v}" for k, v in s["targets"].items() if k not in {"met", "missed"}),
        "webhooks",
        f"  delivered {w['delivered']} (outbox {w['outbox']}), received {w['received']}, "
        f"verified {w['verified']}, refused {w['refused']}; "
        f"desk acknowledgements {w['acks_accepted']}/{w['acks_sent']} accepted",
        "http  " + ", ".join(f"{p} {code}" for p, code in summary["http"].items()),
    ]
    return "\n".join(lines)
