"""Native desk webhooks: each desk's own callback, authenticated and mapped to our actions.

Every sink may name an ``inbound_secret_env``; its desk then posts to
``/desk/v1/sinks/<sink name>`` in the desk's own format and may act only on the tickets
routed to that sink. What each desk sends (docs/desks/<desk>.md):

- ``webhook``: our own action body, Standard Webhooks signed (``whsec_`` secrets).
- ``jira``: a Jira Cloud webhook with a secret (``X-Hub-Signature: sha256=<hex HMAC>``);
  ``jira:issue_updated`` with a status change, ``comment_created``.
- ``zammad``: a trigger's webhook with an HMAC token (``X-Hub-Signature: sha1=<hex HMAC>``).
- ``servicenow``: an outbound REST message from a business rule, ``Authorization`` equal to
  one of the configured values (a bearer token or basic credentials).
- ``pagerduty``: a v3 webhook subscription (``X-PagerDuty-Signature: v1=<hex>[,v1=<hex>]``).

A desk state maps to an action by the sink's ``inbound_map`` (desk state name -> ack, onsite,
resolve, pause, resume, cancel), over the defaults below; a Jira or PagerDuty priority
(``priority:<name>``) or an added Jira label (``label:<name>``) may map to ``set_level:<level>``
or ``exempt:<exemption>``. Comments we wrote ourselves come back
from the desks that echo every change (Jira, Zammad, ServiceNow); they are recognised by their
first words (``<event type> at ``) and ignored, so nothing loops.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from collector.tickets.inputs import DeskAction
from collector.tickets.model import EventKind

DEFAULT_MAPS: Mapping[str, Mapping[str, str]] = {
    # Jira: a status's category is the same on every instance; names are overridden per site.
    "jira": {"indeterminate": "ack", "done": "resolve"},
    "zammad": {"open": "ack", "closed": "resolve", "pending close": "resolve"},
    # ServiceNow base system: 2 In Progress, 3 On Hold, 6 Resolved, 7 Closed, 8 Canceled
    "servicenow": {"2": "ack", "6": "resolve", "7": "resolve", "8": "cancel"},
}
_OURS = re.compile(r"^(" + "|".join(k.value for k in EventKind) + r") at \d{4}-")
MAPPABLE = frozenset({"ack", "onsite", "resolve", "pause", "resume", "cancel"})


#: (action, comment or reason, the contract's fields such as ``level`` or ``exemption``)
Act = tuple[DeskAction, str | None, Mapping[str, str]]
NO_FIELDS: Mapping[str, str] = {}


@dataclass(frozen=True, slots=True)
class Native:
    """One desk callback, authenticated: its id and what it asks of which ticket."""

    msg_id: str
    ticket_ref: str | None  # the desk's own id of the ticket (remote_refs)
    number: str | None  # our fault number, when the desk sends it
    actions: tuple[Act, ...]
    actor: str


class Refused(Exception):
    def __init__(self, status: int, error: str, detail: str) -> None:
        super().__init__(detail)
        self.status, self.error, self.detail = status, error, detail


def ours(text: str) -> bool:
    """A comment fleetdesk wrote (``request.describe``), echoed back by the desk."""
    return bool(_OURS.match(text))


def _hmac_hex(secret: str, body: bytes, digest: str) -> str:
    return hmac.new(secret.encode(), body, digest).hexdigest()


def _check_hub(secrets: tuple[str, ...], header: str | None, body: bytes, digest: str) -> None:
    """``X-Hub-Signature: <digest>=<hex>`` (Jira: sha256, Zammad: sha1)."""
    if not header:
        raise Refused(401, "missing_headers", "X-Hub-Signature is required")
    if not header.isascii():
        raise Refused(401, "bad_headers", "X-Hub-Signature is not ASCII")
    method, _, given = header.partition("=")
    if method != digest or not given:
        raise Refused(401, "bad_signature", f"X-Hub-Signature must be {digest}=<hex>")
    if not any(hmac.compare_digest(given, _hmac_hex(s, body, digest)) for s in secrets):
        raise Refused(401, "bad_signature", "X-Hub-Signature does not match the body")


def _digest_id(prefix: str, body: bytes) -> str:
    return f"{prefix}:{hashlib.sha256(body).hexdigest()}"


def _text(value: Any) -> str | None:
    """Plain text of a desk's comment: a string, or Atlassian Document Format."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        parts: list[str] = []

        def walk(node: Any) -> None:
            if isinstance(node, dict):
                if isinstance(node.get("text"), str):
                    parts.append(node["text"])
                for child in (
                    node.get("content", ()) if isinstance(node.get("content"), list) else ()
                ):
                    walk(child)

        walk(value)
        return " ".join(parts) if parts else None
    return None


