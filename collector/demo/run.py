"""The demo's conductor: services up, collector and fleet running, the script played, all down.

Everything runs in this one process except the outside programs (Mosquitto, VictoriaMetrics,
snmpd) and the agents (worker processes, :mod:`collector.demo.workers`): the collector service
in the asyncio loop exactly as ``fleetdesk collector`` runs it
(:func:`collector.service.app.run`), the desk in a thread. Stopping (the duration is over, or
SIGINT/SIGTERM) stops the agents, drains the collector, stops the desk and terminates the
programs; nothing is left running.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import shutil
import signal
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import yaml

from collector.config.collector import CollectorConfig, load_config
from collector.demo import broker as embedded
from collector.demo.agents import make_device
from collector.demo.desk import Desk
from collector.demo.fleet import Fleet, build_fleet, write_inventory
from collector.demo.script import (
    FOLLOWUP_S,
    Actions,
    Cast,
    cast,
    intervals,
    maintenance,
    steps,
    write_rules,
)
from collector.demo.services import Services, remove_when_gone
from collector.demo.summary import board_tokens, board_urls, check_http, summarize
from collector.demo.workers import AgentPool
from collector.preset_paths import default_rules_dir
from collector.service import app

log = logging.getLogger("fleetdesk.demo")
DESK_SECRET_ENV = "FLEETDESK_DEMO_DESK_SECRET"
INBOUND_SECRET_ENV = "FLEETDESK_DEMO_INBOUND_SECRET"


@dataclass
class Options:
    devices: int = 200
    speed: float = 60.0
    duration: float = 300.0  # wall-clock seconds
    workdir: Path = Path(".fleetdesk-demo")
    summary: Path | None = None
    embedded_broker: bool = False  # force the fallback (tests, machines without Mosquitto)


@dataclass
class Stage:
    """What the run set up, handed to the part that plays the script."""

    work: Path
    cfg: CollectorConfig
    fleet: Fleet
    roles: Cast
    desk: Desk
    ready: list[app.Service]
    collector: asyncio.Task[app.Service]
    interval: float
    runtime: Path  # simulated hosts and spools


@dataclass
class Demo(Actions):
    opts: Options
    say: Callable[[str], None] = print
    pool: AgentPool | None = None
    notes: dict[str, str] = field(default_factory=dict)
    started: float = 0.0
    every: dict[str, float] = field(default_factory=dict)  # reporting interval per device

    # ------------------------------------------------------------------ actions of the script
    def set(self, device: str, **state: Any) -> None:
        assert self.pool is not None
        self.pool.call("set", device, state)

    def power_cut(self, device: str) -> None:
        assert self.pool is not None
        self.pool.power_off(device, gasp=True)

    def power_on(self, device: str, *, reboot: bool = True) -> None:
        assert self.pool is not None
        self.pool.power_on(device, reboot=reboot)  # a reboot restarts the host's uptime

    def go_dark(self, device: str) -> None:
        assert self.pool is not None
        self.pool.power_off(device, gasp=False)

    def event(self, device: str, name: str, data: dict[str, Any]) -> None:
        assert self.pool is not None
        self.pool.call("event", device, name, data)

    # ------------------------------------------------------------------ the run
    def stamp(self) -> str:
        demo_s = (time.monotonic() - self.started) * self.opts.speed
        return f"[{int(demo_s // 3600):02d}:{int(demo_s % 3600 // 60):02d} demo]"

    async def run(self, quit: asyncio.Event) -> dict[str, Any]:
        work = self.opts.workdir.resolve()
        work.mkdir(parents=True, exist_ok=True)
        for stale in ("state.db", "webhooks.jsonl"):
            (work / stale).unlink(missing_ok=True)
        services = Services(work)
        desk = Desk(work, printer=self.say)
        if os.environ.get(DESK_SECRET_ENV, "").startswith("whsec_"):
            desk.secret = os.environ[DESK_SECRET_ENV]  # given: a test checks the signatures too
        try:
            return await self._run(quit, work, services, desk)
        finally:
            desk.stop()
            services.stop()

    async def _run(
        self, quit: asyncio.Event, work: Path, services: Services, desk: Desk
    ) -> dict[str, Any]:
        o, say = self.opts, self.say
        port = None if o.embedded_broker else await asyncio.to_thread(services.mosquitto)
        broker = None
        if port is None:
            broker = await embedded.Broker().start()
            port = broker.port
            why = "as asked" if o.embedded_broker else "Mosquitto is not installed"
            self.notes["broker"] = f"embedded MQTT 3.1.1 broker ({why})"
            say(f"broker: using the embedded MQTT 3.1.1 broker ({why}; `make demo` as root "
                "installs Mosquitto)")  # fmt: skip
        else:
            self.notes["broker"] = "mosquitto"
        victoria = await asyncio.to_thread(services.victoria)
        self.notes["tsdb"] = "victoria-metrics" if victoria else "recent samples (in memory)"
        snmp_port = await asyncio.to_thread(services.snmpd)
        self.notes["snmp"] = "snmpd" if snmp_port else "none (snmpd not installed)"
        n_snmp = 0 if snmp_port is None else max(1, o.devices // 50)
        fleet = build_fleet(o.devices, date.today(), snmp_devices=n_snmp)
        roles = cast(fleet)
        start = datetime.now(UTC)
        every = intervals(roles, fleet, o.speed)
        interval = min(every.values())
        write_inventory(work / "inventory.yaml", fleet, every, maintenance(roles, start, o.speed))
        rules = work / "rules"
        if rules.exists():
            shutil.rmtree(rules)
        write_rules(default_rules_dir(), rules, o.speed)
        desk.start()
        os.environ[DESK_SECRET_ENV] = desk.secret
        os.environ[INBOUND_SECRET_ENV] = desk.desk_secret
        sinks = {
            "sinks": [
                {"name": "demo-desk", "type": "webhook", "url": desk.url,
                 "secret_env": DESK_SECRET_ENV, "backoff_base": "1s", "backoff_cap": "5s",
                 "timeout": "5s"}
            ]
        }  # fmt: skip
        (work / "sinks.yaml").write_text(yaml.safe_dump(sinks))
        config = {
            "mqtt": {
                "url": f"mqtt://127.0.0.1:{port}",
                "client_id": "fleetdesk-demo-collector",
                "protocol": "3.1.1" if broker is not None else "5",
            },
            "store": {"url": f"sqlite:///{work / 'state.db'}", "flush_interval_s": 1.0},
            "tsdb": {"url": victoria} if victoria else {"recent_samples": 16},
            "rules": {"inventory": "inventory.yaml", "dir": "rules", "state_flush_s": 5},
            "http": {"listen": "127.0.0.1:0"},
            "tickets": {
                "sinks": "sinks.yaml",
                "inbound_secret_env": INBOUND_SECRET_ENV,
                "default_followup_s": FOLLOWUP_S / o.speed,
                "delivery_poll_s": 0.5,
            },
            "log_level": "warning",
        }
        if snmp_port is not None:
            config["snmp"] = {
                "interval_s": interval,
                "devices": [
                    {"device": d.id, "tenant": d.tenant, "host": "127.0.0.1", "port": snmp_port,
                     "profile": "host", "community": "public"}
                    for d in fleet.devices if d.snmp
                ],
            }  # fmt: skip
        (work / "collector.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
        cfg = load_config(work / "collector.yaml")
        stop = asyncio.Event()
        ready: list[app.Service] = []
        collector = asyncio.create_task(app.run(cfg, stop, on_ready=ready.append))
        watchdog = None
        try:
            runtime = _runtime_dir(work)
            watchdog = remove_when_gone(runtime)
            self.notes["runtime"] = str(runtime)
            stage = Stage(work, cfg, fleet, roles, desk, ready, collector, interval, runtime)
            self.every = every
            interrupted, http = await self._play(quit, stage)
        finally:
            # The collector stops first (it drains: faults, tickets, state are written), so the
            # fleet's own shutdown after it is not taken for a fleet-wide outage.
            stop.set()
            with contextlib.suppress(Exception):
                await collector
            await asyncio.to_thread(self._stop_agents)
            if broker is not None:
                await broker.stop()
            if "runtime" in self.notes:
                shutil.rmtree(self.notes["runtime"], ignore_errors=True)
            if watchdog is not None:
                assert watchdog.stdin is not None
                watchdog.stdin.close()  # the folder is gone already: it exits
                with contextlib.suppress(Exception):
                    await asyncio.to_thread(watchdog.wait, 10)
        return await asyncio.to_thread(
            functools.partial(
                summarize, url=cfg.store.url, fleet=fleet, roles=roles, desk=desk, http=http,
                demo=self, interrupted=interrupted,
            )
        )  # fmt: skip

    async def _play(self, quit: asyncio.Event, st: Stage) -> tuple[bool, dict[str, int]]:
        o, say = self.opts, self.say
        work, cfg, fleet, roles, desk = st.work, st.cfg, st.fleet, st.roles, st.desk
        ready, collector, interval = st.ready, st.collector, st.interval
        while not ready or ready[0].http_port is None:
            if collector.done():
                collector.result()  # raises what stopped it
                raise RuntimeError("the collector stopped before it was ready")
            await asyncio.sleep(0.05)
        service = ready[0]
        base = f"http://127.0.0.1:{service.http_port}"
        desk.collector_url = base
        say("")
        say(
            f"fleetdesk demo: {len(fleet.devices)} devices ({len(fleet.agents)} agents), "
            f"{len(fleet.sites)} sites, 5 customers, speed x{o.speed:g}, {o.duration:g} s"
        )
        say(f"  broker     {self.notes['broker']}    tsdb {self.notes['tsdb']}    "
            f"snmp {self.notes['snmp']}")  # fmt: skip
        say(f"  collector  {base}/healthz   {base}/metrics")
        tokens = await asyncio.to_thread(board_tokens, work)
        for line in board_urls(base, tokens):
            say(f"  {line}")
        say(f"  desk       {desk.url.rsplit('/hooks', 1)[0]}/   (webhooks received, JSON)")
        say(f"  files      {work}  (collector.yaml, inventory.yaml, state.db, demo.log)")
        say(f"  runtime    {st.runtime}  (simulated hosts and spools, removed at the end)")
        say("")
        now, runtime = time.time(), st.runtime
        sims = [
            make_device(
                d,
                workdir=work,
                runtime=runtime,
                broker_url=cfg.mqtt.url,
                interval_s=self.every[d.id],
                now=now,
            )
            for d in fleet.agents
        ]
        log_path = str(work / "demo.log")
        self.pool = await asyncio.to_thread(AgentPool, sims, log_path)
        self.started = time.monotonic()
        # Powered on over one reporting interval, as a real fleet's boots are spread: a fleet
        # that connects, announces itself and reports all in the same second is a burst the
        # collector would spend its first minute on.
        spread = max(self.every.values()) / max(1, len(sims))
        for sim in sims:
            await asyncio.to_thread(self.pool.power_on, sim.dev.id)
            await asyncio.sleep(spread)
        say(f"{self.stamp()} {len(sims)} agents powered on in {len(self.pool.workers)} "
            "worker process(es)")  # fmt: skip
        http = await asyncio.to_thread(check_http, base, tokens["viewer"])
        tasks = [
            asyncio.create_task(self._script(steps(roles, fleet, self))),
            asyncio.create_task(self._hosts(interval)),
            asyncio.create_task(self._progress(service, desk)),
        ]
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(quit.wait(), timeout=o.duration)
        interrupted = quit.is_set()
        http |= await asyncio.to_thread(check_http, base, tokens["viewer"])
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        say(f"{self.stamp()} {'interrupted' if interrupted else 'time is up'}: stopping")
        if not interrupted:
            await asyncio.sleep(2.0)  # let the last webhooks go out
        return interrupted, http

    async def _script(self, plan: list[Any]) -> None:
        for step in plan:
            wait = self.started + step.at / self.opts.speed - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            self.say(f"{self.stamp()} fault script: {step.text}")
            await asyncio.to_thread(step.action)

    async def _hosts(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            if self.pool is not None:
                await asyncio.to_thread(self.pool.tick)

    async def _progress(self, service: app.Service, desk: Desk) -> None:
        while True:
            await asyncio.sleep(10)
            assert self.pool is not None
            powered = sum(self.pool.powered.values())
            snap = desk.snapshot()
            faults = len(service.faults.engine.open_faults()) if service.faults else 0
            self.say(
                f"{self.stamp()} progress: {powered}/{len(self.pool)} agents up, "
                f"{len(service.registry.devices)} devices known, {faults} open faults, "
                f"{snap['tickets']} tickets, "
                f"{snap['verified']}/{snap['received']} webhooks verified"
            )

    def _stop_agents(self) -> None:
        if self.pool is not None:
            self.pool.stop()


def _runtime_dir(work: Path) -> Path:
    """Where the simulated hosts and the spools go: memory (/dev/shm) when there is one.

    Every spool append is an fsync (the agent's durability promise); on tmpfs that costs
    nothing, so 200 agents do not wait on the disk. Removed when the demo ends; a watchdog
    (:func:`collector.demo.services.remove_when_gone`) removes it when the demo is killed.
    """
    shm = Path("/dev/shm")
    if shm.is_dir() and os.access(shm, os.W_OK):
        return Path(tempfile.mkdtemp(prefix="fleetdesk-demo-", dir=shm))
    return Path(tempfile.mkdtemp(prefix="runtime-", dir=work))


def main(opts: Options, say: Callable[[str], None] = print) -> dict[str, Any]:
    """Run the demo to the end (or SIGINT/SIGTERM) and return the summary."""
    opts.workdir.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(opts.workdir / "demo.log")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    logging.basicConfig(level=logging.INFO, handlers=[handler], force=True)
    logging.getLogger("fleetdesk.agent").setLevel(logging.WARNING)

    async def go() -> dict[str, Any]:
        quit = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, quit.set)
        return await Demo(opts, say).run(quit)

    return asyncio.run(go())
