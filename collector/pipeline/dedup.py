"""The device registry in memory, its de-duplication state, and the two stages that use it.

Per device the collector keeps one small slotted object (a few hundred bytes with its id): who
it is, when it was last seen, and the sequence state that drops duplicates on
``(device, boot, seq)``: the highest ``seq`` of the current ``boot`` and a bitmap of the
``window`` sequence numbers below it, so out-of-order spool replays still fill their gaps once.
Every verdict costs O(1) whatever the numbers: a jump past the window clears the bitmap instead
of shifting it, and a jump beyond ``max_jump`` is refused (``seq_jump``) for that report alone.
A ``seq`` at or below the highest is also judged by its timestamp: stamped after the newest
report of the epoch it cannot be a repeat (a repeat carries its original ``ts``), so the
device's counter went back (its spool was restored from a copy, or set aside) and a new epoch
of the same boot starts there (``REWOUND``); stamped before, inside the window the bitmap
decides, and more than ``window`` below it is a late report too old to tell (a long backlog
draining beside live reports): accepted, not remembered (``OLD``).
Changed devices are marked dirty and written to the store in batches by a writer task.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime

from agent import wire
from collector.intake.deadletter import Rejects
from collector.intake.envelope import Envelope
from collector.metrics import Metrics
from collector.pipeline.identity import UNASSIGNED_STATE, Identity
from collector.rules.engine import Engine
from collector.rules.faults import FaultEvent
from collector.rules.ruleset import Offline
from collector.store import DeviceRow

NEW, DUPLICATE, LATE, OLD, REWOUND, JUMP = 0, -1, -2, -3, -4, -5
SEQ_JUMP = "seq_jump"  # reject reason: a jump beyond intake.max_seq_jump
DEFAULT_MAX_JUMP = 100_000_000  # three years of one report a second


class Device:
    __slots__ = (
        "boot",
        "firmware",
        "gaps",
        "high",
        "id",
        "last_seen",
        "mask",
        "model",
        "newest",
        "serial",
        "source",
        "state",
        "tenant",
        "unassigned",
    )

    def __init__(self, device_id: str, tenant: str, source: str, unassigned: bool) -> None:
        self.id = device_id
        self.tenant = tenant
        self.source = source
        self.unassigned = unassigned
        self.boot = ""
        self.high = -1
        self.mask = 0
        self.gaps = 0
        self.newest = float("-inf")  # the newest report timestamp of the epoch
        self.last_seen: float | None = None
        self.state = "unknown"
        self.model = self.serial = self.firmware = ""

    def see(
        self, boot: str, seq: int, window: int, ts: float = 0.0, max_jump: int = DEFAULT_MAX_JUMP
    ) -> int:
        """``NEW``/``DUPLICATE``/``LATE``/``OLD``/``REWOUND``/``JUMP``, or the count (> 0) of
        sequence numbers skipped. O(1): no shift is wider than ``window``."""
        if boot != self.boot:  # a new sequence epoch (reboot or first sight)
            self.boot, self.high, self.mask, self.newest = boot, seq, 0, ts
            return NEW
        step = seq - self.high
        if step > 0:
            if step > max_jump:
                return JUMP  # absurd: refused, the epoch is left as it was
            if step > window:
                self.mask = 0  # everything remembered fell out of the window
            else:
                self.mask = ((self.mask << step) | (1 << (step - 1))) & ((1 << window) - 1)
            self.high = seq
            self.newest = max(self.newest, ts)
            return step - 1
        if ts > self.newest:  # not above the highest, yet newer than all: the counter went
            self.high, self.mask, self.newest = seq, 0, ts  # back; a new epoch of this boot
            return REWOUND
        if step == 0:
            return DUPLICATE
        if -step > window:
            return OLD  # too old to tell from the bitmap: accepted, not remembered
        bit = 1 << (-step - 1)
        if self.mask & bit:
            return DUPLICATE  # at-least-once delivery repeats
        self.mask |= bit
        return LATE

    def row(self) -> DeviceRow:
        return DeviceRow(
            id=self.id,
            tenant=self.tenant,
            model=self.model,
            serial=self.serial,
            firmware=self.firmware,
            source=self.source,
            state=self.state,
            boot=self.boot,
            last_seq=self.high,
            gaps=self.gaps,
            seen_mask=self.mask,
            last_seen=self.last_seen,
            unassigned=self.unassigned,
        )


class Registry:
    def __init__(
        self,
        metrics: Metrics,
        *,
        window: int = 64,
        known: Callable[[str], bool] | None = None,
        identity: Identity | None = None,
    ) -> None:
        self.metrics = metrics
        self.window = window
        self.identity = identity
        self.known = identity.known if identity is not None and known is None else known
        self.devices: dict[str, Device] = {}
        self.dirty: set[Device] = set()

    def restore(self, rows: Iterable[DeviceRow]) -> None:
        for row in rows:
            dev = Device(row.id, row.tenant, row.source, row.unassigned)
            dev.boot, dev.high, dev.mask, dev.gaps = row.boot, row.last_seq, row.seen_mask, row.gaps
            dev.last_seen, dev.state = row.last_seen, row.state
            dev.newest = row.last_seen if row.last_seen is not None else float("-inf")
            dev.model, dev.serial, dev.firmware = row.model, row.serial, row.firmware
            self.devices[row.id] = dev
        self.metrics.devices.set(len(self.devices))

    def serial(self, device_id: str) -> str:
        """The serial number the device last reported ("" when unknown)."""
        dev = self.devices.get(device_id)
        return dev.serial if dev is not None else ""

    def get(self, device_id: str, tenant: str, source: str) -> Device:
        dev = self.devices.get(device_id)
        if dev is None:
            unassigned = self.known is not None and not self.known(device_id)
            if self.identity is not None:  # the inventory's tenant, whoever reports first
                tenant = self.identity.tenant(device_id) or tenant
            dev = self.devices[device_id] = Device(device_id, tenant, source, unassigned)
            self.metrics.devices.set(len(self.devices))
        return dev

    def bound(self, device_id: str) -> str | None:
        """The tenant an MQTT device was registered under (None: not registered over MQTT)."""
        dev = self.devices.get(device_id)
        return dev.tenant if dev is not None and dev.source == "mqtt" else None

    def take_dirty(self) -> list[DeviceRow]:
        rows = [dev.row() for dev in self.dirty]
        self.dirty.clear()
        return rows


class DedupStage:
    """Drops repeats of ``(device, boot, seq)``; counts gaps per device; refuses absurd jumps
    (``seq_jump``, a dead letter) for the report alone: the batch and other devices go on."""

    def __init__(
        self,
        registry: Registry,
        metrics: Metrics,
        rejects: Rejects | None = None,
        max_jump: int = DEFAULT_MAX_JUMP,
    ) -> None:
        self.registry = registry
        self.metrics = metrics
        self.rejects = rejects
        self.max_jump = max_jump

    def __call__(self, batch: list[Envelope]) -> list[Envelope]:
        out: list[Envelope] = []
        dups = gaps = late = rewound = 0
        window, max_jump = self.registry.window, self.max_jump
        get = self.registry.get
        for env in batch:
            msg = env.msg
            if env.source != "mqtt" or not isinstance(msg, wire.Telemetry | wire.Event):
                out.append(env)
                continue
            dev = get(msg.device, env.tenant, env.source)
            verdict = dev.see(msg.boot, msg.seq, window, msg.ts.timestamp(), max_jump)
            if verdict == DUPLICATE:
                dups += 1
                continue
            if verdict == JUMP:
                self._jump(env, dev, msg.seq)
                continue
            if verdict == LATE:
                late += 1
                dev.gaps = max(0, dev.gaps - 1)
            elif verdict == REWOUND:
                rewound += 1
            elif verdict > 0:
                gaps += verdict
                dev.gaps += verdict
            out.append(env)
        if dups:
            self.metrics.duplicate.inc(dups)
        if gaps:
            self.metrics.seq_gaps.inc(gaps)
        if late:
            self.metrics.seq_late.inc(late)
        if rewound:
            self.metrics.seq_rewinds.inc(rewound)
        if self.rejects is not None:
            self.rejects.count()
        return out

    def _jump(self, env: Envelope, dev: Device, seq: int) -> None:
        detail = f"seq {seq} is {seq - dev.high} past {dev.high} (max_seq_jump {self.max_jump})"
        if self.rejects is not None:
            self.rejects.reject(env.topic, env.payload, env.at, SEQ_JUMP, detail)
        else:
            self.metrics.rejects.labels(SEQ_JUMP).inc()
            self.metrics.rejected.inc()


class RegistryStage:
    """Keeps each device's last sighting, state and birth details; marks it for the store."""

    def __init__(self, registry: Registry, metrics: Metrics) -> None:
        self.registry = registry
        self.metrics = metrics

    def __call__(self, batch: list[Envelope]) -> list[Envelope]:
        get = self.registry.get
        dirty = self.registry.dirty
        identity = self.registry.identity
        judged = identity.judged if identity is not None else _judged
        for env in batch:
            msg = env.msg
            device = getattr(msg, "device", None)
            if device is None:
                continue
            dev = get(device, env.tenant, env.source)
            dev.last_seen = env.at
            if isinstance(msg, wire.State):
                dev.state = msg.state.value
            elif isinstance(msg, wire.Birth):
                dev.model, dev.serial, dev.firmware = msg.model, msg.serial, msg.firmware
                dev.state = "online"
            elif dev.state in ("unknown", UNASSIGNED_STATE):
                dev.state = "online"
            if dev.unassigned and not judged(device, dev.tenant):
                dev.state = UNASSIGNED_STATE  # unknown, reporting: listed, not judged
            dirty.add(dev)
        self.metrics.accepted.inc(len(batch))
        return batch


class RegistryFaults:
    """A fault stage keeping the registry's state in step with the engine: a device is
    ``offline`` while its offline fault kind is active there (raised, or held back by a site
    outage, a parent or maintenance), ``online`` again once it is not."""

    def __init__(self, registry: Registry, engine: Engine) -> None:
        self.registry = registry
        self.engine = engine
        offline = engine.rules.of_type(Offline)
        self.kind = offline[0].fault if offline else None
        for name in list(registry.devices):  # a restored engine's view wins over stored rows
            self._sync(name)

    def on_fault(self, event: FaultEvent) -> None:
        if self.kind is None:
            return
        for name in event.fault.devices or (event.fault.subject,):
            self._sync(name)

    def advance(self, now: datetime) -> None:
        pass

    def _sync(self, name: str) -> None:
        dev = self.registry.devices.get(name)
        st = self.engine.state.devices.get(name)
        if dev is None or st is None or self.kind is None:
            return
        offline = self.kind in st.kinds
        state = "offline" if offline else ("online" if dev.state == "offline" else dev.state)
        if state != dev.state:
            dev.state = state
            self.registry.dirty.add(dev)


def _judged(_device: str, _tenant: str) -> bool:
    return True
