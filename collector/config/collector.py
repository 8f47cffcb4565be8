"""The collector's config file (YAML), validated into frozen pydantic models.

The models mirror the file: one class per section, one field per key, unknown keys refused. What
the service wants in another shape (`mqtt.host`/`port` from `mqtt.url`, `snmp.targets`
for `snmp.devices`) is a property. An error is one `ConfigError` line naming file, line, key
and reason; secrets (MQTT password, SNMP community and keys, TSDB token) are kept out of `repr`
and out of error messages. `json_schema()` is the file's JSON Schema (`fleetdesk collector
--schema`); docs/collector.md is the reference and deploy/collector.example.yaml an example.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    StringConstraints,
    TypeAdapter,
    ValidationInfo,
    field_validator,
    model_validator,
)

from collector.config.errors import ConfigError
from collector.config.scale import ScaleConfig
from collector.config.snmp import SnmpConfig
from collector.config.typed import (
    FilePath,
    Flag,
    Int,
    Listen,
    Seconds,
    Section,
    Text,
    WholeSeconds,
    as_text,
    listen_default,
    markdown_reference,
    validate,
)
from collector.config.yamlfile import parse_yaml, read_yaml

# Choices are text: `version: 3` is the string "3".
MqttProtocol = Annotated[Literal["5", "3.1.1"], BeforeValidator(as_text)]
LogLevel = Annotated[Literal["debug", "info", "warning", "error"], BeforeValidator(as_text)]

# --------------------------------------------------------------------------- mqtt


def _mqtt_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.username or parts.password:  # checked first: the URL is not echoed with a password
        raise ValueError("put the credentials in username and password_file, not in the URL")
    try:
        parts.port  # noqa: B018 (raises for a port out of range)
    except ValueError:
        raise ValueError(f"port out of range in {value!r}") from None
    if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
        raise ValueError(f"must be mqtt://HOST:PORT or mqtts://HOST:PORT, not {value!r}")
    return value


class TlsConfig(Section):
    ca_file: FilePath | None = None
    """CA bundle that signed the broker's certificate (default: the system's)."""
    cert_file: FilePath | None = None
    """Client certificate, for brokers that require one."""
    key_file: FilePath | None = None
    """The client certificate's private key."""
    insecure: Flag = False
    """Skip the host name check (test brokers with self-signed certificates)."""


class MqttConfig(Section):
    url: Annotated[Text, AfterValidator(_mqtt_url)] = "mqtt://127.0.0.1:1883"
    """`mqtt://HOST:PORT`, or `mqtts://HOST:PORT` for TLS (port 8883 by default)."""
    client_id: Text = "fleetdesk-collector"
    """Fixed: the broker keeps this session while the collector is away."""
    protocol: MqttProtocol = "5"
    """"5" (session expiry) or "3.1.1" (clean_session=false)."""
    session_expiry_s: WholeSeconds = Field(default=7 * 86_400, ge=0, le=2**32 - 1)
    """How long the broker queues for us while we are down (MQTT 5)."""
    keepalive_s: WholeSeconds = Field(default=30, ge=5, le=3600)
    """MQTT keep-alive interval."""
    username: Text | None = None
    """Broker user name."""
    password_file: FilePath | None = None
    """File holding the password (read at start; wins over `password`)."""
    password: Text | None = Field(default=None, repr=False, validate_default=True)
    """Broker password (prefer `password_file`)."""
    tls: TlsConfig | None = Field(default=None, validate_default=True)
    """TLS settings; on by itself for `mqtts://`."""
    tenants: tuple[Text, ...] = ("+",)
    """Subscribe to `fleet/v1/<tenant>/#` of these tenants; `+` is every tenant."""
    shared_group: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.-]+$")] | None = None
    """`$share/<group>/` subscriptions: several collectors split the load."""
    max_batch: Int = Field(default=1000, ge=1, le=100_000)
    """Messages per pipeline batch."""
    max_unacked: Int = Field(default=10_000, ge=1, le=65_535)
    """Messages received but not yet acknowledged (MQTT 5 Receive Maximum): a message is
    acknowledged only once what it caused is stored; past this the broker waits."""
    reconnect_max_s: Seconds = Field(default=30.0, ge=0.1)
    """Longest back-off between connection attempts."""

    @field_validator("password_file")
    @classmethod
    def _readable(cls, value: Path | None) -> Path | None:
        if value is not None:
            try:
                value.read_bytes()
            except OSError as exc:
                raise ValueError(f"cannot read: {exc.strerror}") from None
        return value

    @field_validator("password")
    @classmethod
    def _from_file(cls, value: str | None, info: ValidationInfo) -> str | None:
        file = info.data.get("password_file")
        return file.read_text(encoding="utf-8").strip() if file is not None else value

    @field_validator("tls")
    @classmethod
    def _tls_for_mqtts(cls, value: TlsConfig | None, info: ValidationInfo) -> TlsConfig | None:
        if value is None and str(info.data.get("url", "")).startswith("mqtts:"):
            return TlsConfig()
        return value

    @property
    def host(self) -> str:
        return urlsplit(self.url).hostname or ""

    @property
    def port(self) -> int:
        parts = urlsplit(self.url)
        return parts.port or (8883 if parts.scheme == "mqtts" else 1883)


