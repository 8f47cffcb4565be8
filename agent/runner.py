"""The agent's main loop: measure on schedule, spool, publish, drain, answer commands.

One thread owns the spool and the MQTT link and waits in ``select`` on the broker socket and a
wake-up socket (signals and the probe worker write to it). Probes run on a second thread
(:mod:`agent.probe_worker`) so a slow ``ping`` or ``mmcli`` never stalls publishing; what goes
out when, and how many at once, is :mod:`agent.publisher`'s.
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
from datetime import UTC, datetime
from typing import Any, Final

from agent import __version__, wire
from agent.config_types import MAX_INTERVAL_S, MIN_INTERVAL_S, AgentConfig, ReachTarget
from agent.identity import resolve
from agent.mqtt import Link, Will, backoff_delay
from agent.probe_worker import Job, JobDone, ProbeWorker, run_probe
from agent.probes import ProbeEvent, ProbeResult, Reading, Reason, Unavailable, build_probes
from agent.publisher import SpoolPublisher
from agent.spool import Spool

__all__ = ["COMMANDS", "Agent", "dying_gasp_now", "run_probe"]

log = logging.getLogger("fleetdesk.agent")

SHUTDOWN_FLUSH_S: Final = 2.0
COMMANDS: Final = ("ping", "run_probe", "set_interval")


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
        self.spool = Spool(config.spool.path, config.spool.max_bytes)
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        client_id = config.broker.client_id or f"fleetdesk-{device.tenant}-{device.id}"[:64]
        will = Will(self.topic[wire.Kind.STATE], self._state(wire.DeviceState.OFFLINE))
        self.link = Link(config.broker, client_id, will, self)
        self.worker = ProbeWorker(self.probes, self.wake)
        spool = config.spool
        self.publisher = SpoolPublisher(self.spool, self.link, spool.inflight, spool.drain_rate)
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

        topic, spare = self.topic[wire.Kind.EVENT], self.publisher.in_flight_ids()
        entry = self.spool.append(topic, build, reports_drops=drops, spare=spare)
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
            entry = self.spool.append(topic, build, spare=self.publisher.in_flight_ids())
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
        self.publisher.link_up()
        log.info("connected to %s; %d reports to drain", self.link.url, self.spool.pending)
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
        log.warning("%s; %d pending; retry in %.1fs", why, self.spool.pending, delay)

    def acked(self, mid: int, ok: bool) -> None:
        self.publisher.acked(mid, ok)

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
            self.worker.jobs.put(Job("ping", _now(), cmd, parsed[0], parsed[1]))
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
            self.worker.jobs.put(Job("probe", _now(), cmd))
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

    def _finish(self, done: JobDone) -> None:
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
            self.spool.put("pid", None)
            self.spool.close()
        return 0

    def _wait_for(self, mids: set[int]) -> None:
        def done() -> bool:
            self.publisher.flush_acks(time.monotonic())
            return not self.publisher.awaiting(mids)

        self.link.flush(self._wake_r, done, SHUTDOWN_FLUSH_S)

    def _shutdown(self) -> None:
        log.info("stopping; %d reports stay in the spool", self.spool.pending)
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
        entry_id = self._append_event("dying_gasp", {"reason": reason}, ts)
        mids = set()
        for entry in self.spool.read(entry_id - 1, entry_id + 1, 1):
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
