"""The demo's end: what the collector did, from its own store and from the desk's side.

Also the two probes of the collector's HTTP app: ``check_http`` (what answered) and
``board_urls`` (the NOC board and REST API, when this build has them).
"""

from __future__ import annotations

import importlib.util
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


def board_urls(base: str, workdir: Path) -> list[str]:
    """The board and API lines to print, when the collector has them.

    The NOC board and REST API (``collector.http.api``, ``collector.http.board``, tokens from
    ``fleetdesk token create``) are not in this build. When they are, the collector service
    serves them itself (``service.app.run`` adds their routes), and this is the one place
    the demo has to learn about them: create a viewer and an operator token here (the token
    command's own functions, against the demo's ``state.db`` in ``workdir``) and return the
    lines with the URLs to open. ``check_http`` then asks those pages too.
    """
    if importlib.util.find_spec("collector.http.api") is None:
        return ["board      not in this build (the NOC board and REST API come with the API)"]
    return [  # to finish with the API: the tokens
        f"board      {base}/board/",
        f"api        {base}/api/v1/   (tokens: fleetdesk token create, state {workdir})",
    ]


def _get(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            resp.read()
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except OSError:
        return 0


def check_http(base: str) -> dict[str, int]:
    """Status of each page of the collector's HTTP app (0: no answer)."""
    paths = ["/healthz", "/metrics"]
    if importlib.util.find_spec("collector.http.api") is not None:
        paths += ["/api/v1/tickets", "/board/"]
    return {path: _get(base + path) for path in paths}


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
        "agent_errors": {s.dev.id: s.errors for s in demo.sims.values() if s.errors},
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
