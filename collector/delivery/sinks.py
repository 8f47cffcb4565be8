"""Sink configuration: where ticket events go, parsed into frozen objects at load.

Secrets never sit in the file: ``secret_env`` and ``authorization_env`` name environment
variables. Errors name the file, the key and the value, in one line.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from collector.config.durations import parse_seconds as parse_duration
from collector.delivery.adapters.jira import JiraAdapter
from collector.delivery.adapters.pagerduty import EVENTS_URL, PagerDutyAdapter
from collector.delivery.adapters.servicenow import ServiceNowAdapter
from collector.delivery.adapters.webhook import WebhookAdapter
from collector.delivery.adapters.zammad import ZammadAdapter
from collector.delivery.backoff import Backoff
from collector.delivery.request import Adapter
from collector.delivery.signing import SigningError, secret_key

KINDS = ("webhook", "jira", "zammad", "servicenow", "pagerduty")


class SinkConfigError(ValueError):
    """One line: file, key, value and what is wrong."""


@dataclass(frozen=True, slots=True)
class Sink:
    name: str
    adapter: Adapter
    secret: str | None = None  # whsec_...: requests are signed (Standard Webhooks)
    headers: Mapping[str, str] = field(default_factory=dict)
    dead_after_s: float = 24 * 3600.0
    backoff: Backoff = field(default_factory=Backoff)
    timeout_s: float = 10.0
    ca_file: str | None = None  # extra CA bundle; TLS verification is never turned off


def load_sinks(path: Path, env: Mapping[str, str] | None = None) -> dict[str, Sink]:
    try:
        text = path.read_text()
    except OSError as exc:
        raise SinkConfigError(f"{path}: cannot read: {exc.strerror}") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise SinkConfigError(f"{path}: not YAML: {exc}".replace("\n", " ")) from exc
    return parse_sinks(data, str(path), os.environ if env is None else env)


def parse_sinks(data: Any, origin: str, env: Mapping[str, str]) -> dict[str, Sink]:
    if not isinstance(data, dict) or not isinstance(data.get("sinks"), list):
        raise SinkConfigError(f"{origin}: key 'sinks': expected a list of sinks")
    sinks: dict[str, Sink] = {}
    for index, item in enumerate(data["sinks"]):
        where = f"{origin}: sinks[{index}]"
        if not isinstance(item, dict):
            raise SinkConfigError(f"{where}: expected a mapping, got {item!r}")
        sink = _parse_sink(item, where, env)
        if sink.name in sinks:
            raise SinkConfigError(f"{where}.name: duplicate sink name {sink.name!r}")
        sinks[sink.name] = sink
    return sinks


def _parse_sink(item: Mapping[str, Any], where: str, env: Mapping[str, str]) -> Sink:
    def need(key: str) -> str:
        value = item.get(key)
        if not isinstance(value, str) or not value:
            raise SinkConfigError(f"{where}.{key}: required text, got {value!r}")
        return value

    def secret_from(key: str) -> str | None:
        var = item.get(key)
        if var is None:
            return None
        if not isinstance(var, str) or var not in env:
            raise SinkConfigError(f"{where}.{key}: environment variable {var!r} is not set")
        return env[var]

    def duration(key: str, default: float) -> float:
        value = item.get(key)
        if value is None:
            return default
        try:
            return parse_duration(str(value))
        except ValueError as exc:
            raise SinkConfigError(f"{where}.{key}: {exc}") from exc

    name, kind = need("name"), need("type")
    if kind not in KINDS:
        raise SinkConfigError(f"{where}.type: {kind!r} is not one of {', '.join(KINDS)}")
    url = EVENTS_URL if kind == "pagerduty" and "url" not in item else need("url")
    if not url.startswith(("https://", "http://")):
        raise SinkConfigError(f"{where}.url: not an http(s) URL: {url!r}")
    adapter: Adapter
    if kind == "webhook":
        adapter = WebhookAdapter(url)
    elif kind == "jira":
        transitions = item.get("transitions", {})
        if not isinstance(transitions, dict):
            raise SinkConfigError(f"{where}.transitions: expected event -> id, got {transitions!r}")
        adapter = JiraAdapter(
            url,
            need("project"),
            str(item.get("issue_type", "[System] Incident")),
            {str(k): str(v) for k, v in transitions.items()},
        )
    elif kind == "zammad":
        adapter = ZammadAdapter(url, need("group"), need("customer"))
    elif kind == "servicenow":
        adapter = ServiceNowAdapter(url, item.get("assignment_group"))
    else:
        routing = secret_from("routing_key_env")
        if routing is None:
            raise SinkConfigError(f"{where}.routing_key_env: required for pagerduty")
        adapter = PagerDutyAdapter(routing, url)
    secret = secret_from("secret_env")
    if secret is not None:
        try:
            secret_key(secret)
        except SigningError as exc:
            raise SinkConfigError(f"{where}.secret_env: {exc}") from exc
    authorization = secret_from("authorization_env")
    headers = {"authorization": authorization} if authorization else {}
    ca_file = item.get("ca_file")
    if ca_file is not None and not Path(str(ca_file)).is_file():
        raise SinkConfigError(f"{where}.ca_file: no such file {ca_file!r}")
    return Sink(
        name=name,
        adapter=adapter,
        secret=secret,
        headers=headers,
        dead_after_s=duration("dead_after", 24 * 3600.0),
        backoff=Backoff(duration("backoff_base", 1.0), duration("backoff_cap", 300.0)),
        timeout_s=duration("timeout", 10.0),
        ca_file=str(ca_file) if ca_file is not None else None,
    )
