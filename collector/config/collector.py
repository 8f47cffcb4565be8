"""The collector's config file (YAML), parsed once into frozen typed objects.

Every error names the file, the key (dotted path) and the reason, in one line. Secrets (MQTT
password, SNMP keys, TSDB token) are kept out of ``repr`` so they never reach a log.
See ``docs/collector.md`` for every key and ``deploy/collector.example.yaml`` for an example.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

import yaml

_MISSING: Final = object()


class ConfigError(ValueError):
    """An invalid config file: ``str()`` is one line naming file, key and reason."""


@dataclass(frozen=True, slots=True)
class TlsConfig:
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    insecure: bool = False  # skip host name check (test brokers with self-signed certs)


@dataclass(frozen=True, slots=True)
class MqttConfig:
    host: str = "127.0.0.1"
    port: int = 1883
    client_id: str = "fleetdesk-collector"
    protocol: str = "5"  # "5" or "3.1.1"
    session_expiry_s: int = 7 * 86_400
    keepalive_s: int = 30
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    tls: TlsConfig | None = None
    tenants: tuple[str, ...] = ("+",)
    shared_group: str | None = None
    max_batch: int = 1000
    reconnect_max_s: float = 30.0


@dataclass(frozen=True, slots=True)
class MetricMapping:
    """Third-party JSON: ``topic`` has one ``+`` that is the device id; paths are dotted."""

    topic: str
    tenant: str
    metrics: tuple[tuple[str, tuple[str, ...]], ...]  # (metric name, JSON path parts)
    ts_path: tuple[str, ...] | None = None

    @property
    def subscription(self) -> str:
        return self.topic


@dataclass(frozen=True, slots=True)
class IntakeConfig:
    ts_max_future_s: float = 300.0
    ts_max_past_s: float = 30 * 86_400.0  # agent spools may replay days-old reports
    dedup_window: int = 64
    dead_letter_file: Path | None = None
    dead_letter_topic: str | None = None
    reject_logs_per_minute: int = 30


@dataclass(frozen=True, slots=True)
class StoreConfig:
    url: str = "sqlite:///fleetdesk-collector.db"
    flush_interval_s: float = 1.0


@dataclass(frozen=True, slots=True)
class TsdbConfig:
    url: str | None = None  # None: no database, recent samples kept in memory only
    token: str = field(default="", repr=False)
    org: str = "fleetdesk"
    bucket: str = "fleetdesk"
    measurement: str = "fleet"
    batch_size: int = 50
    flush_interval_ms: int = 500
    max_buffer_lines: int = 500_000
    max_retries: int = 5
    retry_interval_ms: int = 1_000  # first retry; doubles up to 30 s
    max_retry_time_ms: int = 60_000
    recent_samples: int = 8  # per device, for the board, when no database is configured


@dataclass(frozen=True, slots=True)
class RulesConfig:
    inventory: Path | None = None
    rules_dir: Path | None = None
    default_policy: str = "wthink"
    state_flush_s: float = 30.0


@dataclass(frozen=True, slots=True)
class SnmpV3User:
    user: str
    auth_protocol: str = "sha"  # md5, sha, sha224, sha256, sha384, sha512
    auth_key: str = field(default="", repr=False)
    priv_protocol: str = "aes"  # des, aes, aes192, aes256
    priv_key: str = field(default="", repr=False)
    engine_id: str | None = None  # hex; the trap sender's engine id for v3 traps


@dataclass(frozen=True, slots=True)
class SnmpTarget:
    device: str
    tenant: str
    host: str
    port: int = 161
    profile: str = "router"
    version: str = "2c"  # "2c" or "3"
    community: str = field(default="public", repr=False)
    v3: SnmpV3User | None = None


@dataclass(frozen=True, slots=True)
class TrapConfig:
    host: str = "127.0.0.1"
    port: int = 1162
    communities: tuple[str, ...] = field(default=("public",), repr=False)
    v3_users: tuple[SnmpV3User, ...] = ()
    sources: tuple[tuple[str, str], ...] = ()  # (source address, device id)
    enterprise: tuple[tuple[str, str], ...] = ()  # (trap OID, event name)


@dataclass(frozen=True, slots=True)
class SnmpConfig:
    profiles_dir: Path | None = None
    interval_s: float = 60.0
    timeout_s: float = 2.0
    retries: int = 1
    concurrency: int = 32
    targets: tuple[SnmpTarget, ...] = ()
    traps: TrapConfig | None = None


@dataclass(frozen=True, slots=True)
class TicketsConfig:
    """Tickets for the rules engine's faults (docs/tickets.md, docs/webhooks.md)."""

    sinks: Path | None = None  # the desks to deliver to; none: tickets are kept, not sent
    inbound_secret_env: str | None = None  # the desk's whsec_ secret: enables /desk/v1/actions
    default_followup_s: float = 3600.0  # follow-up window of policies that name none
    delivery_poll_s: float = 1.0
    worker: bool = True  # False: only queue for the sinks; ``fleetdesk deliver`` sends