# --------------------------------------------------------------------------- third-party JSON

MetricName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,63}$")]
_METRICS = TypeAdapter(dict[MetricName, Text])


def _json_path(value: object) -> object:
    value = as_text(value)
    return tuple(value.removeprefix("$.").split(".")) if isinstance(value, str) and value else value


def _metric_paths(value: object) -> object:
    if not isinstance(value, dict):
        return value
    if not value:
        raise ValueError("needs at least one metric: name -> JSON path")
    return tuple((name, _json_path(path)) for name, path in _METRICS.validate_python(value).items())


def _one_device_level(topic: str) -> str:
    levels = topic.split("/")
    if levels.count("+") != 1 or "#" in levels:
        raise ValueError(f"needs exactly one '+' (the device id) and no '#': {topic!r}")
    return topic


class MetricMapping(Section):
    """Third-party JSON: `topic` has one `+` that is the device id; paths are dotted."""

    topic: Annotated[Text, AfterValidator(_one_device_level)]
    """MQTT topic filter with one `+` level: the device id."""
    tenant: Text = "default"
    """Tenant the mapped devices belong to."""
    metrics: Annotated[
        tuple[tuple[str, tuple[str, ...]], ...],
        BeforeValidator(_metric_paths, json_schema_input_type=dict[MetricName, str]),
    ]
    """Metric name -> dotted JSON path in the payload (`sensors.board_temp`)."""
    ts: (
        Annotated[tuple[str, ...], BeforeValidator(_json_path, json_schema_input_type=str)] | None
    ) = None
    """Dotted path of an RFC 3339 timestamp in the payload; none: the arrival time."""

    @property
    def ts_path(self) -> tuple[str, ...] | None:
        return self.ts

    @property
    def subscription(self) -> str:
        return self.topic


# --------------------------------------------------------------------------- intake, storage


def _plain_topic(topic: str) -> str:
    # under fleet/ we would receive our own dead letters and reject them again, forever
    if topic.startswith("fleet/") or "+" in topic or "#" in topic:
        raise ValueError(f"must be a plain topic outside fleet/, not {topic!r}")
    return topic


class IntakeConfig(Section):
    ts_max_future_s: Seconds = Field(default=300.0, ge=0)
    """Reports stamped further ahead are rejected (`ts_out_of_range`)."""
    ts_max_past_s: Seconds = Field(default=30 * 86_400.0, ge=0)
    """... and older ones (agent spools may replay days-old reports)."""
    dedup_window: Int = Field(default=64, ge=1, le=4096)
    """Out-of-order sequence numbers remembered per device."""
    max_seq_jump: Int = Field(default=100_000_000, ge=1, le=2**63 - 1)
    """A report whose `seq` jumps further ahead is refused (`seq_jump`): that report only."""
    dead_letter_file: FilePath | None = None
    """Rejected messages are appended here (JSON lines)."""
    dead_letter_topic: Annotated[Text, AfterValidator(_plain_topic)] | None = None
    """... and/or published here (a plain topic outside `fleet/`)."""
    reject_logs_per_minute: Int = Field(default=30, ge=0, le=100_000)
    """Log lines about rejects per minute (all are counted)."""


