"""The collector service: its parts assembled in one place and run under one TaskGroup.

Tasks: MQTT intake, SNMP poller and trap receiver (when configured), the rules clock (one tick
a second for absence and ``for`` timers), the state writer (device registry and faults to the
store) and the HTTP server. ``stop`` (set by SIGTERM/SIGINT) drains: intake disconnects
first (the broker keeps the persistent session), the last batch goes down the pipeline, then
the registry, faults and rules state are written, the TSDB writer flushes and the store closes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from collector.config.collector import CollectorConfig
from collector.intake.deadletter import Rejects
from collector.intake.mqtt import MqttIntake
from collector.intake.snmp_poll import Poller
from collector.intake.snmp_profiles import Profile, ProfileError, load_profiles
from collector.intake.snmp_traps import TrapReceiver
from collector.metrics import Metrics
from collector.pipeline.assembly import Pipeline, assemble
from collector.pipeline.dedup import Registry
from collector.pipeline.rules_stage import FaultLog, RulesSetup, RulesStage, load_setup, new_engine
from collector.pipeline.stage import FaultStage
from collector.preset_paths import default_rules_dir
from collector.rules.engine import Engine
from collector.service.tickets import Tickets, TicketsSetup, build_tickets, load_tickets
from collector.store import Store
from collector.store.tsdb import InfluxWriter, RecentSamples, TelemetryWriter

log = logging.getLogger("fleetdesk.collector")

ENGINE_STATE = "rules_engine"


@dataclass
class Service:
    """Everything the tasks share; built by :func:`build`, run by :func:`run`."""

    cfg: CollectorConfig
    metrics: Metrics
    store: Store
    registry: Registry
    rejects: Rejects
    pipeline: Pipeline
    sink: TelemetryWriter | None
    recent: RecentSamples | None
    intake: MqttIntake
    rules: RulesStage | None = None
    faults: FaultLog | None = None
    tickets: Tickets | None = None
    poller: Poller | None = None
    traps: TrapReceiver | None = None
    stopping: bool = False
    http_port: int | None = None  # once listening (the config may say 0: any free port)

    def health(self) -> tuple[bool, dict[str, Any]]:
        detail: dict[str, Any] = {
            "mqtt_connected": self.intake.connected,
            "mqtt_subscribed": self.intake.subscribed,  # after SUBACK: messages now reach us
            "devices": len(self.registry.devices),
            "tsdb_backlog": self.sink.backlog if self.sink is not None else None,
            "draining": self.stopping,
        }
        return not self.stopping, detail


def build(
    cfg: CollectorConfig,
    store: Store,
    setup: RulesSetup | None = None,
    engine: Engine | None = None,
    tickets: TicketsSetup | None = None,
) -> Service:
    """The service's parts, wired; ``engine`` is the rules engine built from ``setup``."""
    metrics = Metrics()
    known = None
    if setup is not None:
        inventory = setup.inventory
        known = lambda device: inventory.get(device) is not None  # noqa: E731
    registry = Registry(metrics, window=cfg.intake.dedup_window, known=known)
    registry.restore(store.devices())
    rejects = Rejects(
        metrics,
        file=cfg.intake.dead_letter_file,
        topic=cfg.intake.dead_letter_topic,
        logs_per_minute=cfg.intake.reject_logs_per_minute,
    )
    writer: TelemetryWriter | None = InfluxWriter(cfg.tsdb, metrics) if cfg.tsdb.url else None
    recent = None if writer is not None else RecentSamples(cfg.tsdb.recent_samples, metrics)
    faults = None
    ticketing = None
    fault_stages: list[FaultStage] = []
    if engine is not None and setup is not None:
        faults = FaultLog(engine, metrics)
        faults.open_now()  # a restored engine's open faults show at once
        # every fault becomes a ticket (kept in the store; delivered when sinks are configured)
        ticket_setup = tickets if tickets is not None else load_tickets(cfg)
        ticketing = build_tickets(cfg, ticket_setup, setup, store.engine, metrics.registry)
        fault_stages = [faults, ticketing.runtime]
    pipeline = assemble(
        intake=cfg.intake,
        mappings=cfg.mappings,
        metrics=metrics,
        registry=registry,
        rejects=rejects,
        measurement=cfg.tsdb.measurement,
        telemetry=writer,
        recent=recent,
        engine=engine,
        fault_stages=fault_stages,
    )
    intake = MqttIntake(cfg.mqtt, cfg.mappings, pipeline.feed, metrics)
    rejects.publish = intake.publish
    service = Service(
        cfg,
        metrics,
        store,
        registry,
        rejects,
        pipeline,
        writer,
        recent,
        intake,
        pipeline.rules,
        faults,
        ticketing,
    )
    if cfg.snmp.targets:
        service.poller = Poller(cfg.snmp, snmp_profiles(cfg), pipeline, metrics)
    if cfg.snmp.traps is not None:
        named = dict(setup.rules.traps) if setup is not None else {}  # the rules' trap OIDs
        service.traps = TrapReceiver(
            cfg.snmp.traps, cfg.snmp.targets, pipeline, metrics, trap_names=named
        )
    return service