@dataclass(frozen=True, slots=True)
class HttpConfig:
    host: str = "127.0.0.1"
    port: int = 9108


@dataclass(frozen=True, slots=True)
class CollectorConfig:
    source: Path
    mqtt: MqttConfig
    intake: IntakeConfig
    store: StoreConfig
    tsdb: TsdbConfig
    rules: RulesConfig
    snmp: SnmpConfig
    http: HttpConfig
    mappings: tuple[MetricMapping, ...] = ()
    tickets: TicketsConfig = TicketsConfig()
    log_level: str = "info"


# --------------------------------------------------------------------------- reading


class _Section:
    """Typed access to one mapping of the file; ``done()`` rejects keys nobody read."""

    def __init__(self, file: Path, path: str, data: object) -> None:
        self.file, self.path = file, path
        if data is None:
            data = {}
        if not isinstance(data, Mapping):
            raise self.error("", f"must be a mapping, not {type(data).__name__}")
        self.data: Mapping[str, Any] = data
        self.read: set[str] = set()

    def key(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def error(self, key: str, reason: str) -> ConfigError:
        where = self.key(key) if key else (self.path or "(top level)")
        return ConfigError(f"{self.file}: {where}: {reason}")

    def raw(self, key: str, default: Any = _MISSING) -> Any:
        self.read.add(key)
        if key in self.data and self.data[key] is not None:
            return self.data[key]
        if default is _MISSING:
            raise self.error(key, "is required")
        return default

    def text(self, key: str, default: Any = _MISSING, *, choices: tuple[str, ...] = ()) -> Any:
        value = self.raw(key, default)
        if value is default and default is not _MISSING:
            return value
        if isinstance(value, int | float) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str) or not value:
            raise self.error(key, f"must be a non-empty string, not {value!r}")
        if choices and value not in choices:
            raise self.error(key, f"must be one of {', '.join(choices)}, not {value!r}")
        return value

    def integer(self, key: str, default: int, low: int = 0, high: int = 2**31) -> int:
        value = self.raw(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise self.error(key, f"must be an integer in {low}..{high}, not {value!r}")
        return value

    def number(self, key: str, default: float, low: float = 0.0) -> float:
        value = self.raw(key, default)
        if isinstance(value, bool) or not isinstance(value, int | float) or value < low:
            raise self.error(key, f"must be a number >= {low}, not {value!r}")
        return float(value)

    def flag(self, key: str, default: bool) -> bool:
        value = self.raw(key, default)
        if not isinstance(value, bool):
            raise self.error(key, f"must be true or false, not {value!r}")
        return value

    def path_(self, key: str) -> Path | None:
        value = self.text(key, None)
        if value is None:
            return None
        path = Path(value)
        return path if path.is_absolute() else (self.file.parent / path)

    def section(self, key: str) -> _Section:
        return _Section(self.file, self.key(key), self.raw(key, {}))

    def items(self, key: str) -> list[Any]:
        value = self.raw(key, [])
        if not isinstance(value, list):
            raise self.error(key, f"must be a list, not {type(value).__name__}")
        return value

    def strings(self, key: str, default: tuple[str, ...]) -> tuple[str, ...]:
        if key not in self.data:
            self.read.add(key)
            return default
        items = self.items(key)
        if not all(isinstance(i, str) and i for i in items):
            raise self.error(key, "must be a list of non-empty strings")
        return tuple(items)

    def done(self) -> None:
        unknown = sorted(set(self.data) - self.read)
        if unknown:
            raise self.error(unknown[0], "unknown key")


def _host_port(sec: _Section, key: str, default: tuple[str, int]) -> tuple[str, int]:
    value = sec.text(key, None)
    if value is None:
        return default
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) < 65536 or not host:
        raise sec.error(key, f"must be HOST:PORT, not {value!r}")
    return host.strip("[]"), int(port)


