"""The agent's typed configuration: frozen NamedTuples and their limits.

:mod:`agent.config` reads a TOML file into these; the rest of the agent takes them as given.
NamedTuples, not dataclasses: importing ``dataclasses`` costs a gateway 0.9 MB (``inspect``,
``ast``, ...). The broker password is kept out of ``repr`` so it never reaches a log.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final, Literal, NamedTuple

MIN_INTERVAL_S: Final = 0.05
MAX_INTERVAL_S: Final = 86_400.0
MIN_SPOOL_BYTES: Final = 1024
DEFAULT_SPOOL_BYTES: Final = 16 * 1024 * 1024
MAX_EXEC_NAME: Final = 32
MAX_INTERFACES: Final = 48  # 5 metrics each stays inside wire.MAX_METRICS with room to spare


class ConfigError(Exception):
    """An invalid configuration file: one line naming file, key, line and reason."""

    def __init__(self, source: str, key: str, reason: str, line: int | None = None) -> None:
        self.source, self.key, self.reason, self.line = source, key, reason, line
        where = f"{source}:{line}" if line else source
        super().__init__(f"{where}: {key}: {reason}" if key else f"{where}: {reason}")


# --------------------------------------------------------------------------- the typed config


class DeviceConfig(NamedTuple):
    id: str
    tenant: str
    model: str | None = None  # None: detect (OpenWrt release, device tree, DMI)
    serial: str | None = None
    firmware: str | None = None
    labels: dict[str, str] = {}  # noqa: RUF012 (shared default: never mutated, only copied)


class BrokerUrl(NamedTuple):
    host: str
    port: int
    tls: bool

    def __str__(self) -> str:
        return f"{'mqtts' if self.tls else 'mqtt'}://{self.host}:{self.port}"


class TlsConfig(NamedTuple):
    ca_file: Path | None = None  # None: the system's trust store
    cert_file: Path | None = None
    key_file: Path | None = None


class BrokerConfig(NamedTuple):
    urls: tuple[BrokerUrl, ...]
    username: str | None = None
    password: str | None = None  # kept out of repr (below)
    tls: TlsConfig = TlsConfig()
    client_id: str = ""  # empty: "fleetdesk-<tenant>-<device>"
    protocol: Literal["3.1.1", "5"] = "3.1.1"
    keepalive_s: int = 30
    connect_timeout_s: float = 10.0
    reconnect_min_s: float = 1.0
    reconnect_max_s: float = 60.0

    def __repr__(self) -> str:
        # Every field but the password, so a logged config never shows it.
        shown = (f"{n}={getattr(self, n)!r}" for n in self._fields if n != "password")
        return f"{type(self).__name__}({', '.join(shown)})"


class SpoolConfig(NamedTuple):
    path: Path
    max_bytes: int = DEFAULT_SPOOL_BYTES
    inflight: int = 200  # publishes awaiting PUBACK at once
    drain_rate: float = 50.0  # backlog reports per second once the link is back


class SystemOptions(NamedTuple):
    disk_path: str = "/"


class InterfacesOptions(NamedTuple):
    include: tuple[str, ...] = ()  # empty: every interface but the excluded ones
    exclude: tuple[str, ...] = ("lo",)


class ReachTarget(NamedTuple):
    name: str  # metric name part: ping_<name>_loss_pct
    host: str
    port: int | None = None
    method: Literal["auto", "icmp", "tcp"] = "auto"


class ReachabilityOptions(NamedTuple):
    targets: tuple[ReachTarget, ...]
    count: int = 3  # type: ignore[assignment]  # shadows tuple.count (never called)
    timeout_s: float = 1.0


class CellularOptions(NamedTuple):
    source: Literal["mmcli", "at"] = "mmcli"
    modem: str = "any"  # mmcli -m <modem>
    mmcli: str = "mmcli"
    at_port: str | None = None
    at_baud: int = 115200
    timeout_s: float = 5.0


class SerialOptions(NamedTuple):
    port: str  # e.g. /dev/ttyS1


class ExecCheck(NamedTuple):
    name: str
    command: tuple[str, ...]
    timeout_s: float = 5.0


class ProbesConfig(NamedTuple):
    system: SystemOptions | None = None
    interfaces: InterfacesOptions | None = None
    reachability: ReachabilityOptions | None = None
    cellular: CellularOptions | None = None
    serial: SerialOptions | None = None
    exec: tuple[ExecCheck, ...] = ()


class CommandsConfig(NamedTuple):
    """Who may command the agent and within which bounds (docs/agent.md, "Commands")."""

    key: bytes | None = None  # HMAC-SHA256 key; kept out of repr (below)
    trust_broker_acl: bool = False  # accept unsigned commands: the broker ACL is the guard
    max_ttl_s: float = 3600.0  # exp at most this far ahead
    clock_skew_s: float = 60.0  # tolerance between the operator's and the gateway's clocks
    min_interval_s: float = 1.0  # bounds of set_interval
    max_interval_s: float = MAX_INTERVAL_S
    ping_targets: tuple[str, ...] = ()  # "host" / "host:port" the ping command may probe

    def __repr__(self) -> str:
        shown = (f"{n}={getattr(self, n)!r}" for n in self._fields if n != "key")
        return f"{type(self).__name__}({', '.join(shown)})"


class AgentConfig(NamedTuple):
    source: str
    device: DeviceConfig
    broker: BrokerConfig
    spool: SpoolConfig
    probes: ProbesConfig
    interval_s: float = 10.0
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    host_root: Path = Path("/")  # where /proc, /sys, /etc and /dev are read (containers)
    commands: CommandsConfig = CommandsConfig()