def snmp_profiles(cfg: CollectorConfig) -> dict[str, Profile]:
    """The SNMP profiles, each polled device's profile checked (ProfileError names it)."""
    folder = cfg.snmp.profiles_dir or default_rules_dir() / "snmp"
    profiles = load_profiles(folder)
    for target in cfg.snmp.targets:
        if target.profile not in profiles:
            raise ProfileError(
                str(cfg.source),
                f"snmp.devices: {target.device}",
                f"unknown profile {target.profile!r} "
                f"(in {folder}: {', '.join(sorted(profiles)) or 'none'})",
            )
    return profiles


async def _every(stop: asyncio.Event, seconds: float, work: Any) -> None:
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=seconds)
        if not stop.is_set():
            await work()


async def flush_state(service: Service) -> None:
    """Write dirty devices and new fault events to the store (off the event loop).

    What could not be written (database down) is kept and written on the next flush.
    """
    rows = service.registry.take_dirty()
    try:
        if rows:
            await asyncio.to_thread(service.store.upsert_devices, rows)
    except Exception:
        service.metrics.store_errors.inc()
        for row in rows:
            dev = service.registry.devices.get(row.id)
            if dev is not None:
                service.registry.dirty.add(dev)
        log.exception("state store: device registry write failed")
    faults = service.faults
    if faults is None or not faults.changed:
        return
    events, open_now = faults.take()
    try:
        await asyncio.to_thread(service.store.record_faults, events, open_now)
    except Exception:
        service.metrics.store_errors.inc()
        faults.pending[:0] = events
        faults.changed = True
        log.exception("state store: fault write failed")


async def save_engine_state(service: Service, engine: Engine | None) -> None:
    if engine is None:
        return
    state = engine.export_state()
    await asyncio.to_thread(service.store.save_state, ENGINE_STATE, state)


async def run(
    cfg: CollectorConfig,
    stop: asyncio.Event,
    *,
    setup: RulesSetup | None = None,
    tickets: TicketsSetup | None = None,
    on_ready: Callable[[Service], None] | None = None,
) -> Service:
    """Run until ``stop`` is set, then drain. Returns the service (for tests to inspect)."""
    from collector.http import app as http
    from collector.http.desk_route import desk_route

    store = await asyncio.to_thread(Store.open, cfg.store.url)
    if setup is None:
        setup = load_setup(cfg)
    engine = None
    if setup is not None:
        saved = await asyncio.to_thread(store.load_state, ENGINE_STATE)
        engine = new_engine(setup, saved)
    service = build(cfg, store, setup, engine, tickets)
    routes = []
    if service.tickets is not None and service.tickets.inbound is not None:
        routes.append(desk_route(service.tickets.inbound))
    app = http.build_app(service.metrics, service.health, routes)

    def listening(port: int) -> None:
        service.http_port = port
        log.info("http on %s:%d (/healthz, /metrics)", cfg.http.host, port)

    async def clock() -> None:
        service.pipeline.tick(datetime.now(UTC))

    async def engine_state() -> None:
        await save_engine_state(service, engine)

    async def state() -> None:
        await flush_state(service)

    try:
        async with asyncio.TaskGroup() as tg:
            tg.create_task(service.intake.run(stop), name="mqtt-intake")
            tg.create_task(
                http.serve(app, cfg.http.host, cfg.http.port, stop, on_listening=listening),
                name="http",
            )
            tg.create_task(_every(stop, cfg.store.flush_interval_s, state), name="state-writer")
            if service.poller is not None:
                tg.create_task(service.poller.run(stop), name="snmp-poller")
            if service.traps is not None:
                tg.create_task(service.traps.run(stop), name="snmp-traps")
            if service.tickets is not None:
                tg.create_task(service.tickets.runtime.run(stop), name="tickets")
            if engine is not None:
                tg.create_task(_every(stop, 1.0, clock), name="rules-clock")
                tg.create_task(
                    _every(stop, cfg.rules.state_flush_s, engine_state), name="rules-state"
                )
            if on_ready is not None:
                on_ready(service)
            await stop.wait()
            service.stopping = True
            service.metrics.draining.set(1)
    finally:
        stop.set()
        log.info("draining")
        await flush_state(service)
        if service.tickets is not None:  # fault events of the last batch
            await service.tickets.runtime.drain()
        await save_engine_state(service, engine)
        if service.sink is not None:
            await asyncio.to_thread(service.sink.close)
        service.rejects.close()
        await asyncio.to_thread(store.close)
        log.info("stopped")
    return service


def install_signal_handlers(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