def _mqtt(sec: _Section) -> MqttConfig:
    url = urlsplit(sec.text("url", "mqtt://127.0.0.1:1883"))
    if url.scheme not in ("mqtt", "mqtts") or not url.hostname:
        raise sec.error(
            "url", f"must be mqtt://HOST:PORT or mqtts://HOST:PORT, not {url.geturl()!r}"
        )
    tls_sec = sec.section("tls")
    tls = None
    if url.scheme == "mqtts" or tls_sec.data:
        tls = TlsConfig(
            ca_file=tls_sec.path_("ca_file"),
            cert_file=tls_sec.path_("cert_file"),
            key_file=tls_sec.path_("key_file"),
            insecure=tls_sec.flag("insecure", False),
        )
        tls_sec.done()
    password = sec.text("password", None)
    password_file = sec.path_("password_file")
    if password_file is not None:
        try:
            password = password_file.read_text().strip()
        except OSError as exc:
            raise sec.error("password_file", f"cannot read: {exc.strerror}") from None
    shared = sec.text("shared_group", None)
    if shared is not None and not re.fullmatch(r"[A-Za-z0-9_.-]+", shared):
        raise sec.error("shared_group", f"must be a plain name, not {shared!r}")
    cfg = MqttConfig(
        host=url.hostname,
        port=url.port or (8883 if url.scheme == "mqtts" else 1883),
        client_id=sec.text("client_id", "fleetdesk-collector"),
        protocol=sec.text("protocol", "5", choices=("5", "3.1.1")),
        session_expiry_s=sec.integer("session_expiry_s", 7 * 86_400, 0, 2**32 - 1),
        keepalive_s=sec.integer("keepalive_s", 30, 5, 3600),
        username=sec.text("username", None),
        password=password,
        tls=tls,
        tenants=sec.strings("tenants", ("+",)),
        shared_group=shared,
        max_batch=sec.integer("max_batch", 1000, 1, 100_000),
        reconnect_max_s=sec.number("reconnect_max_s", 30.0, 0.1),
    )
    sec.done()
    return cfg


def _json_path(sec: _Section, key: str, value: object) -> tuple[str, ...]:
    if not isinstance(value, str) or not value:
        raise sec.error(key, f"must be a dotted JSON path, not {value!r}")
    return tuple(value.removeprefix("$.").split("."))


def _mapping(file: Path, index: int, raw: object) -> MetricMapping:
    sec = _Section(file, f"mappings[{index}]", raw)
    topic = sec.text("topic")
    levels = topic.split("/")
    if levels.count("+") != 1 or "#" in levels:
        raise sec.error("topic", f"needs exactly one '+' (the device id) and no '#': {topic!r}")
    metrics_sec = sec.section("metrics")
    if not metrics_sec.data:
        raise sec.error("metrics", "is required: metric name -> JSON path")
    metrics = []
    for name, path in metrics_sec.data.items():
        if not isinstance(name, str) or not re.fullmatch(r"[a-z][a-z0-9_]{0,63}", name):
            raise metrics_sec.error(str(name), "metric name must be [a-z][a-z0-9_]*")
        metrics.append((name, _json_path(metrics_sec, name, path)))
        metrics_sec.read.add(name)
    ts = sec.raw("ts", None)
    mapping = MetricMapping(
        topic=topic,
        tenant=sec.text("tenant", "default"),
        metrics=tuple(metrics),
        ts_path=_json_path(sec, "ts", ts) if ts is not None else None,
    )
    sec.done()
    return mapping