def _mapped(table: Mapping[str, str], state: str | None) -> DeskAction | None:
    if state is None:
        return None
    action = table.get(state) or table.get(state.lower())
    return DeskAction(action) if action in MAPPABLE else None


def _contract(table: Mapping[str, str], key: str, why: str) -> Act | None:
    """``inbound_map`` ``{"priority:Highest": "set_level:1", "label:x": "exempt:power_cut"}``:
    a desk's priority or label becomes a level change or an exemption, ``why`` its reason."""
    value = table.get(key, "")
    kind, _, arg = value.partition(":")
    if kind == "set_level" and arg:
        return (DeskAction.SET_LEVEL, why, {"level": arg})
    if kind == "exempt" and arg:
        return (DeskAction.EXEMPT, why, {"exemption": arg})
    return None


def _obj(value: Any, key: str) -> dict[str, Any]:
    found = value.get(key) if isinstance(value, dict) else None
    return found if isinstance(found, dict) else {}


def _str(value: Any, key: str) -> str | None:
    found = value.get(key) if isinstance(value, dict) else None
    if isinstance(found, int) and not isinstance(found, bool):
        return str(found)
    return found if isinstance(found, str) and found else None


def _number_from(labels: Any) -> str | None:
    if isinstance(labels, list):
        for label in labels:
            if isinstance(label, str) and label.startswith("FD-"):
                return label
    return None


def jira(table: Mapping[str, str], headers: Mapping[str, str], body: bytes, data: Any) -> Native:
    issue = _obj(data, "issue")
    fields = _obj(issue, "fields")
    actor = _str(_obj(data, "user"), "displayName") or "jira"
    actions: list[Act] = []
    event = _str(data, "webhookEvent")
    if event == "jira:issue_updated":
        items = _obj(data, "changelog").get("items")
        for item in items if isinstance(items, list) else ():
            if not isinstance(item, dict):
                continue
            new = _str(item, "toString") or ""
            if item.get("field") == "status":
                status = _obj(fields, "status")
                category = _str(_obj(status, "statusCategory"), "key")
                action = _mapped(table, new or _str(status, "name")) or _mapped(table, category)
                if action is not None:
                    actions.append((action, None, NO_FIELDS))
            elif item.get("field") == "priority":
                act = _contract(table, f"priority:{new}", f"priority set to {new} in Jira")
                actions += [act] if act else []
            elif item.get("field") == "labels":
                added = set(new.split()) - set((_str(item, "fromString") or "").split())
                for label in sorted(added):
                    act = _contract(table, f"label:{label}", f"label {label} added in Jira")
                    actions += [act] if act else []
    comment = _obj(data, "comment")
    if event == "comment_created" and comment:
        text = _text(comment.get("body"))
        actor = _str(_obj(comment, "author"), "displayName") or actor
        if text and not ours(text):
            actions.append((DeskAction.COMMENT, text, NO_FIELDS))
    msg_id = headers.get("x-atlassian-webhook-identifier") or _digest_id("jira", body)
    return Native(msg_id, _str(issue, "key"), _number_from(fields.get("labels")),
                  tuple(actions), actor)  # fmt: skip


def zammad(table: Mapping[str, str], headers: Mapping[str, str], body: bytes, data: Any) -> Native:
    ticket = _obj(data, "ticket")
    article = _obj(data, "article")
    actor = _str(_obj(ticket, "updated_by"), "login") or "zammad"
    state = ticket.get("state")
    state_name = _str(state, "name") if isinstance(state, dict) else _str(ticket, "state")
    actions: list[Act] = []
    action = _mapped(table, state_name)
    if action is not None:
        actions.append((action, None, NO_FIELDS))
    text = _str(article, "body")
    if text and not ours(text) and article.get("internal") is not True:
        actor = _str(_obj(article, "created_by"), "login") or actor
        actions.append((DeskAction.COMMENT, text, NO_FIELDS))
    tags = ticket.get("tags")
    msg_id = headers.get("x-zammad-delivery") or _digest_id("zammad", body)
    return Native(msg_id, _str(ticket, "id"), _number_from(tags), tuple(actions), actor)


