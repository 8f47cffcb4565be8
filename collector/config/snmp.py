"""The collector config's SNMP section: polled devices, SNMPv3 users and the trap receiver."""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
    ValidationInfo,
    field_validator,
)

from collector.config.typed import (
    FilePath,
    Int,
    Listen,
    Pairs,
    Seconds,
    Section,
    Text,
    as_text,
    listen_default,
)

# Choices are text: `version: 3` is the string "3".
AuthProtocol = Annotated[
    Literal["md5", "sha", "sha224", "sha256", "sha384", "sha512"], BeforeValidator(as_text)
]
PrivProtocol = Annotated[Literal["des", "aes", "aes192", "aes256"], BeforeValidator(as_text)]
SnmpVersion = Annotated[Literal["2c", "3"], BeforeValidator(as_text)]


def _rfc3414(key: str) -> str:
    if len(key) < 8:
        raise ValueError("must be at least 8 characters (RFC 3414)")
    return key


V3Key = Annotated[Text, AfterValidator(_rfc3414)]


class SnmpV3User(Section):
    user: Text
    """SNMPv3 user name."""
    auth_protocol: AuthProtocol = "sha"
    """Authentication protocol (HMAC)."""
    auth_key: V3Key = Field(repr=False)
    """Authentication pass phrase (8 characters at least)."""
    priv_protocol: PrivProtocol = "aes"
    """Privacy (encryption) protocol."""
    priv_key: V3Key = Field(repr=False)
    """Privacy pass phrase (8 characters at least)."""
    engine_id: Text | None = None
    """Hex; the trap sender's engine id, for v3 traps."""


class SnmpTarget(Section):
    device: Text
    """Device id (as in the inventory)."""
    tenant: Text = "default"
    """Tenant the device's telemetry and faults belong to."""
    host: Text
    """Address polled."""
    port: Int = Field(default=161, ge=1, le=65535)
    """UDP port of the device's SNMP agent."""
    profile: Text = "router"
    """SNMP profile (`snmp/<name>.yaml` in the profiles folder)."""
    version: SnmpVersion = "2c"
    """SNMP version: "2c" (community) or "3" (user with `v3`)."""
    community: Text = Field(default="public", repr=False)
    """SNMPv2c community."""
    v3: SnmpV3User | None = Field(default=None, validate_default=True)
    """The SNMPv3 user (authPriv), for version 3."""

    @field_validator("v3")
    @classmethod
    def _for_version_3(cls, value: SnmpV3User | None, info: ValidationInfo) -> SnmpV3User | None:
        version = info.data.get("version")
        if version == "3" and value is None:
            raise ValueError("is required for version 3")
        if version == "2c" and value is not None:
            raise ValueError('is only for version "3"')
        return value


def _trap_oids(pairs: tuple[tuple[str, str], ...]) -> tuple[tuple[str, str], ...]:
    return tuple((oid.lstrip("."), name) for oid, name in pairs)


class TrapConfig(Section):
    listen: Listen = listen_default("127.0.0.1:1162")
    """UDP address; `0.0.0.0:162` receives from the network (needs privileges)."""
    communities: tuple[Text, ...] = Field(default=("public",), repr=False)
    """SNMPv2c communities accepted."""
    v3_users: tuple[SnmpV3User, ...] = ()
    """SNMPv3 users accepted (with the sender's `engine_id`)."""
    sources: Pairs = ()
    """Trap sender address -> device id (polled devices are known by their host)."""
    enterprise: Annotated[Pairs, AfterValidator(_trap_oids)] = ()
    """Trap OID -> event name for the rules."""

    @property
    def host(self) -> str:
        return self.listen.host

    @property
    def port(self) -> int:
        return self.listen.port


class SnmpConfig(Section):
    NULL_IS_EMPTY: ClassVar[frozenset[str]] = frozenset(
        {"traps"}
    )  # `traps:` alone listens with the defaults

    profiles_dir: FilePath | None = None
    """Folder of SNMP profiles; none: the shipped ones."""
    interval_s: Seconds = Field(default=60.0, ge=0.1)
    """Poll interval."""
    timeout_s: Seconds = Field(default=2.0, ge=0.05)
    """Wait for an answer, per request."""
    retries: Int = Field(default=1, ge=0, le=10)
    """Retries of a request without an answer."""
    concurrency: Int = Field(default=32, ge=1, le=10_000)
    """Polls in flight at once."""
    devices: tuple[SnmpTarget, ...] = ()
    """Devices without the agent, polled every `interval_s`."""
    traps: TrapConfig | None = None
    """The trap receiver; none: no traps."""

    @property
    def targets(self) -> tuple[SnmpTarget, ...]:
        return self.devices