def _v3_user(sec: _Section) -> SnmpV3User:
    user = SnmpV3User(
        user=sec.text("user"),
        auth_protocol=sec.text(
            "auth_protocol", "sha", choices=("md5", "sha", "sha224", "sha256", "sha384", "sha512")
        ),
        auth_key=sec.text("auth_key"),
        priv_protocol=sec.text("priv_protocol", "aes", choices=("des", "aes", "aes192", "aes256")),
        priv_key=sec.text("priv_key"),
        engine_id=sec.text("engine_id", None),
    )
    for key in ("auth_key", "priv_key"):
        if len(getattr(user, key)) < 8:
            raise sec.error(key, "must be at least 8 characters (RFC 3414)")
    sec.done()
    return user


def _snmp(sec: _Section) -> SnmpConfig:
    targets = []
    for i, raw in enumerate(sec.items("devices")):
        t = _Section(sec.file, f"{sec.key('devices')}[{i}]", raw)
        version = t.text("version", "2c", choices=("2c", "3"))
        v3 = _v3_user(t.section("v3")) if version == "3" else None
        targets.append(
            SnmpTarget(
                device=t.text("device"),
                tenant=t.text("tenant", "default"),
                host=t.text("host"),
                port=t.integer("port", 161, 1, 65535),
                profile=t.text("profile", "router"),
                version=version,
                community=t.text("community", "public"),
                v3=v3,
            )
        )
        t.done()
    traps = None
    if "traps" in sec.data:
        tr = sec.section("traps")
        host, port = _host_port(tr, "listen", ("127.0.0.1", 1162))
        sources = tr.section("sources")
        enterprise = tr.section("enterprise")
        for s in (sources, enterprise):
            s.read.update(s.data)
            if not all(isinstance(k, str) and isinstance(v, str) for k, v in s.data.items()):
                raise s.error("", "must map strings to strings")
        traps = TrapConfig(
            host=host,
            port=port,
            communities=tr.strings("communities", ("public",)),
            v3_users=tuple(
                _v3_user(_Section(tr.file, f"{tr.key('v3_users')}[{i}]", u))
                for i, u in enumerate(tr.items("v3_users"))
            ),
            sources=tuple(sources.data.items()),
            enterprise=tuple((k.lstrip("."), v) for k, v in enterprise.data.items()),
        )
        tr.done()
    cfg = SnmpConfig(
        profiles_dir=sec.path_("profiles_dir"),
        interval_s=sec.number("interval_s", 60.0, 0.1),
        timeout_s=sec.number("timeout_s", 2.0, 0.05),
        retries=sec.integer("retries", 1, 0, 10),
        concurrency=sec.integer("concurrency", 32, 1, 10_000),
        targets=tuple(targets),
        traps=traps,
    )
    sec.done()
    return cfg


