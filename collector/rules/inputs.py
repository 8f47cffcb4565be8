"""Inputs to the engine besides the wire messages: SNMP traps and maintenance windows."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import Final

from agent import wire

# The generic traps of SNMPv2-MIB / IF-MIB, by OID (snmpTrapOID values).
STANDARD_TRAPS: Final[Mapping[str, str]] = MappingProxyType(
    {
        "1.3.6.1.6.3.1.1.5.1": "coldStart",
        "1.3.6.1.6.3.1.1.5.2": "warmStart",
        "1.3.6.1.6.3.1.1.5.3": "linkDown",
        "1.3.6.1.6.3.1.1.5.4": "linkUp",
        "1.3.6.1.6.3.1.1.5.5": "authenticationFailure",
    }
)


@dataclass(frozen=True, slots=True)
class Trap:
    """An SNMP trap already attributed to a device (the receiver maps source address -> id).

    ``name`` is a standard trap name (linkDown, coldStart, ...) or a configured enterprise name
    (dyingGasp, ...); ``oid`` is kept for display.
    """

    device: str
    name: str
    oid: str | None = None
    varbinds: Mapping[str, object] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Maintenance:
    """An announced maintenance window for one device or one site (exactly one of them)."""

    start: datetime
    end: datetime
    device: str | None = None
    site: str | None = None

    def __post_init__(self) -> None:
        if (self.device is None) == (self.site is None):
            raise ValueError("a maintenance window names exactly one of device or site")
        if self.end <= self.start:
            raise ValueError("a maintenance window must end after it starts")


Input = wire.Message | Trap | Maintenance