def _check_authorization(secrets: tuple[str, ...], headers: Mapping[str, str], body: bytes) -> None:
    given = headers.get("authorization")
    if not given:
        raise Refused(401, "missing_headers", "Authorization is required")
    if not given.isascii():
        raise Refused(401, "bad_headers", "Authorization is not ASCII")
    if not any(hmac.compare_digest(given.encode(), s.encode()) for s in secrets):
        raise Refused(401, "bad_credentials", "Authorization does not match")


def servicenow(
    table: Mapping[str, str], headers: Mapping[str, str], body: bytes, data: Any
) -> Native:
    actions: list[Act] = []
    action = _mapped(table, _str(data, "state"))
    if action is not None:
        actions.append((action, None, NO_FIELDS))
    text = _str(data, "comments")  # customer-visible additional comments
    if text and not ours(text):
        actions.append((DeskAction.COMMENT, text, NO_FIELDS))
    stamp = f"{_str(data, 'sys_updated_on') or ''}:{_str(data, 'sys_mod_count') or ''}"
    msg_id = f"servicenow:{_str(data, 'sys_id') or '-'}:{stamp}"
    if stamp == ":":
        msg_id = _digest_id("servicenow", body)
    actor = _str(data, "sys_updated_by") or "servicenow"
    return Native(msg_id, _str(data, "sys_id"), _str(data, "correlation_id"), tuple(actions), actor)


_PD_ACTIONS = {"incident.acknowledged": DeskAction.ACK, "incident.resolved": DeskAction.RESOLVE}


def _check_pagerduty(secrets: tuple[str, ...], headers: Mapping[str, str], body: bytes) -> None:
    header = headers.get("x-pagerduty-signature")
    if not header:
        raise Refused(401, "missing_headers", "X-PagerDuty-Signature is required")
    if not header.isascii():
        raise Refused(401, "bad_headers", "X-PagerDuty-Signature is not ASCII")
    expected = ["v1=" + _hmac_hex(s, body, "sha256") for s in secrets]
    given = [part.strip() for part in header.split(",")]
    if not any(hmac.compare_digest(g, e) for g in given for e in expected):
        raise Refused(401, "bad_signature", "X-PagerDuty-Signature does not match the body")


def pagerduty(
    table: Mapping[str, str], headers: Mapping[str, str], body: bytes, data: Any
) -> Native:
    event = _obj(data, "event")
    incident = _obj(event, "data")
    if _str(incident, "type") == "incident_note":  # incident.annotated carries the note
        incident = _obj(incident, "incident")
    kind = _str(event, "event_type") or ""
    actions: list[Act] = []
    if kind in _PD_ACTIONS:
        actions.append((_PD_ACTIONS[kind], None, NO_FIELDS))
    note = _str(_obj(event, "data"), "content")
    if kind == "incident.annotated" and note and not ours(note):
        actions.append((DeskAction.COMMENT, note, NO_FIELDS))
    priority = _str(_obj(incident, "priority"), "summary")
    if kind == "incident.priority_updated" and priority:
        why = f"priority set to {priority} in PagerDuty"
        act = _contract(table, f"priority:{priority}", why)
        actions += [act] if act else []
    # The dedup key we sent is the incident key: "<number>" or "<number>/<target>".
    key = _str(incident, "incident_key")
    number = key.split("/", 1)[0] if key else None
    actor = _str(_obj(event, "agent"), "summary") or "pagerduty"
    msg_id = f"pagerduty:{_str(event, 'id') or _digest_id('pd', body)}"
    return Native(msg_id, None, number, tuple(actions), actor)


Auth = Callable[[tuple[str, ...], Mapping[str, str], bytes], None]
Parser = Callable[[Mapping[str, str], Mapping[str, str], bytes, Any], Native]
#: desk type -> (authenticate before parsing: raises ``Refused``, map the parsed body)
DESKS: Mapping[str, tuple[Auth, Parser]] = {
    "jira": (lambda s, h, b: _check_hub(s, h.get("x-hub-signature"), b, "sha256"), jira),
    "zammad": (lambda s, h, b: _check_hub(s, h.get("x-hub-signature"), b, "sha1"), zammad),
    "servicenow": (_check_authorization, servicenow),
    "pagerduty": (_check_pagerduty, pagerduty),
}