def _scheme(url: str) -> str:
    return url.split("://", 1)[0] + "://..." if "://" in url else "no scheme"  # no credentials


def _store_url(url: str) -> str:
    if not url.startswith(("sqlite://", "postgresql")):
        raise ValueError(f"must be sqlite:///PATH or postgresql+psycopg://..., not {_scheme(url)}")
    return url


class StoreConfig(Section):
    url: Annotated[Text, AfterValidator(_store_url)] = "sqlite:///fleetdesk-collector.db"
    """SQLite or PostgreSQL URL; default `fleetdesk-collector.db` beside the config file (a
    relative SQLite path given here is relative to the working directory)."""
    flush_interval_s: Seconds = Field(default=1.0, ge=0.01)
    """Longest time a change with no message to acknowledge (a timer's fault, an SNMP poll)
    waits to be committed."""
    commit_interval_s: Seconds = Field(default=0.2, ge=0.0, le=10.0)
    """Shortest time between two intake commits: batches arriving meanwhile share one
    transaction (group commit), so acknowledgements wait at most about this long plus a commit."""

    @model_validator(mode="before")
    @classmethod
    def _beside_the_file(cls, data: Any, info: ValidationInfo) -> Any:
        base = (info.context or {}).get("base_dir")
        if isinstance(data, dict) and data.get("url") is None and base is not None:
            return {**data, "url": f"sqlite:///{Path(base) / 'fleetdesk-collector.db'}"}
        return data


def _http_url(url: str) -> str:
    if urlsplit(url).scheme not in ("http", "https"):
        raise ValueError(f"must be an http(s) URL, not {_scheme(url)}")
    return url


class TsdbConfig(Section):
    url: Annotated[Text, AfterValidator(_http_url)] | None = None
    """InfluxDB v2 write API base URL; none: only the recent samples, in memory."""
    token: Text = Field(default="", repr=False)
    """API token (InfluxDB)."""
    org: Text = "fleetdesk"
    """InfluxDB organisation."""
    bucket: Text = "fleetdesk"
    """InfluxDB bucket (database)."""
    measurement: Text = "fleet"
    """Line protocol measurement (VictoriaMetrics names series `fleet_<metric>`)."""
    batch_size: Int = Field(default=5000, ge=1, le=100_000)
    """Lines waiting that start a write (which carries all that wait, up to 20,000 lines)."""
    flush_interval_ms: Int = Field(default=500, ge=1, le=600_000)
    """Longest wait before fewer lines are written."""
    max_buffer_lines: Int = Field(default=5_000_000, ge=1, le=1_000_000_000)
    """Bound of the disk buffer (lines not yet written); when full the collector stops
    acknowledging MQTT messages and the broker keeps the backlog (docs/reliability.md)."""
    buffer_dir: FilePath | None = None
    """Folder of the disk buffer; default `<store file>.tsdb-buffer/` for SQLite, else
    `fleetdesk-tsdb-buffer/` beside the config file."""
    max_retries: Int = Field(default=5, ge=0, le=1000)
    """Ignored since the disk buffer: writes are retried until the database accepts them."""
    retry_interval_ms: Int = Field(default=1_000, ge=1, le=600_000)
    """First retry; the interval doubles, up to 30 s."""
    max_retry_time_ms: Int = Field(default=60_000, ge=1, le=86_400_000)
    """Ignored since the disk buffer: writes are retried until the database accepts them."""
    recent_samples: Int = Field(default=8, ge=0, le=10_000)
    """Per device, kept in memory for the board's device charts (with or without a database)."""


class RulesConfig(Section):
    inventory: FilePath | None = None
    """Inventory file (CSV or YAML); none: no rules stage."""
    dir: FilePath | None = None
    """Rules folder (`rules.d/*.yaml`, policies, calendars) or one rule file; none: presets."""
    default_policy: Text = "wthink"
    """Policy of devices not in the inventory (when their tenant adopts them)."""
    adopt_tenants: tuple[Text, ...] = ()
    """Tenants whose devices not in the inventory are judged by the rules (faults, tickets);
    `*`: every tenant. Others are listed as `unassigned`, not judged."""
    state_flush_s: Seconds = Field(default=30.0, ge=0.1)
    """How often the engine's state is saved (and at shutdown); it walks every device."""

    @property
    def rules_dir(self) -> Path | None:
        return self.dir


