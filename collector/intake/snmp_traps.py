"""SNMP trap receiver (v2c and v3 notifications) on a configured UDP port.

pysnmp checks the community (v2c) or the USM user, keys and the sender's engine id (v3) and
silently drops what fails; the receiver reads pysnmp's own counters (snmpInBadCommunityNames,
usmStats*) to count those as ``bad_auth``. An authenticated trap from an address that is not a
known device is counted ``unknown_source`` and dropped; a trap whose OID is neither a standard
generic trap nor a configured enterprise trap is counted ``ignored``. The rest become
``TrapNotice`` inputs for the rules engine.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from collector.config.snmp import SnmpTarget, TrapConfig
from collector.intake.envelope import Envelope
from collector.metrics import Metrics
from collector.rules.inputs import STANDARD_TRAPS

log = logging.getLogger("fleetdesk.collector.traps")

SNMP_TRAP_OID: Final = "1.3.6.1.6.3.1.1.4.1.0"
# Varbinds rules refer to by name (``key: ifIndex``): object OID (without the instance) -> name.
NAMED_VARBINDS: Final = {
    "1.3.6.1.2.1.1.3": "sysUpTime",
    "1.3.6.1.6.3.1.1.4.1": "snmpTrapOID",
    "1.3.6.1.2.1.2.2.1.1": "ifIndex",
    "1.3.6.1.2.1.2.2.1.2": "ifDescr",
    "1.3.6.1.2.1.2.2.1.7": "ifAdminStatus",
    "1.3.6.1.2.1.2.2.1.8": "ifOperStatus",
    "1.3.6.1.2.1.31.1.1.1.1": "ifName",
}
_BAD_AUTH_COUNTERS: Final = (
    ("__SNMPv2-MIB", "snmpInBadCommunityNames"),
    ("__SNMP-USER-BASED-SM-MIB", "usmStatsUnknownUserNames"),
    ("__SNMP-USER-BASED-SM-MIB", "usmStatsWrongDigests"),
    ("__SNMP-USER-BASED-SM-MIB", "usmStatsUnknownEngineIDs"),
    ("__SNMP-USER-BASED-SM-MIB", "usmStatsDecryptionErrors"),
    ("__SNMP-USER-BASED-SM-MIB", "usmStatsNotInTimeWindows"),
)


@dataclass(frozen=True, slots=True)
class TrapNotice:
    """An authenticated trap from a known device; the rules stage turns it into ``Trap``."""

    device: str
    tenant: str
    name: str
    oid: str
    varbinds: dict[str, str] = field(default_factory=dict)
    source: str = ""


def named(varbinds: dict[str, str]) -> dict[str, str]:
    """The varbinds by numeric OID, plus the well-known ones by name (instance dropped)."""
    out = dict(varbinds)
    for oid, value in varbinds.items():
        name = NAMED_VARBINDS.get(oid.rpartition(".")[0])
        if name is not None:
            out.setdefault(name, value)
    return out


def classify(varbinds: dict[str, str], enterprise: dict[str, str]) -> tuple[str, str] | None:
    """(name, trap OID) for a standard or configured trap, else None. Pure."""
    oid = varbinds.get(SNMP_TRAP_OID, "").lstrip(".")
    if oid in STANDARD_TRAPS:
        return STANDARD_TRAPS[oid], oid
    if oid in enterprise:
        return enterprise[oid], oid
    return None


class TrapReceiver:
    def __init__(
        self,
        cfg: TrapConfig,
        targets: tuple[SnmpTarget, ...],
        deliver: Callable[[list[Envelope]], object],
        metrics: Metrics,
        *,
        trap_names: Mapping[str, str] | None = None,
    ) -> None:
        self.cfg = cfg
        self.deliver = deliver
        self.metrics = metrics
        # enterprise trap OID -> name: the rules files' ``traps``, then the config's
        self.names = {**(trap_names or {}), **dict(cfg.enterprise)}
        # source address -> (device, tenant): configured sources, then polled targets' hosts
        self.sources: dict[str, tuple[str, str]] = {t.host: (t.device, t.tenant) for t in targets}
        tenants = {t.device: t.tenant for t in targets}
        for address, device in cfg.sources:
            self.sources[address] = (device, tenants.get(device, "default"))
        self._bad_auth_seen = 0
        self.engine: Any = None
        # Set once the UDP port is bound: traps sent from then on wait in the socket buffer.
        self.listening = asyncio.Event()

    def start(self) -> None:
        from pysnmp.carrier.asyncio.dgram import udp
        from pysnmp.entity import config, engine
        from pysnmp.entity.rfc3413 import ntfrcv
        from pysnmp.proto.api import v2c

        from collector.intake.snmp_poll import auth_protocols

        snmp = engine.SnmpEngine()
        # Bound here, not inside pysnmp's asynchronous endpoint set-up, so that the port is
        # taken (or the error raised) before start() returns.
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            sock.bind((self.cfg.host, self.cfg.port))
        except OSError:
            sock.close()
            raise
        sock.setblocking(False)
        config.add_transport(snmp, udp.DOMAIN_NAME, udp.UdpTransport().open_server_mode(sock=sock))
        for i, community in enumerate(self.cfg.communities):
            config.add_v1_system(snmp, f"trap-area-{i}", community)
        auth, priv = auth_protocols()
        for user in self.cfg.v3_users:
            kwargs: dict[str, Any] = {}
            if user.engine_id:
                hex_id = user.engine_id.lower().removeprefix("0x")
                kwargs["securityEngineId"] = v2c.OctetString(hexValue=hex_id)
            config.add_v3_user(
                snmp,
                user.user,
                auth[user.auth_protocol],
                user.auth_key,
                priv[user.priv_protocol],
                user.priv_key,
                **kwargs,
            )
        ntfrcv.NotificationReceiver(snmp, self._received)
        self.engine = snmp

    def _received(
        self,
        snmp: Any,
        _state: Any,
        _context_engine: Any,
        _context_name: Any,
        var_binds: Any,
        _cb: Any,
    ) -> None:
        now = time.time()
        ctx = snmp.observer.get_execution_context("rfc3412.receiveMessage:request")
        address = str(ctx["transportAddress"][0])
        binds = named({str(name): _text(value) for name, value in var_binds})
        known = self.sources.get(address)
        if known is None:
            self.metrics.snmp_traps.labels("unknown_source").inc()
            log.info("trap from unknown source %s dropped", address)
            return
        found = classify(binds, self.names)
        if found is None:
            self.metrics.snmp_traps.labels("ignored").inc()
            return
        name, oid = found
        device, tenant = known
        self.metrics.snmp_traps.labels("accepted").inc()
        notice = TrapNotice(device, tenant, name, oid, binds, address)
        self.deliver([Envelope("", b"", now, msg=notice, source="trap", tenant=tenant)])

    def count_bad_auth(self) -> None:
        """Fold pysnmp's authentication failure counters into our metrics."""
        if self.engine is None:
            return
        builder = self.engine.get_mib_builder()
        total = 0
        for module, symbol in _BAD_AUTH_COUNTERS:
            with contextlib.suppress(Exception):
                (counter,) = builder.import_symbols(module, symbol)
                total += int(counter.syntax)
        if total > self._bad_auth_seen:
            self.metrics.snmp_traps.labels("bad_auth").inc(total - self._bad_auth_seen)
            self._bad_auth_seen = total

    async def run(self, stop: asyncio.Event) -> None:
        self.start()
        self.listening.set()
        log.info("listening for SNMP traps on udp %s:%d", self.cfg.host, self.cfg.port)
        try:
            while not stop.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=0.5)
                self.count_bad_auth()
        finally:
            self.engine.close_dispatcher()


def _text(value: Any) -> str:
    name = type(value).__name__
    if name in ("ObjectIdentifier", "ObjectName"):
        return str(value)
    if name == "OctetString":
        return str(value.asOctets().decode("utf-8", errors="replace"))
    return str(value.prettyPrint())