def parse_config(text: str, file: Path) -> CollectorConfig:
    """Parse the YAML text of ``file`` (used for the error messages and relative paths)."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f"line {mark.line + 1}: " if mark is not None else ""
        raise ConfigError(f"{file}: {line}invalid YAML: {getattr(exc, 'problem', exc)}") from None
    top = _Section(file, "", data)

    intake = top.section("intake")
    dead_topic = intake.text("dead_letter_topic", None)
    if dead_topic is not None and (
        dead_topic.startswith("fleet/") or "+" in dead_topic or "#" in dead_topic
    ):
        # under fleet/ we would receive our own dead letters and reject them again, forever
        raise intake.error(
            "dead_letter_topic", f"must be a plain topic outside fleet/, not {dead_topic!r}"
        )
    intake_cfg = IntakeConfig(
        ts_max_future_s=intake.number("ts_max_future_s", 300.0),
        ts_max_past_s=intake.number("ts_max_past_s", 30 * 86_400.0),
        dedup_window=intake.integer("dedup_window", 64, 1, 4096),
        dead_letter_file=intake.path_("dead_letter_file"),
        dead_letter_topic=dead_topic,
        reject_logs_per_minute=intake.integer("reject_logs_per_minute", 30, 0, 100_000),
    )
    intake.done()

    store = top.section("store")
    url = store.text("url", None)
    if url is None:
        url = f"sqlite:///{top.file.parent / 'fleetdesk-collector.db'}"
    elif not url.startswith(("sqlite://", "postgresql")):
        raise store.error("url", f"must be sqlite:///PATH or postgresql+psycopg://..., not {url!r}")
    store_cfg = StoreConfig(url=url, flush_interval_s=store.number("flush_interval_s", 1.0, 0.01))
    store.done()

    tsdb = top.section("tsdb")
    tsdb_url = tsdb.text("url", None)
    if tsdb_url is not None and urlsplit(tsdb_url).scheme not in ("http", "https"):
        raise tsdb.error("url", f"must be an http(s) URL, not {tsdb_url!r}")
    tsdb_cfg = TsdbConfig(
        url=tsdb_url,
        token=tsdb.text("token", ""),
        org=tsdb.text("org", "fleetdesk"),
        bucket=tsdb.text("bucket", "fleetdesk"),
        measurement=tsdb.text("measurement", "fleet"),
        batch_size=tsdb.integer("batch_size", 50, 1, 100_000),
        flush_interval_ms=tsdb.integer("flush_interval_ms", 500, 1, 600_000),
        max_buffer_lines=tsdb.integer("max_buffer_lines", 500_000, 1, 100_000_000),
        max_retries=tsdb.integer("max_retries", 5, 0, 1000),
        retry_interval_ms=tsdb.integer("retry_interval_ms", 1_000, 1, 600_000),
        max_retry_time_ms=tsdb.integer("max_retry_time_ms", 60_000, 1, 86_400_000),
        recent_samples=tsdb.integer("recent_samples", 8, 0, 10_000),
    )
    tsdb.done()

    rules = top.section("rules")
    rules_cfg = RulesConfig(
        inventory=rules.path_("inventory"),
        rules_dir=rules.path_("dir"),
        default_policy=rules.text("default_policy", "wthink"),
        state_flush_s=rules.number("state_flush_s", 30.0, 0.1),
    )
    rules.done()

    http = top.section("http")
    host, port = _host_port(http, "listen", ("127.0.0.1", 9108))
    http.done()

    tickets = top.section("tickets")
    tickets_cfg = TicketsConfig(
        sinks=tickets.path_("sinks"),
        inbound_secret_env=tickets.text("inbound_secret_env", None),
        default_followup_s=tickets.number("default_followup_s", 3600.0),
        delivery_poll_s=tickets.number("delivery_poll_s", 1.0, 0.01),
        worker=tickets.flag("worker", True),
    )
    tickets.done()

    cfg = CollectorConfig(
        source=file,
        mqtt=_mqtt(top.section("mqtt")),
        intake=intake_cfg,
        store=store_cfg,
        tsdb=tsdb_cfg,
        rules=rules_cfg,
        snmp=_snmp(top.section("snmp")),
        http=HttpConfig(host, port),
        mappings=tuple(_mapping(file, i, m) for i, m in enumerate(top.items("mappings"))),
        log_level=top.text("log_level", "info", choices=("debug", "info", "warning", "error")),
        tickets=tickets_cfg,
    )
    top.done()
    return cfg


def load_config(path: Path) -> CollectorConfig:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    return parse_config(text, path)
