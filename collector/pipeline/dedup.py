"""The device registry in memory, its de-duplication state, and the two stages that use it.

Per device the collector keeps one small slotted object (a few hundred bytes with its id): who
it is, when it was last seen, and the sequence state that drops duplicates on
``(device, boot, seq)``: the highest ``seq`` of the current ``boot`` and a bitmap of the
``window`` sequence numbers below it, so out-of-order spool replays still fill their gaps once.
Changed devices are marked dirty and written to the store in batches by a writer task.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from agent import wire
from collector.intake.envelope import Envelope
from collector.metrics import Metrics
from collector.store import DeviceRow

NEW, DUPLICATE, LATE = 0, -1, -2


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
        self.last_seen: float | None = None
        self.state = "unknown"
        self.model = self.serial = self.firmware = ""

    def see(self, boot: str, seq: int, window: int) -> int:
        """``NEW``/``DUPLICATE``/``LATE``, or the count (> 0) of sequence numbers skipped."""
        if boot != self.boot:  # a new sequence epoch (reboot or first sight)
            self.boot, self.high, self.mask = boot, seq, 0
            return NEW
        step = seq - self.high
        if step > 0:
            self.mask = ((self.mask << step) | (1 << (step - 1))) & ((1 << window) - 1)
            self.high = seq
            return step - 1
        if step == 0:
            return DUPLICATE
        bit = 1 << (-step - 1)
        if -step > window or self.mask & bit:
            return DUPLICATE  # seen, or too old to tell: at-least-once delivery repeats
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
        self, metrics: Metrics, *, window: int = 64, known: Callable[[str], bool] | None = None
    ) -> None:
        self.metrics = metrics
        self.window = window
        self.known = known
        self.devices: dict[str, Device] = {}
        self.dirty: set[Device] = set()

    def restore(self, rows: Iterable[DeviceRow]) -> None:
        for row in rows:
            dev = Device(row.id, row.tenant, row.source, row.unassigned)
            dev.boot, dev.high, dev.mask, dev.gaps = row.boot, row.last_seq, row.seen_mask, row.gaps
            dev.last_seen, dev.state = row.last_seen, row.state
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
            dev = self.devices[device_id] = Device(device_id, tenant, source, unassigned)
            self.metrics.devices.set(len(self.devices))
        return dev

    def take_dirty(self) -> list[DeviceRow]:
        rows = [dev.row() for dev in self.dirty]
        self.dirty.clear()
        return rows


class DedupStage:
    """Drops repeats of ``(device, boot, seq)``; counts gaps per device."""

    def __init__(self, registry: Registry, metrics: Metrics) -> None:
        self.registry = registry
        self.metrics = metrics

    def __call__(self, batch: list[Envelope]) -> list[Envelope]:
        out: list[Envelope] = []
        dups = gaps = late = 0
        window = self.registry.window
        get = self.registry.get
        for env in batch:
            msg = env.msg
            if env.source != "mqtt" or not isinstance(msg, wire.Telemetry | wire.Event):
                out.append(env)
                continue
            dev = get(msg.device, env.tenant, env.source)
            verdict = dev.see(msg.boot, msg.seq, window)
            if verdict == DUPLICATE:
                dups += 1
                continue
            if verdict == LATE:
                late += 1
                dev.gaps = max(0, dev.gaps - 1)
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
        return out


class RegistryStage:
    """Keeps each device's last sighting, state and birth details; marks it for the store."""

    def __init__(self, registry: Registry, metrics: Metrics) -> None:
        self.registry = registry
        self.metrics = metrics

    def __call__(self, batch: list[Envelope]) -> list[Envelope]:
        get = self.registry.get
        dirty = self.registry.dirty
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
            elif dev.state == "unknown":
                dev.state = "online"
            dirty.add(dev)
        self.metrics.accepted.inc(len(batch))
        return batch
