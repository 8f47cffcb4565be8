"""SNMP polling (pysnmp 7, asyncio): v2c and v3 authPriv, one GET plus bulk walks per device.

Every target has its own task that polls at ``interval_s``; a semaphore bounds how many polls
run at once, so one slow or dead device holds one slot for at most its timeout and never delays
the others. A device that does not answer produces no sample at all (absence, which the rules
engine turns into ``device_offline``), counted as ``timeout`` in the metrics. Results become
telemetry (``boot="snmp"``, increasing ``seq``) and go down the same pipeline as MQTT.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from agent import wire
from collector.config.snmp import SnmpConfig, SnmpTarget, SnmpV3User
from collector.intake.envelope import Envelope
from collector.intake.snmp_profiles import Profile, ProfileError
from collector.metrics import Metrics

log = logging.getLogger("fleetdesk.collector.snmp")

SNMP_BOOT = "snmp"
MAX_REPETITIONS = 25


@dataclass(frozen=True, slots=True)
class PollResult:
    target: SnmpTarget
    metrics: dict[str, wire.MetricValue] | None  # None: no answer (absence)
    outcome: str  # ok, timeout, error
    detail: str = ""


def auth_protocols() -> tuple[dict[str, Any], dict[str, Any]]:
    import pysnmp.hlapi.v3arch.asyncio as h

    auth = {
        "md5": h.USM_AUTH_HMAC96_MD5,
        "sha": h.USM_AUTH_HMAC96_SHA,
        "sha224": h.USM_AUTH_HMAC128_SHA224,
        "sha256": h.USM_AUTH_HMAC192_SHA256,
        "sha384": h.USM_AUTH_HMAC256_SHA384,
        "sha512": h.USM_AUTH_HMAC384_SHA512,
    }
    priv = {
        "des": h.USM_PRIV_CBC56_DES,
        "aes": h.USM_PRIV_CFB128_AES,
        "aes192": h.USM_PRIV_CFB192_AES,
        "aes256": h.USM_PRIV_CFB256_AES,
    }
    return auth, priv


def credentials(target: SnmpTarget) -> Any:
    import pysnmp.hlapi.v3arch.asyncio as h

    if target.version == "2c":
        return h.CommunityData(target.community, mpModel=1)
    user: SnmpV3User | None = target.v3
    assert user is not None
    auth, priv = auth_protocols()
    return h.UsmUserData(
        user.user,
        authKey=user.auth_key,
        privKey=user.priv_key,
        authProtocol=auth[user.auth_protocol],
        privProtocol=priv[user.priv_protocol],
    )


class Poller:
    def __init__(
        self,
        cfg: SnmpConfig,
        profiles: dict[str, Profile],
        deliver: Callable[[list[Envelope]], object],
        metrics: Metrics,
    ) -> None:
        import pysnmp.hlapi.v3arch.asyncio as h

        self.cfg = cfg
        self.profiles = profiles
        self.deliver = deliver
        self.metrics = metrics
        self.engine = h.SnmpEngine()
        self.semaphore = asyncio.Semaphore(cfg.concurrency)
        self.seq: dict[str, int] = {}
        for target in cfg.targets:
            if target.profile not in profiles:
                known = ", ".join(sorted(profiles)) or "none"
                raise ProfileError(
                    "snmp.devices",
                    target.device,
                    f"unknown profile {target.profile!r} (known: {known})",
                )

    async def poll(self, target: SnmpTarget) -> PollResult:
        """One poll of one device, bounded by the semaphore; never raises."""
        async with self.semaphore:
            started = time.perf_counter()
            try:
                result = await self._poll(target)
            except TimeoutError:
                result = PollResult(target, None, "timeout", "no answer")
            except Exception as exc:  # a malformed answer must not stop the poller
                result = PollResult(target, None, "error", f"{type(exc).__name__}: {exc}")
            self.metrics.snmp_poll_seconds.observe(time.perf_counter() - started)
        self.metrics.snmp_polls.labels(result.outcome).inc()
        if result.outcome != "ok":
            log.info("snmp %s %s: %s", target.device, result.outcome, result.detail[:200])
        return result

    async def _poll(self, target: SnmpTarget) -> PollResult:
        import pysnmp.hlapi.v3arch.asyncio as h

        profile = self.profiles[target.profile]
        # An overall bound, so a device that answers slowly to each request still yields
        # its slot: per request timeout x tries, for the GET and every walked column.
        requests = 1 + sum(1 + len(t.columns) for t in profile.tables)
        budget = self.cfg.timeout_s * (self.cfg.retries + 1) * requests + 1.0
        async with asyncio.timeout(budget):
            transport = await h.UdpTransportTarget.create(
                (target.host, target.port), timeout=self.cfg.timeout_s, retries=self.cfg.retries
            )
            auth = credentials(target)
            scalars: dict[str, Any] = {}
            oids = profile.scalar_oids()
            if oids:
                err, status, _index, binds = await h.get_cmd(
                    self.engine,
                    auth,
                    transport,
                    h.ContextData(),
                    *(h.ObjectType(h.ObjectIdentity(o)) for o in oids),
                    lookupMib=False,
                )
                if err:
                    return self._failed(target, err)
                if not status:
                    scalars = {str(name): _value(val) for name, val in binds}
            tables: dict[str, dict[str, Any]] = {}
            for table in profile.tables:
                for column in (table.label, *(c.oid for c in table.columns)):
                    rows: dict[str, Any] = {}
                    async for err, status, _index, binds in h.bulk_walk_cmd(
                        self.engine,
                        auth,
                        transport,
                        h.ContextData(),
                        0,
                        MAX_REPETITIONS,
                        h.ObjectType(h.ObjectIdentity(column)),
                        lookupMib=False,
                        lexicographicMode=False,
                    ):
                        if err:
                            return self._failed(target, err)
                        if status:
                            break
                        for name, val in binds:
                            rows[str(name)] = _value(val)
                    tables[column] = rows
        return PollResult(target, profile.metrics(scalars, tables), "ok")

    @staticmethod
    def _failed(target: SnmpTarget, err: Any) -> PollResult:
        outcome = "timeout" if type(err).__name__ == "RequestTimedOut" else "error"
        return PollResult(target, None, outcome, str(err))

    def to_envelope(self, result: PollResult, now: float) -> Envelope | None:
        if not result.metrics:
            return None
        target = result.target
        seq = self.seq.get(target.device, 0)
        self.seq[target.device] = seq + 1
        msg = wire.Telemetry(
            device=target.device,
            boot=SNMP_BOOT,
            seq=seq,
            ts=datetime.fromtimestamp(now, UTC),
            metrics=result.metrics,
        )
        return Envelope("", b"", now, msg=msg, source="snmp", tenant=target.tenant)

    async def run_target(self, target: SnmpTarget, stop: asyncio.Event) -> None:
        while not stop.is_set():
            started = time.monotonic()
            result = await self.poll(target)
            env = self.to_envelope(result, time.time())
            if env is not None:
                self.deliver([env])
            delay = max(0.0, self.cfg.interval_s - (time.monotonic() - started))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=delay)

    async def run(self, stop: asyncio.Event) -> None:
        try:
            async with asyncio.TaskGroup() as tg:
                for target in self.cfg.targets:
                    tg.create_task(self.run_target(target, stop), name=f"snmp-{target.device}")
        finally:
            self.engine.close_dispatcher()


def _value(val: Any) -> Any:
    """A pysnmp value as a Python number or string (None for noSuchObject and friends)."""
    name = type(val).__name__
    if name in ("NoSuchObject", "NoSuchInstance", "EndOfMibView", "Null"):
        return None
    if name in ("Integer", "Integer32", "Counter32", "Counter64", "Gauge32", "Unsigned32"):
        return int(val)
    if name == "TimeTicks":
        return int(val)
    if name == "OctetString":
        return val.asOctets().decode("utf-8", errors="replace")
    return val.prettyPrint()
