"""Downlink commands: admit (:mod:`agent.command_auth`), bound, run, reply.

Every command on the device's own ``cmd`` topic gets a ``cmd/reply`` with its id, refusals
included (the reason first: ``retained``, ``unsigned``, ``bad_signature``, ``expired``,
``replayed``, ``not_allowed``, ``bad_args``, ...). ``set_interval`` stays within the
configured bounds and ``ping`` probes only targets of the allow-list, so a command cannot
turn the gateway into a scanner of its LAN.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any, Final, Protocol

from agent import wire
from agent.command_auth import CommandGate
from agent.config_types import CommandsConfig, ReachTarget
from agent.mqtt import Link
from agent.probe_worker import Job, JobDone, ProbeWorker
from agent.probes import Unavailable
from agent.spool_guard import SpoolGuard

log = logging.getLogger("fleetdesk.agent")

COMMANDS: Final = ("ping", "run_probe", "set_interval")


class CommandHost(Protocol):
    """What the commands act on: the running agent."""

    device_id: str
    topic: dict[wire.Kind, str]
    link: Link
    worker: ProbeWorker
    store: SpoolGuard

    def status(self) -> dict[str, Any]: ...

    def set_interval(self, interval_s: float) -> None: ...


class Commands:
    def __init__(
        self, host: CommandHost, config: CommandsConfig, probe_targets: tuple[ReachTarget, ...]
    ) -> None:
        self.host, self.config = host, config
        self.gate = CommandGate(config)
        self.gate.load(host.store.get("cmd_seen"))
        # The reachability probe's own targets are the operator's too.
        allowed = {_target_text(t) for t in probe_targets}
        self.ping_allowed = frozenset(allowed | {t.lower() for t in config.ping_targets})

    def reply(
        self, command_id: str, *, result: dict[str, Any] | None = None, error: str | None = None
    ) -> None:
        host = self.host
        reply = wire.Reply(
            host.device_id, command_id, error is None, datetime.now(UTC), result, error
        )
        if error is not None:
            log.warning("command %s refused: %s", command_id, error)
        host.link.publish(host.topic[wire.Kind.REPLY], wire.encode(reply))

    def message(self, payload: bytes, retained: bool) -> None:
        host = self.host
        decoded = wire.decode_payload(payload, wire.Kind.COMMAND, host.device_id)
        if isinstance(decoded, wire.DecodeError):
            self.reply(_raw_id(payload), error=f"{decoded.reason.value}: {decoded.detail}")
            return
        assert isinstance(decoded, wire.Command)
        body = json.loads(payload)  # valid: decoded above; the signature covers all of it
        topic = host.topic[wire.Kind.COMMAND]
        refusal = self.gate.check(body, topic, retained, datetime.now(UTC))
        if refusal is not None:
            self.reply(decoded.id, error=refusal)
            return
        host.store.put("cmd_seen", self.gate.dump())  # a restart must not obey it again
        self._run(decoded)

    def _run(self, cmd: wire.Command) -> None:
        host, config = self.host, self.config
        log.info("command %s id=%s args=%s", cmd.cmd, cmd.id, json.dumps(cmd.args)[:200])
        if cmd.cmd == "ping":
            target = cmd.args.get("target")
            if target is None:
                self.reply(cmd.id, result=host.status())
                return
            parsed = _ping_target(target, cmd.args.get("count", 3))
            if isinstance(parsed, str):
                self.reply(cmd.id, error=f"bad_args: {parsed}")
            elif _target_text(parsed[0]) not in self.ping_allowed:
                known = ", ".join(sorted(self.ping_allowed)) or "none"
                self.reply(cmd.id, error=f"not_allowed: {target!r}; allowed: {known}")
            else:
                host.worker.jobs.put(Job("ping", datetime.now(UTC), cmd, parsed[0], parsed[1]))
        elif cmd.cmd == "set_interval":
            value = cmd.args.get("interval_s")
            low, high = config.min_interval_s, config.max_interval_s
            if (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or not low <= value <= high
            ):
                self.reply(
                    cmd.id, error=f"bad_args: interval_s must be a number in {low:g}..{high:g}"
                )
                return
            host.set_interval(float(value))
            self.reply(cmd.id, result={"interval_s": float(value)})
        elif cmd.cmd == "run_probe":
            name = cmd.args.get("probe")
            if name not in host.worker.probes:
                known = ", ".join(host.worker.probes) or "none"
                self.reply(cmd.id, error=f"bad_args: unknown probe {name!r}; known: {known}")
                return
            host.worker.jobs.put(Job("probe", datetime.now(UTC), cmd))
        else:
            known = ", ".join(COMMANDS)
            self.reply(cmd.id, error=f"unknown_command: {cmd.cmd!r}; known: {known}")

    def finish(self, done: JobDone) -> None:
        """The answer of a ``ping`` or ``run_probe`` the probe thread has measured."""
        job = done.job
        assert job.command is not None
        name, result = done.results[0]
        if isinstance(result, Unavailable):
            detail = f"unavailable: {result.reason.value}: {result.detail}"
            self.reply(job.command.id, error=detail)
        elif job.kind == "ping":
            self.reply(job.command.id, result=dict(result.metrics))
        else:
            self.reply(job.command.id, result={"probe": name, "metrics": dict(result.metrics)})


def _target_text(target: ReachTarget) -> str:
    host = target.host.lower()
    return host if target.port is None else f"{host}:{target.port}"


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