# --------------------------------------------------------------------------- the rest


class TicketsConfig(Section):
    """Tickets for the rules engine's faults (docs/tickets.md, docs/webhooks.md)."""

    sinks: FilePath | None = None
    """The desks to deliver to; none: tickets are kept, not sent."""
    inbound_secret_env: Text | None = None
    """Environment variable with the desk's `whsec_` secret: enables `/desk/v1/actions`."""
    default_followup_s: Seconds = Field(default=3600.0, ge=0)
    """Follow-up window of policies that name none."""
    delivery_poll_s: Seconds = Field(default=1.0, ge=0.01)
    """How often the outbox is looked at."""
    worker: Flag = True
    """False: only queue for the sinks; `fleetdesk deliver` sends."""


class HttpConfig(Section):
    listen: Listen = listen_default("127.0.0.1:9108")
    """`/healthz` and `/metrics`; port 0 takes any free port (logged)."""

    @property
    def host(self) -> str:
        return self.listen.host

    @property
    def port(self) -> int:
        return self.listen.port


class CollectorConfig(Section):
    model_config = ConfigDict(title="fleetdesk collector config")

    mqtt: MqttConfig = Field(default_factory=MqttConfig)
    """The MQTT broker and what to subscribe to."""
    intake: IntakeConfig = Field(default_factory=IntakeConfig)
    """Checks on what arrives."""
    store: StoreConfig = Field(default_factory=StoreConfig)
    """Device registry and state (SQL)."""
    tsdb: TsdbConfig = Field(default_factory=TsdbConfig)
    """Time-series database for telemetry."""
    rules: RulesConfig = Field(default_factory=RulesConfig)
    """The rules engine."""
    snmp: SnmpConfig = Field(default_factory=SnmpConfig)
    """SNMP polling and traps."""
    http: HttpConfig = Field(default_factory=HttpConfig)
    """The HTTP server."""
    mappings: tuple[MetricMapping, ...] = ()
    """Devices that publish their own JSON."""
    tickets: TicketsConfig = Field(default_factory=TicketsConfig)
    """Tickets and their delivery to service desks."""
    scale: ScaleConfig = Field(default_factory=ScaleConfig)
    """Several collectors sharing the work (docs/scale-out.md)."""
    log_level: LogLevel = "info"
    """Log level of the JSON log lines on stderr."""

    _source: Path = PrivateAttr(default=Path("collector.yaml"))

    @model_validator(mode="after")
    def _remember_the_file(self, info: ValidationInfo) -> CollectorConfig:
        source = (info.context or {}).get("source")
        if source is not None:
            self._source = Path(source)
        return self

    @property
    def source(self) -> Path:
        """The file this config was read from (messages, relative paths of other files)."""
        return self._source


def json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of the config file."""
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        **CollectorConfig.model_json_schema(mode="validation"),
    }


def reference() -> str:
    """The config reference of docs/collector.md (a Markdown table), from the schema."""
    return markdown_reference(json_schema())


def _context(file: Path) -> dict[str, Any]:
    return {"base_dir": file.parent, "source": file}


def parse_config(text: str, file: Path) -> CollectorConfig:
    """Parse the YAML text of `file` (used for the error messages and relative paths)."""
    return _checked(validate(CollectorConfig, parse_yaml(text, str(file)), _context(file)))


def load_config(path: Path) -> CollectorConfig:
    """Read and validate a config file; ConfigError (file, line, key, problem) when invalid."""
    return _checked(validate(CollectorConfig, read_yaml(path), _context(path)))


def _checked(cfg: CollectorConfig) -> CollectorConfig:
    """What one section alone cannot say: partitions need a shared PostgreSQL and an inventory
    (the partition map is computed from it)."""
    if cfg.scale.partitions:
        if not cfg.store.url.startswith("postgresql"):
            raise ConfigError(
                str(cfg.source), "scale.partitions", "needs store.url on PostgreSQL (shared)"
            )
        if cfg.rules.inventory is None:
            raise ConfigError(str(cfg.source), "scale.partitions", "needs rules.inventory")
    return cfg
