"""The agent's main loop: measure on schedule, spool, publish, drain, answer commands.

One thread owns the spool and the MQTT link and waits in ``select`` on the broker socket and a
wake-up socket (signals and the probe worker write to it). Probes run on a second thread
(:mod:`agent.probe_worker`) so a slow ``ping`` or ``mmcli`` never stalls publishing; what goes
out when, and how many at once, is :mod:`agent.publisher`'s; commands are :mod:`agent.commands`'.
When the spool cannot take a message (full or failing disk, see :mod:`agent.spool_guard`) it is
published directly and the telemetry says so (``agent_spool_ok``, ``agent_spool_errors``).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import queue
import signal
import socket
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final, NamedTuple

from agent import __version__, wire
from agent.config_types import AgentConfig
from agent.identity import resolve
from agent.mqtt import Link, Will, backoff_delay
from agent.probe_worker import Job, JobDone, ProbeWorker, run_probe
from agent.probes import ProbeEvent, ProbeResult, Reading, Reason, Unavailable, build_probes
from agent.publisher import SpoolPublisher
from agent.spool_guard import Notice, SpoolGuard

if TYPE_CHECKING:
    from agent.commands import Commands

__all__ = ["Agent", "dying_gasp_now", "run_probe"]

log = logging.getLogger("fleetdesk.agent")

SHUTDOWN_FLUSH_S: Final = 2.0
SPOOL_METRICS: Final = 4  # spool_pending, spool_dropped, agent_spool_ok, agent_spool_errors


class Emitted(NamedTuple):
    """Where a message went: a spool entry (``entry``), or published directly (``mid``)."""

    seq: int
    entry: int | None
    mid: int | None


def _now() -> datetime:
    return datetime.now(UTC)


# --------------------------------------------------------------------------- the agent


class Agent:
    def __init__(self, config: AgentConfig) -> None:
        self.config = config
        device = config.device
        self.device_id = device.id
        self.topic = {k: wire.topic(device.tenant, device.id, k) for k in wire.Kind}
        self.interval_s = config.interval_s
        self.identity = resolve(device, config.host_root)
        self.probes = build_probes(config.probes, config.host_root)
        self.store = SpoolGuard(config.spool.path, config.spool.max_bytes)
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        client_id = config.broker.client_id or f"fleetdesk-{device.tenant}-{device.id}"[:64]
        will = Will(self.topic[wire.Kind.STATE], self._state(wire.DeviceState.OFFLINE))
        self.link = Link(config.broker, client_id, will, self)
        self.worker = ProbeWorker(self.probes, self.wake)
        spool = config.spool
        self.publisher = SpoolPublisher(self.store, self.link, spool.inflight, spool.drain_rate)
        self._commands: Commands | None = None
        # connection state
        self._failures = 0
        self._url_index = 0
        self._next_attempt = 0.0
        self._probe_state: dict[str, str] = {}
        self._notices: list[Notice] = []  # spool notices not yet published
        self._next_report = 0.0
        self._announce = True  # birth and "online" on connect (not for a one-shot gasp)
        # requests from signal handlers
        self._stop = False
        self._dying = False

    # ------------------------------------------------------------------ messages

    def _state(self, state: wire.DeviceState) -> bytes:
        return wire.encode(wire.State(self.device_id, state, _now()))

    def _birth(self) -> bytes:
        return wire.encode(
            wire.Birth(
                device=self.device_id,
                boot=self.store.boot,
                ts=_now(),
                model=self.identity.model,
                serial=self.identity.serial,
                firmware=self.identity.firmware,
                agent=__version__,
                interval_s=max(1, min(86_400, round(self.interval_s))),
                probes=tuple(p.name for p in self.probes),
                labels=dict(self.config.device.labels),
            )
        )

    def _emit(
        self, kind: wire.Kind, build: Callable[[str, int, bool], bytes], drops: bool = False
    ) -> Emitted:
        """Spool a message (``build(boot, seq, spooled)``); when the spool cannot take it,
        publish it directly, in the guard's own epoch (lost if the link is down too)."""
        topic = self.topic[kind]

        def spooled(boot: str, seq: int) -> bytes:
            return build(boot, seq, True)

        spare = self.publisher.in_flight_ids()
        entry = self.store.append(topic, spooled, reports_drops=drops, spare=spare)
        if entry is not None:
            return Emitted(entry.seq, entry.id, None)
        boot, seq = self.store.direct_seq()
        mid = self.link.publish(topic, build(boot, seq, False))
        if mid is not None:
            self.publisher.track(mid, None)
        log.warning(
            "%s seq=%d %s: the spool is failing (%s)",
            kind.value,
            seq,
            "published without the spool" if mid is not None else "lost (link down too)",
            (self.store.fault or ("gone", ""))[0],
        )
        return Emitted(seq, None, mid)

    def _append_event(self, name: str, data: dict[str, Any], ts: datetime) -> Emitted:
        def build(boot: str, seq: int, _spooled: bool) -> bytes:
            return wire.encode(wire.Event(self.device_id, boot, seq, ts, name, data))

        emitted = self._emit(wire.Kind.EVENT, build, drops=name == "spool_dropped")
        log.info("event %s seq=%d %s", name, emitted.seq, json.dumps(data)[:200])
        return emitted

    def _report(self, ts: datetime, results: list[tuple[str, ProbeResult]]) -> None:
        metrics: dict[str, wire.MetricValue] = {}
        events: list[ProbeEvent] = []
        for name, result in results:
            status = "ok"
            if isinstance(result, Reading):
                metrics |= result.metrics
                events.extend(result.events)
            else:
                status = result.reason.value
                metrics[f"probe_{name}_unavailable"] = status
            before = self._probe_state.get(name)
            if status != before:
                detail = "" if isinstance(result, Reading) else f": {result.detail}"
                log.info("probe %s: %s%s", name, status, detail)
                if status == Reason.ERROR.value and isinstance(result, Unavailable):
                    events.append(
                        ProbeEvent("probe_error", {"probe": name, "error": result.detail})
                    )
            self._probe_state[name] = status
        keep = wire.MAX_METRICS - SPOOL_METRICS
        if len(metrics) > keep:
            log.warning("%d metrics: keeping the first %d", len(metrics), keep)
            metrics = dict(list(metrics.items())[:keep])
        self.store.retry()  # a failed spool is tried again once per report
        for event in events:
            self._append_event(event.name, event.data, ts)
        labels = dict(self.config.device.labels)

        def build(boot: str, seq: int, spooled: bool) -> bytes:
            store = self.store
            values = metrics | {
                "spool_pending": store.pending,
                "spool_dropped": store.dropped_total,
                "agent_spool_ok": int(spooled),
                "agent_spool_errors": store.errors,
            }
            return wire.encode(wire.Telemetry(self.device_id, boot, seq, ts, values, labels))

        try:
            emitted = self._emit(wire.Kind.TELEMETRY, build)
        except ValueError as exc:  # past the payload limit: a configuration problem
            log.error("telemetry not sent: %s", exc)
            return
        if emitted.entry is not None:
            log.info(
                "telemetry seq=%d: %d metrics; spool %d pending%s",
                emitted.seq,
                len(metrics) + SPOOL_METRICS,
                self.store.pending,
                "" if self.link.up else " (link down)",
            )
        # spool_failed, _reset, _recovered; one that could go nowhere (no spool, no link yet)
        # waits for the next report.
        unsent, self._notices = self._notices + self.store.take_notices(), []
        for name, data in unsent:
            emitted = self._append_event(name, data, ts)
            if emitted.entry is None and emitted.mid is None:
                self._notices.append((name, data))
        del self._notices[:-16]  # bounded: a gateway that never connects keeps the latest
        # The loss is told once the link is back (while it is down, an event per report would
        # only push more reports out of a full spool); the counter above is always there.
        if self.store.unreported_drops and self.link.up:
            dropped = self.store.unreported_drops
            data = {"count": dropped, "total": self.store.dropped_total}
            self._append_event("spool_dropped", data, ts)

    # ------------------------------------------------------------------ link events

    def wake(self) -> None:
        with contextlib.suppress(OSError):  # a full buffer: it is awake already
            self._wake_w.send(b"\0")

    def link_up(self) -> None:
        self._failures = 0
        self.publisher.link_up()
        log.info("connected to %s; %d reports to drain", self.link.url, self.store.pending)
        if not self._announce:
            return
        self.link.publish(self.topic[wire.Kind.BIRTH], self._birth(), retain=True)
        self.link.publish(
            self.topic[wire.Kind.STATE], self._state(wire.DeviceState.ONLINE), retain=True
        )
        self.link.subscribe(self.topic[wire.Kind.COMMAND])

    def link_down(self, reason: str) -> None:
        self.publisher.forget_inflight()
        self._schedule_reconnect(f"link to {self.link.url} lost: {reason}")

    def _schedule_reconnect(self, why: str) -> None:
        self._failures += 1
        urls = self.config.broker.urls
        self._url_index = (self._url_index + 1) % len(urls)
        delay = backoff_delay(
            self._failures,
            self.config.broker.reconnect_min_s,
            self.config.broker.reconnect_max_s,
            int.from_bytes(os.urandom(2), "big") / 65535,
        )
        self._next_attempt = time.monotonic() + delay
        log.warning("%s; %d pending; retry in %.1fs", why, self.store.pending, delay)

    def acked(self, mid: int, ok: bool) -> None:
        self.publisher.acked(mid, ok)

    @property
    def commands(self) -> Commands:
        """Made at the first command: most gateways are rarely commanded (memory is scarce)."""
        if self._commands is None:
            from agent.commands import Commands

            reach = self.config.probes.reachability
            targets = reach.targets if reach else ()
            self._commands = Commands(self, self.config.commands, targets)
        return self._commands

    def message(self, topic: str, payload: bytes, retained: bool) -> None:
        if topic != self.topic[wire.Kind.COMMAND]:
            return  # only this device's command topic is ever acted on
        self.commands.message(payload, retained)

    # ------------------------------------------------------------------ commands

    def set_interval(self, interval_s: float) -> None:
        self.interval_s = interval_s
        self._next_report = time.monotonic() + interval_s
        self.link.publish(self.topic[wire.Kind.BIRTH], self._birth(), retain=True)

    def status(self) -> dict[str, Any]:
        return {
            "pong": True,
            "agent": __version__,
            "boot": self.store.boot,
            "next_seq": self.store.next_seq,
            "spool_pending": self.store.pending,
            "interval_s": self.interval_s,
        }

    def _finish(self, done: JobDone) -> None:
        job = done.job
        if job.kind == "report":
            self.worker.busy_reports -= 1
            self._report(job.ts, done.results)
            return
        self.commands.finish(done)

    # ------------------------------------------------------------------ the loop

    def _connect(self, now: float) -> None:
        urls = self.config.broker.urls
        url = urls[self._url_index % len(urls)]
        error = self.link.open(url)
        if error is not None:
            self._schedule_reconnect(f"cannot connect: {error}")

    def _timeout(self, now: float) -> float:
        waits = [1.0, self._next_report - now]
        if not self.link.up and not self.link.connecting:
            waits.append(self._next_attempt - now)
        waits.extend(self.publisher.waits(now))
        return max(0.0, min(waits))

    def _install_signals(self) -> None:
        def stop(signum: int, _frame: Any) -> None:
            self._stop = True

        def dying(signum: int, _frame: Any) -> None:
            self._dying = True

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGUSR1, dying)
        signal.set_wakeup_fd(self._wake_w.fileno(), warn_on_full_buffer=False)

    def run(self) -> int:
        """Run until SIGTERM/SIGINT (exit 0) or a dying gasp (exit 0 after publishing it)."""
        self._install_signals()
        self.store.put("pid", str(os.getpid()))
        log.info(
            "fleetdesk agent %s: device %s, boot %s, next seq %d, %d pending, probes: %s",
            __version__,
            self.device_id,
            self.store.boot,
            self.store.next_seq,
            self.store.pending,
            ", ".join(p.name for p in self.probes) or "none",
        )
        self.worker.start()
        self._next_report = time.monotonic()
        try:
            while not self._stop and not self._dying:
                now = time.monotonic()
                if now >= self._next_report:
                    if self.worker.busy_reports == 0:
                        self.worker.busy_reports += 1
                        self.worker.jobs.put(Job("report", _now()))
                    else:
                        log.warning("probes take longer than the interval; report skipped")
                    self._next_report = max(self._next_report + self.interval_s, now)
                while True:
                    try:
                        self._finish(self.worker.done.get_nowait())
                    except queue.Empty:
                        break
                if not self.link.up and not self.link.connecting and now >= self._next_attempt:
                    self._connect(now)
                self.publisher.pump(now)
                self.publisher.flush_acks(now)
                self.link.poll(self._wake_r, self._timeout(time.monotonic()))
            if self._dying:
                self._dying_gasp("signal")
            else:
                self._shutdown()
        finally:
            self.worker.stop()
            self.publisher.flush_acks(time.monotonic(), force=True)
            self.store.put("pid", None)
            self.store.close()
        return 0

    def _wait_for(self, mids: set[int]) -> None:
        def done() -> bool:
            self.publisher.flush_acks(time.monotonic())
            return not self.publisher.awaiting(mids)

        self.link.flush(self._wake_r, done, SHUTDOWN_FLUSH_S)

    def _shutdown(self) -> None:
        log.info("stopping; %d reports stay in the spool", self.store.pending)
        mid = self.link.publish(
            self.topic[wire.Kind.STATE], self._state(wire.DeviceState.OFFLINE), retain=True
        )
        if mid is not None:
            self.publisher.track(mid, None)
            self._wait_for(self.publisher.inflight_mids())
        self.link.close(clean=True)

    def _dying_gasp(self, reason: str) -> None:
        """Power is going: say so at once, bypassing the backlog, then leave quietly (a clean
        DISCONNECT keeps the broker from replacing ``dying_gasp`` with the will)."""
        ts = _now()
        emitted = self._append_event("dying_gasp", {"reason": reason}, ts)
        mids = set() if emitted.mid is None else {emitted.mid}
        entry_id = emitted.entry
        for entry in self.store.read(entry_id - 1, entry_id + 1, 1) if entry_id else ():
            mid = self.link.publish(entry.topic, entry.payload)
            if mid is not None:
                self.publisher.track(mid, entry.id)
                mids.add(mid)
        state = self._state(wire.DeviceState.DYING_GASP)
        mid = self.link.publish(self.topic[wire.Kind.STATE], state, retain=True)
        if mid is not None:
            self.publisher.track(mid, None)
            mids.add(mid)
        if mids:
            self._wait_for(mids)
            log.warning("dying gasp published")
        else:
            log.warning("dying gasp kept in the spool: the link is down")
        self.link.close(clean=True)


def dying_gasp_now(agent: Agent) -> bool:
    """One-shot dying gasp when no agent is running: connect, publish, leave.

    True when the broker acknowledged it (otherwise it stays in the spool).
    """
    agent._announce = False
    try:
        for url in agent.config.broker.urls:
            if agent.link.open(url) is not None:
                continue
            deadline = time.monotonic() + agent.config.broker.connect_timeout_s
            while agent.link.connecting and time.monotonic() < deadline:
                agent.link.poll(agent._wake_r, 0.05)
            if agent.link.up:
                break
        delivered = agent.link.up
        agent._dying_gasp("command")
        agent.publisher.flush_acks(time.monotonic(), force=True)
        return delivered
    finally:
        agent.store.close()
