"""The agent's configuration: one TOML file, checked at start into frozen typed objects.

``load(path)`` reads the file, ``parse(text, source)`` checks it. Every problem is a
:class:`ConfigError` naming the file, the key (and its line when it can be found) and the
reason, printed as one line. Unknown keys are errors too: a typo must not silently become a
default. The typed objects are in :mod:`agent.config_types` (re-exported here), the per-table
checking in :mod:`agent.config_table`; this module reads each section.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any, Final, Literal
from urllib.parse import unquote, urlsplit

from agent import wire
from agent.config_table import ConfigTable, ConfigText
from agent.config_types import (
    DEFAULT_SPOOL_BYTES,
    MAX_EXEC_NAME,
    MAX_INTERFACES,
    MAX_INTERVAL_S,
    MIN_INTERVAL_S,
    MIN_SPOOL_BYTES,
    AgentConfig,
    BrokerConfig,
    BrokerUrl,
    CellularOptions,
    CommandsConfig,
    ConfigError,
    DeviceConfig,
    ExecCheck,
    InterfacesOptions,
    ProbesConfig,
    ReachabilityOptions,
    ReachTarget,
    SerialOptions,
    SpoolConfig,
    SystemOptions,
    TlsConfig,
)

__all__ = [
    "DEFAULT_SPOOL_BYTES",
    "MAX_EXEC_NAME",
    "MAX_INTERFACES",
    "MAX_INTERVAL_S",
    "MIN_INTERVAL_S",
    "MIN_SPOOL_BYTES",
    "AgentConfig",
    "BrokerConfig",
    "BrokerUrl",
    "CellularOptions",
    "CommandsConfig",
    "ConfigError",
    "DeviceConfig",
    "ExecCheck",
    "InterfacesOptions",
    "ProbesConfig",
    "ReachTarget",
    "ReachabilityOptions",
    "SerialOptions",
    "SpoolConfig",
    "SystemOptions",
    "TlsConfig",
    "load",
    "parse",
]

_SIZE_RE: Final = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([KMG]i?B|B)?\s*", re.IGNORECASE)
_SIZE_UNITS: Final = {
    **{"b": 1, "kb": 1000, "mb": 1000**2, "gb": 1000**3},
    **{"kib": 1024, "mib": 1024**2, "gib": 1024**3},
}


# --------------------------------------------------------------------------- values


def _size(table: ConfigTable, name: str, default: int) -> int:
    value = table.raw(name)
    if value is None:
        return default
    if isinstance(value, int) and not isinstance(value, bool):
        size = value
    elif isinstance(value, str) and (m := _SIZE_RE.fullmatch(value)):
        size = int(float(m.group(1)) * _SIZE_UNITS[(m.group(2) or "b").lower()])
    else:
        raise table.fail(name, f"must be a byte count or a size like '16MiB', not {value!r}")
    if size < MIN_SPOOL_BYTES:
        raise table.fail(name, f"must be at least {MIN_SPOOL_BYTES} bytes, not {value!r}")
    return size


def _id(table: ConfigTable, name: str) -> str:
    value = table.string(name, required=True)
    if not wire.valid_id(value):
        raise table.fail(name, f"{value!r} is not an id of 1-64 [A-Za-z0-9._:-] characters")
    return value


def _path(table: ConfigTable, name: str) -> Path | None:
    value = table.opt_str(name)
    return None if value is None else Path(value).expanduser()


# --------------------------------------------------------------------------- sections


def _device(root: ConfigTable) -> DeviceConfig:
    t = root.table("device", required=True)
    assert t is not None
    labels: dict[str, str] = {}
    labels_table = t.table("labels")
    if labels_table is not None:
        for key, value in labels_table.data.items():
            if not wire.valid_name(key):
                raise labels_table.fail(key, "label names are [a-z][a-z0-9_]*, 64 at most")
            if not isinstance(value, str) or len(value) > wire.MAX_STRING_LEN:
                raise labels_table.fail(key, "must be a string of 128 characters at most")
            labels_table.seen.add(key)
            labels[key] = value
    device = DeviceConfig(
        id=_id(t, "id"),
        tenant=_id(t, "tenant"),
        model=t.opt_str("model"),
        serial=t.opt_str("serial"),
        firmware=t.opt_str("firmware"),
        labels=labels,
    )
    t.done()
    return device


def _broker_url(table: ConfigTable, key: str, text: str) -> BrokerUrl:
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as exc:
        raise table.fail(key, f"{text!r} is not a URL: {exc}") from None
    if parts.scheme not in ("mqtt", "mqtts"):
        raise table.fail(key, f"{text!r}: the scheme must be mqtt:// or mqtts://")
    if not parts.hostname:
        raise table.fail(key, f"{text!r} names no host")
    if parts.path not in ("", "/") or parts.query or parts.username:
        raise table.fail(key, f"{text!r}: give only scheme://host:port (credentials apart)")
    tls = parts.scheme == "mqtts"
    return BrokerUrl(unquote(parts.hostname), port or (8883 if tls else 1883), tls)


def _broker(root: ConfigTable) -> BrokerConfig:
    t = root.table("broker", required=True)
    assert t is not None
    if t.has("url") and t.has("urls"):
        raise t.fail("urls", "give either url or urls, not both")
    raw = t.str_list("urls") if t.has("urls") else (t.string("url", required=True),)
    if not raw:
        raise t.fail("urls", "must name at least one broker")
    urls = tuple(_broker_url(t, "urls" if t.has("urls") else "url", u) for u in raw)
    tls = TlsConfig()
    tls_table = t.table("tls")
    if tls_table is not None:
        tls = TlsConfig(
            ca_file=_path(tls_table, "ca_file"),
            cert_file=_path(tls_table, "cert_file"),
            key_file=_path(tls_table, "key_file"),
        )
        if (tls.cert_file is None) != (tls.key_file is None):
            raise tls_table.fail("key_file", "cert_file and key_file go together")
        for name in ("ca_file", "cert_file", "key_file"):
            path = getattr(tls, name)
            if path is not None and not path.is_file():
                raise tls_table.fail(name, f"no such file {str(path)!r}")
        tls_table.done()
    password = t.opt_str("password")
    password_file = _path(t, "password_file")
    if password is not None and password_file is not None:
        raise t.fail("password_file", "give either password or password_file, not both")
    if password_file is not None:
        try:
            password = password_file.read_text().strip()
        except OSError as exc:
            raise t.fail("password_file", f"cannot read it: {exc.strerror}") from None
    protocol = t.choice("protocol", ("3.1.1", "5"), "3.1.1")
    low = t.number("reconnect_min_s", 1.0, 0.05, 3600)
    broker = BrokerConfig(
        urls=urls,
        username=t.opt_str("username"),
        password=password,
        tls=tls,
        client_id=t.string("client_id", "") if t.has("client_id") else "",
        protocol="5" if protocol == "5" else "3.1.1",
        keepalive_s=t.integer("keepalive_s", 30, 5, 3600),
        connect_timeout_s=t.number("connect_timeout_s", 10.0, 0.5, 120),
        reconnect_min_s=low,
        reconnect_max_s=t.number("reconnect_max_s", max(60.0, low), low, 3600),
    )
    if broker.password is not None and broker.username is None:
        raise t.fail("username", "is required when a password is given")
    t.done()
    return broker


def _spool(root: ConfigTable) -> SpoolConfig:
    t = root.table("spool")
    if t is None:
        return SpoolConfig(path=Path(".fleetdesk-agent/spool.db"))
    spool = SpoolConfig(
        path=Path(t.string("path", ".fleetdesk-agent/spool.db")).expanduser(),
        max_bytes=_size(t, "max_size", DEFAULT_SPOOL_BYTES),
        inflight=t.integer("inflight", 200, 1, 10_000),
        drain_rate=t.number("drain_rate", 50.0, 0.1, 1_000_000),
    )
    t.done()
    return spool


def _reach_target(table: ConfigTable, key: str, value: Any) -> ReachTarget:
    """A target is "host", "host:port" or a table {host, port, method, name}."""
    if isinstance(value, str):
        host, _, port_text = value.rpartition(":") if value.count(":") == 1 else (value, "", "")
        if not port_text.isdigit() and port_text:
            raise table.fail(key, f"{value!r}: the port must be a number")
        port = int(port_text) if port_text else None
        spec = {"host": host, "port": port} if port is not None else {"host": value}
        return _reach_target(table, key, spec)
    if not isinstance(value, dict):
        raise table.fail(key, "each target is 'host', 'host:port' or a table")
    t = ConfigTable(value, table.key(key), table.ctx)
    host = t.string("host", required=True)
    port = t.integer("port", 0, 1, 65535) if t.has("port") else None
    method = t.choice("method", ("auto", "icmp", "tcp"), "auto")
    if method == "tcp" and port is None:
        raise t.fail("port", "is required for the tcp method")
    name = t.string("name", wire.metric_name(host if port is None else f"{host}_{port}"))
    if not wire.valid_name(f"ping_{name}_loss_pct"):
        raise t.fail("name", f"{name!r} does not make a metric name [a-z][a-z0-9_]*")
    t.done()
    methods: dict[str, Literal["auto", "icmp", "tcp"]] = {"auto": "auto", "icmp": "icmp"}
    return ReachTarget(name, host, port, methods.get(method, "tcp"))


def _probes(root: ConfigTable) -> ProbesConfig:
    t = root.table("probes")
    if t is None:
        return ProbesConfig(system=SystemOptions(), interfaces=InterfacesOptions())
    system = interfaces = reach = cellular = serial = None
    if (s := t.table("system")) is not None:
        system = SystemOptions(disk_path=s.string("disk_path", "/"))
        s.done()
    if (i := t.table("interfaces")) is not None:
        interfaces = InterfacesOptions(
            include=i.str_list("include"), exclude=i.str_list("exclude", ("lo",))
        )
        if len(interfaces.include) > MAX_INTERFACES:
            raise i.fail("include", f"at most {MAX_INTERFACES} interfaces")
        i.done()
    if (r := t.table("reachability")) is not None:
        raw = r.raw("targets")
        if not isinstance(raw, list) or not raw:
            raise r.fail("targets", "must be a non-empty list of targets")
        reach = ReachabilityOptions(
            targets=tuple(_reach_target(r, f"targets[{n}]", v) for n, v in enumerate(raw)),
            count=r.integer("count", 3, 1, 20),
            timeout_s=r.number("timeout_s", 1.0, 0.05, 30),
        )
        r.done()
    if (c := t.table("cellular")) is not None:
        source = c.choice("source", ("mmcli", "at"), "mmcli")
        cellular = CellularOptions(
            source="at" if source == "at" else "mmcli",
            modem=c.string("modem", "any"),
            mmcli=c.string("mmcli", "mmcli"),
            at_port=c.opt_str("at_port"),
            at_baud=c.integer("at_baud", 115200, 300, 4_000_000),
            timeout_s=c.number("timeout_s", 5.0, 0.1, 60),
        )
        if cellular.source == "at" and cellular.at_port is None:
            raise c.fail("at_port", "is required when source = 'at'")
        c.done()
    if (p := t.table("serial")) is not None:
        serial = SerialOptions(port=p.string("port", required=True))
        p.done()
    checks = []
    for e in t.tables("exec"):
        name = e.string("name", required=True)
        if not wire.valid_name(name) or len(name) > MAX_EXEC_NAME:
            raise e.fail("name", f"{name!r} must be [a-z][a-z0-9_]*, {MAX_EXEC_NAME} at most")
        command = e.str_list("command")
        if not command:
            raise e.fail("command", "must be a non-empty list: program and arguments")
        checks.append(ExecCheck(name, command, e.number("timeout_s", 5.0, 0.05, 600)))
        e.done()
    if len({c.name for c in checks}) != len(checks):
        raise t.fail("exec", "check names must be unique")
    t.done()
    return ProbesConfig(system, interfaces, reach, cellular, serial, tuple(checks))


def _commands(root: ConfigTable) -> CommandsConfig:
    t = root.table("commands")
    if t is None:
        return CommandsConfig()
    from agent.command_auth import read_key

    key_env, key_file = t.opt_str("key_env"), _path(t, "key_file")
    if key_env is not None and key_file is not None:
        raise t.fail("key_file", "give either key_env or key_file, not both")
    key = None
    if key_env is not None or key_file is not None:
        try:
            key = read_key(key_env, key_file)
        except ValueError as exc:
            raise t.fail("key_env" if key_env is not None else "key_file", str(exc)) from None
    low = t.number("min_interval_s", 1.0, MIN_INTERVAL_S, MAX_INTERVAL_S)
    targets = t.str_list("ping_targets")
    for target in targets:
        _reach_target(t, "ping_targets", target)  # the same forms as the probe's targets
    commands = CommandsConfig(
        key=key,
        trust_broker_acl=t.boolean("trust_broker_acl", False),
        max_ttl_s=t.number("max_ttl_s", 3600.0, 1, 7 * 86_400),
        clock_skew_s=t.number("clock_skew_s", 60.0, 0, 3600),
        min_interval_s=low,
        max_interval_s=t.number("max_interval_s", MAX_INTERVAL_S, low, MAX_INTERVAL_S),
        ping_targets=targets,
    )
    t.done()
    return commands


# --------------------------------------------------------------------------- entry points


def parse(text: str, source: str = "<config>") -> AgentConfig:
    """Check a TOML document; raises :class:`ConfigError` with the first problem found."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        # "Invalid value (at line 3, column 7)": keep the reason, move the line to the front.
        message = str(exc)
        m = re.search(r"\(at line (\d+), column \d+\)", message)
        line = int(m.group(1)) if m else None
        reason = message[: m.start()].strip() if m else message
        raise ConfigError(source, "", f"not valid TOML: {reason}", line) from None
    root = ConfigTable(data, "", ConfigText(source, text))
    levels: dict[str, Literal["debug", "info", "warning", "error"]] = {
        "debug": "debug",
        "info": "info",
        "warning": "warning",
        "error": "error",
    }
    level = levels[root.choice("log_level", tuple(levels), "info")]
    config = AgentConfig(
        source=source,
        interval_s=root.number("interval_s", 10.0, MIN_INTERVAL_S, MAX_INTERVAL_S),
        log_level=level,
        host_root=Path(root.string("host_root", "/")),
        device=_device(root),
        broker=_broker(root),
        spool=_spool(root),
        probes=_probes(root),
        commands=_commands(root),
    )
    root.done()
    return config


def load(path: str | Path) -> AgentConfig:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(str(path), "", f"cannot read the file: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigError(str(path), "", "the file is not UTF-8 text") from None
    return parse(text, str(path))
