"""Sink configuration: where ticket events go, parsed into frozen objects at load.

A sink's ``type`` names a desk in ``collector.delivery.adapters.registry``; that desk parses its
own keys into its adapter. The keys every sink shares (name, type, secrets, retry timing, TLS)
are parsed here. Secrets never sit in the file: ``secret_env`` and ``authorization_env`` name
environment variables. Errors are one-line ``ConfigError``s naming file, line, key and value.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from collector.config.durations import parse_seconds
from collector.config.errors import ConfigError
from collector.config.yamlfile import Node, read_yaml
from collector.delivery.adapters import registry
from collector.delivery.adapters.base import SinkNode
from collector.delivery.backoff import Backoff
from collector.delivery.request import Adapter
from collector.delivery.signing import SigningError, secret_key
from collector.tickets.model import Ticket

SinkConfigError = ConfigError  # the name callers knew before the one config error type
SHARED_KEYS = frozenset(
    {
        "name",
        "type",
        "secret_env",
        "authorization_env",
        "dead_after",
        "backoff_base",
        "backoff_cap",
        "timeout",
        "ca_file",
        "match",
    }
)
MATCH_KEYS = ("customers", "tenants", "policies", "levels")


@dataclass(frozen=True, slots=True)
class SinkMatch:
    """Which tickets a sink receives: each key given must match (lists of names; a key left
    out matches anything). No ``match`` section: every ticket."""

    customers: frozenset[str] | None = None
    tenants: frozenset[str] | None = None
    policies: frozenset[str] | None = None
    levels: frozenset[str] | None = None

    def matches(self, ticket: Ticket) -> bool:
        facts = (ticket.subject.customer, ticket.subject.tenant, ticket.policy, ticket.level)
        wanted = (self.customers, self.tenants, self.policies, self.levels)
        return all(
            names is None or fact in names for names, fact in zip(wanted, facts, strict=True)
        )


def _parse_match(node: Node) -> SinkMatch:
    keys = node.mapping(frozenset(MATCH_KEYS))
    lists: dict[str, frozenset[str]] = {}
    for key, value in keys.items():
        names = frozenset(value.texts())
        if not names:
            raise value.error("an empty list matches no ticket: leave the key out instead")
        lists[key] = names
    return SinkMatch(**lists)


@dataclass(frozen=True, slots=True)
class Sink:
    """A desk destination (not the TSDB writer): its adapter and how to deliver to it."""

    name: str
    adapter: Adapter
    secret: str | None = None  # whsec_...: requests are signed (Standard Webhooks)
    headers: Mapping[str, str] = field(default_factory=dict)
    dead_after_s: float = 24 * 3600.0
    backoff: Backoff = field(default_factory=Backoff)
    timeout_s: float = 10.0
    ca_file: str | None = None  # extra CA bundle; TLS verification is never turned off
    match: SinkMatch = field(default_factory=SinkMatch)

    def matches(self, ticket: Ticket) -> bool:
        return self.match.matches(ticket)


def load_sinks(path: Path, env: Mapping[str, str] | None = None) -> dict[str, Sink]:
    return parse_sinks(read_yaml(path), os.environ if env is None else env)


def parse_sinks(root: Node, env: Mapping[str, str]) -> dict[str, Sink]:
    """The sinks of a composed sinks file, by name, in file order."""
    keys = root.mapping(frozenset({"sinks"}))
    if "sinks" not in keys or keys["sinks"].is_null():
        raise ConfigError(root.source, "sinks", "expected a list of sinks", root.line)
    items = keys["sinks"]
    if not isinstance(items.raw, yaml.SequenceNode):
        raise items.error("expected a list of sinks")
    sinks: dict[str, Sink] = {}
    for item in items.items():
        sink = _parse_sink(item, env)
        if sink.name in sinks:
            raise item.mapping()["name"].error(f"duplicate sink name {sink.name!r}")
        sinks[sink.name] = sink
    return sinks


def _parse_sink(item: Node, env: Mapping[str, str]) -> Sink:
    keys = item.mapping()
    sink = SinkNode(item, keys)
    name, kind = sink.text("name"), sink.text("type")
    desk = registry.lookup(kind)
    if desk is None:
        known = ", ".join(registry.names())
        raise keys["type"].error(f"{kind!r} is not one of the registered desk types: {known}")
    item.mapping(SHARED_KEYS | desk.keys)  # now that the type is known: no unknown keys
    adapter = desk.build(sink, env)
    secret = sink.secret("secret_env", env)
    if secret is not None:
        try:
            secret_key(secret)
        except SigningError as exc:  # its message never holds the secret
            raise keys["secret_env"].error(str(exc)) from None
    authorization = sink.secret("authorization_env", env)
    ca_file = sink.optional_text("ca_file")
    if ca_file is not None and not Path(ca_file).is_file():
        raise keys["ca_file"].error(f"no such file {ca_file!r}")

    def duration(key: str, default: float) -> float:
        node = keys.get(key)
        if node is None:
            return default
        try:
            return parse_seconds(node.value)
        except ValueError as exc:
            raise node.error(str(exc)) from None

    return Sink(
        name=name,
        adapter=adapter,
        secret=secret,
        headers={"authorization": authorization} if authorization else {},
        dead_after_s=duration("dead_after", 24 * 3600.0),
        backoff=Backoff(duration("backoff_base", 1.0), duration("backoff_cap", 300.0)),
        timeout_s=duration("timeout", 10.0),
        ca_file=ca_file,
        match=_parse_match(keys["match"]) if "match" in keys else SinkMatch(),
    )
