"""The agent's main loop: measure on schedule, spool, publish, drain, answer commands.

One thread owns the spool and the MQTT link and waits in ``select`` on the broker socket and a
wake-up socket (signals and the probe worker write to it). Probes run on a second thread so a
slow ``ping`` or ``mmcli`` never stalls publishing.

Publishing: entries appended since the link came up ("fresh") go out at once; the backlog
from before drains in spool order at ``spool.drain_rate`` per second. At most
``spool.inflight`` spooled publishes await their PUBACK at any time.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import queue
import signal
import socket
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Final, NamedTuple

from agent import __version__, wire
from agent.config import MAX_INTERVAL_S, MIN_INTERVAL_S, AgentConfig, ReachTarget
from agent.identity import resolve
from agent.mqtt import Link, Will, backoff_delay
from agent.probes import (
    Probe,
    ProbeEvent,
    ProbeResult,
    Reading,
    Reason,
    Unavailable,
    build_probes,
)
from agent.spool import Spool

log = logging.getLogger("fleetdesk.agent")

ACK_FLUSH_S: Final = 0.25  # acknowledged entries are deleted in batches
ACK_FLUSH_COUNT: Final = 500
SHUTDOWN_FLUSH_S: Final = 2.0
COMMANDS: Final = ("ping", "run_probe", "set_interval")


def _now() -> datetime:
    return datetime.now(UTC)


# --------------------------------------------------------------------------- probe worker


class _Job(NamedTuple):
    kind: str  # "report" | "probe" | "ping"
    ts: datetime
    command: wire.Command | None = None
    target: ReachTarget | None = None
    count: int = 3  # type: ignore[assignment]  # shadows tuple.count (never called)


class _Done(NamedTuple):
    job: _Job
    results: list[tuple[str, ProbeResult]]


def run_probe(probe: Probe, now: float) -> ProbeResult:
    try:
        return probe.collect(now)
    except Exception as exc:  # a probe bug must not stop the agent; it is reported instead
        log.exception("probe %s failed", probe.name)
        return Unavailable(Reason.ERROR, f"{exc.__class__.__name__}: {exc}"[:200])


class ProbeWorker(threading.Thread):
    def __init__(self, probes: list[Probe], wake: Callable[[], None]) -> None:
        super().__init__(name="fleetdesk-probes", daemon=True)
        self.probes = {p.name: p for p in probes}
        self.jobs: queue.Queue[_Job | None] = queue.Queue()
        self.done: queue.Queue[_Done] = queue.Queue()
        self.busy_reports = 0  # report jobs queued or running (main thread's count)
        self._wake = wake

    def run(self) -> None:
        while (job := self.jobs.get()) is not None:
            now = time.monotonic()
            if job.kind == "report":
                results = [(name, run_probe(p, now)) for name, p in self.probes.items()]
            elif job.kind == "probe" and job.command is not None:
                name = str(job.command.args.get("probe"))
                results = [(name, run_probe(self.probes[name], now))]
            else:
                assert job.target is not None
                from agent.probes.reachability import measure  # only for ping commands

                found = measure((job.target,), job.count, 1.0)[job.target.name]
                if isinstance(found, Unavailable):
                    results = [("ping", found)]
                else:
                    metrics: dict[str, wire.MetricValue] = {"loss_pct": found.loss_pct}
                    if found.rtt_ms is not None:
                        metrics["rtt_ms"] = found.rtt_ms
                    metrics["method"] = found.method
                    results = [("ping", Reading(metrics))]
            self.done.put(_Done(job, results))
            self._wake()

    def stop(self) -> None:
        self.jobs.put(None)


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
        self.spool = Spool(config.spool.path, config.spool.max_bytes)
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        client_id = config.broker.client_id or f"fleetdesk-{device.tenant}-{device.id}"[:64]
        will = Will(self.topic[wire.Kind.STATE], self._state(wire.DeviceState.OFFLINE))
        self.link = Link(config.broker, client_id, will, self)
        self.worker = ProbeWorker(self.probes, self.wake)
        # publishing state (main thread only)
        self._inflight: dict[int, int | None] = {}  # mid -> spool id (None: not spooled)
        self._spooled_inflight = 0
        self._acked: list[int] = []
        self._acks_flushed_at = time.monotonic()
        self._fresh_from = 0  # spool ids >= this were appended while the link was up
        self._fresh_cursor = 0
        self._backlog_cursor = 0
        self._backlog_left = False
        self._tokens = 0.0
        self._tokens_at = time.monotonic()
        # connection state
        self._failures = 0
        self._url_index = 0
        self._next_attempt = 0.0
        self._probe_state: dict[str, str] = {}
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
                boot=self.spool.boot,
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

    def _append_event(self, name: str, data: dict[str, Any], ts: datetime) -> int:
        drops = name == "spool_dropped"

        def build(boot: str, seq: int) -> bytes:
            return wire.encode(wire.Event(self.device_id, boot, seq, ts, name, data))

        entry = self.spool.append(
            self.topic[wire.Kind.EVENT], build, reports_drops=drops, spare=self._in_flight_ids()
        )
        log.info("event %s seq=%d %s", name, entry.seq, json.dumps(data)[:200])
        return entry.id

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
        metrics["spool_pending"] = self.spool.pending
        metrics["spool_dropped"] = self.spool.dropped_total
        if len(metrics) > wire.MAX_METRICS:
            log.warning("%d metrics: keeping the first %d", len(metrics), wire.MAX_METRICS)
            metrics = dict(list(metrics.items())[: wire.MAX_METRICS])
        for event in events:
            self._append_event(event.name, event.data, ts)
        labels = dict(self.config.device.labels)

        def build(boot: str, seq: int) -> bytes:
            return wire.encode(wire.Telemetry(self.device_id, boot, seq, ts, metrics, labels))

        try:
            topic = self.topic[wire.Kind.TELEMETRY]
            entry = self.spool.append(topic, build, spare=self._in_flight_ids())
        except ValueError as exc:  # past the payload limit: a configuration problem
            log.error("telemetry not sent: %s", exc)
            return
        log.info(
            "telemetry seq=%d: %d metrics; spool %d pending%s",
            entry.seq,
            len(metrics),
            self.spool.pending,
            "" if self.link.up else " (link down)",
        )
        # The loss is told once the link is back (while it is down, an event per report would
        # only push more reports out of a full spool); the counter above is always there.
        if self.spool.unreported_drops and self.link.up:
            dropped = self.spool.unreported_drops
            data = {"count": dropped, "total": self.spool.dropped_total}
            self._append_event("spool_dropped", data, ts)

    # ------------------------------------------------------------------ link events

    def wake(self) -> None:
        with contextlib.suppress(OSError):  # a full buffer: it is awake already
            self._wake_w.send(b"\0")

    def link_up(self) -> None:
        self._failures = 0
        self._inflight.clear()
        self._spooled_inflight = 0
        self._fresh_from = self.spool.last_id() + 1
        self._fresh_cursor = self._fresh_from - 1
        self._backlog_cursor = 0
        self._backlog_left = self.spool.pending > 0
        self._tokens, self._tokens_at = 0.0, time.monotonic()
        log.info("connected to %s; %d reports to drain", self.link.url, self.spool.pending)
        if not self._announce:
            return
        self.link.publish(self.topic[wire.Kind.BIRTH], self._birth(), retain=True)
        self.link.publish(
            self.topic[wire.Kind.STATE], self._state(wire.DeviceState.ONLINE), retain=True
        )
        self.link.subscribe(self.topic[wire.Kind.COMMAND])

    def link_down(self, reason: str) -> None:
        self._inflight.clear()
        self._spooled_inflight = 0
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
        log.warning("%s; %d pending; retry in %.1fs", why, self.spool.pending, delay)

    def acked(self, mid: int, ok: bool) -> None:
        if mid not in self._inflight:
            return
        entry_id = self._inflight.pop(mid)
        if entry_id is not None:
            self._spooled_inflight -= 1
            self._acked.append(entry_id)
            if not ok:  # MQTT 5 refusal: retrying would refuse again
                log.error("broker refused spool entry %d; dropped", entry_id)

    def message(self, topic: str, payload: bytes) -> None:
        if topic != self.topic[wire.Kind.COMMAND]:
            return  # only this device's command topic is ever acted on
        decoded = wire.decode_payload(payload, wire.Kind.COMMAND, self.device_id)
        if isinstance(decoded, wire.DecodeError):
            self._reply(_raw_id(payload), error=f"{decoded.reason.value}: {decoded.detail}")
            return
        assert isinstance(decoded, wire.Command)
        self._command(decoded)

    # ------------------------------------------------------------------ commands

    def _reply(
        self, command_id: str, *, result: dict[str, Any] | None = None, error: str | None = None
    ) -> None:
        reply = wire.Reply(self.device_id, command_id, error is None, _now(), result, error)
        if error is not None:
            log.warning("command %s refused: %s", command_id, error)
        self.link.publish(self.topic[wire.Kind.REPLY], wire.encode(reply))

    def _command(self, cmd: wire.Command) -> None:
        log.info("command %s id=%s args=%s", cmd.cmd, cmd.id, json.dumps(cmd.args)[:200])
        if cmd.cmd == "ping":
            target = cmd.args.get("target")
            if target is None:
                self._reply(cmd.id, result=self._status())
                return
            parsed = _ping_target(target, cmd.args.get("count", 3))
            if isinstance(parsed, str):
                self._reply(cmd.id, error=f"bad_args: {parsed}")
                return
            self.worker.jobs.put(_Job("ping", _now(), cmd, parsed[0], parsed[1]))
        elif cmd.cmd == "set_interval":
            value = cmd.args.get("interval_s")
            if (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or not MIN_INTERVAL_S <= value <= MAX_INTERVAL_S
            ):
                bounds = f"{MIN_INTERVAL_S:g}..{MAX_INTERVAL_S:g}"
                self._reply(cmd.id, error=f"bad_args: interval_s must be a number in {bounds}")
                return
            self.interval_s = float(value)
            self._next_report = time.monotonic() + self.interval_s
            self.link.publish(self.topic[wire.Kind.BIRTH], self._birth(), retain=True)
            self._reply(cmd.id, result={"interval_s": self.interval_s})
        elif cmd.cmd == "run_probe":
            name = cmd.args.get("probe")
            if name not in self.worker.probes:
                known = ", ".join(self.worker.probes) or "none"
                self._reply(cmd.id, error=f"bad_args: unknown probe {name!r}; known: {known}")
                return
            self.worker.jobs.put(_Job("probe", _now(), cmd))
        else:
            known = ", ".join(COMMANDS)
            self._reply(cmd.id, error=f"unknown_command: {cmd.cmd!r}; known: {known}")

    def _status(self) -> dict[str, Any]:
        return {
            "pong": True,
            "agent": __version__,
            "boot": self.spool.boot,
            "next_seq": self.spool.next_seq,
            "spool_pending": self.spool.pending,
            "interval_s": self.interval_s,
        }

    def _finish(self, done: _Done) -> None:
        job = done.job
        if job.kind == "report":
            self.worker.busy_reports -= 1
            self._report(job.ts, done.results)
            return
        assert job.command is not None
        name, result = done.results[0]
        if isinstance(result, Unavailable):
            self._reply(
                job.command.id, error=f"unavailable: {result.reason.value}: {result.detail}"
            )
        elif job.kind == "ping":
            self._reply(job.command.id, result=dict(result.metrics))
        else:
            self._reply(job.command.id, result={"probe": name, "metrics": dict(result.metrics)})

    # ------------------------------------------------------------------ publishing

    def _in_flight_ids(self) -> set[int]:
        """Entries published and not yet deleted: awaiting PUBACK, or acked in this batch."""
        ids = {entry_id for entry_id in self._inflight.values() if entry_id is not None}
        return ids.union(self._acked)

    def _publish_entries(self, after: int, before: int | None, limit: int) -> tuple[int, int]:
        """Publish up to ``limit`` spool entries after id ``after``; (last id, count)."""
        entries = self.spool.read(after, before, limit)
        last = after
        for entry in entries:
            mid = self.link.publish(entry.topic, entry.payload)
            if mid is None:
                break
            self._inflight[mid] = entry.id
            self._spooled_inflight += 1
            last = entry.id
        return last, len(entries)

    def _pump(self, now: float) -> None:
        if not self.link.up:
            return
        window = self.config.spool.inflight
        free = window - self._spooled_inflight
        if free > 0:
            self._fresh_cursor, _ = self._publish_entries(self._fresh_cursor, None, free)
            free = window - self._spooled_inflight
        if not self._backlog_left:
            return
        rate = self.config.spool.drain_rate
        self._tokens = min(max(1.0, rate), self._tokens + (now - self._tokens_at) * rate)
        self._tokens_at = now
        allowed = min(free, int(self._tokens))
        if allowed <= 0:
            return
        before = self._backlog_cursor
        self._backlog_cursor, found = self._publish_entries(before, self._fresh_from, allowed)
        self._tokens -= found
        if found < allowed:
            self._backlog_left = False
            log.info("backlog drained")

    def _flush_acks(self, now: float, force: bool = False) -> None:
        if not self._acked:
            return
        if (
            force
            or len(self._acked) >= ACK_FLUSH_COUNT
            or now - self._acks_flushed_at >= ACK_FLUSH_S
        ):
            self.spool.ack(self._acked)
            self._acked.clear()
            self._acks_flushed_at = now

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
        if self._acked:
            waits.append(self._acks_flushed_at + ACK_FLUSH_S - now)
        if (
            self.link.up
            and self._backlog_left
            and self._spooled_inflight < self.config.spool.inflight
        ):
            waits.append((1.0 - self._tokens) / self.config.spool.drain_rate)
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
        self.spool.put("pid", str(os.getpid()))
        log.info(
            "fleetdesk agent %s: device %s, boot %s, next seq %d, %d pending, probes: %s",
            __version__,
            self.device_id,
            self.spool.boot,
            self.spool.next_seq,
            self.spool.pending,
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
                        self.worker.jobs.put(_Job("report", _now()))
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
                self._pump(now)
                self._flush_acks(now)
                self.link.poll(self._wake_r, self._timeout(time.monotonic()))
            if self._dying:
                self._dying_gasp("signal")
            else:
                self._shutdown()
        finally:
            self.worker.stop()
            self._flush_acks(time.monotonic(), force=True)
            self.spool.put("pid", None)
            self.spool.close()
        return 0

    def _wait_for(self, mids: set[int]) -> None:
        def done() -> bool:
            self._flush_acks(time.monotonic())
            return not (mids & self._inflight.keys())

        self.link.flush(self._wake_r, done, SHUTDOWN_FLUSH_S)

    def _shutdown(self) -> None:
        log.info("stopping; %d reports stay in the spool", self.spool.pending)
        mid = self.link.publish(
            self.topic[wire.Kind.STATE], self._state(wire.DeviceState.OFFLINE), retain=True
        )
        if mid is not None:
            self._inflight[mid] = None
            self._wait_for({mid} | set(self._inflight))
        self.link.close(clean=True)

    def _dying_gasp(self, reason: str) -> None:
        """Power is going: say so at once, bypassing the backlog, then leave quietly (a clean
        DISCONNECT keeps the broker from replacing ``dying_gasp`` with the will)."""
        ts = _now()
        entry_id = self._append_event("dying_gasp", {"reason": reason}, ts)
        mids = set()
        for entry in self.spool.read(entry_id - 1, entry_id + 1, 1):
            mid = self.link.publish(entry.topic, entry.payload)
            if mid is not None:
                self._inflight[mid] = entry.id
                self._spooled_inflight += 1
                mids.add(mid)
        state = self._state(wire.DeviceState.DYING_GASP)
        mid = self.link.publish(self.topic[wire.Kind.STATE], state, retain=True)
        if mid is not None:
            self._inflight[mid] = None
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
        agent._flush_acks(time.monotonic(), force=True)
        return delivered
    finally:
        agent.spool.close()


def _raw_id(payload: bytes) -> str:
    """The id of a malformed command when one can be read, so the reply can be matched."""
    try:
        value = json.loads(payload).get("id")
    except (ValueError, AttributeError, RecursionError):
        return "invalid"
    if isinstance(value, str) and 0 < len(value) <= wire.MAX_ID_LEN:
        return value
    return "invalid"


def _ping_target(value: Any, count: Any) -> tuple[ReachTarget, int] | str:
    if not isinstance(value, str) or not value or len(value) > 255:
        return "target must be 'host' or 'host:port'"
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= 10:
        return "count must be an integer in 1..10"
    host, port = value, None
    if value.count(":") == 1:
        host, _, port_text = value.partition(":")
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            return f"bad port in {value!r}"
        port = int(port_text)
    return ReachTarget("target", host, port, "auto"), count
