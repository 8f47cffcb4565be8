"""The collector service: its parts assembled in one place and run under one TaskGroup.

Tasks: MQTT intake, SNMP poller and trap receiver (when configured), the rules clock (one tick
a second for absence and ``for`` timers), the intake committer (registry rows, fault events and
telemetry made durable, then the MQTT messages acknowledged: ``committer.py``), the rules-state
writer, the tickets and the HTTP server; the TSDB shipper is a thread emptying the disk buffer.
``stop`` (set by SIGTERM/SIGINT) drains: intake stops reading, the last batch goes down the
pipeline and is committed and acknowledged, the connection closes (the broker keeps the
persistent session), the tickets apply the last fault events, the rules state is saved, the
shipper sends what it can in a few seconds (the rest stays on disk) and the store closes.
Storage errors never stop the service: each part retries with backoff and ``/healthz`` says
``degraded`` (see docs/reliability.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from collector.config.collector import CollectorConfig
from collector.intake.deadletter import Rejects
from collector.intake.group import IntakeGroup
from collector.intake.mqtt import MqttIntake
from collector.intake.snmp_poll import Poller
from collector.intake.snmp_profiles import Profile, ProfileError, load_profiles
from collector.intake.snmp_traps import TrapReceiver
from collector.metrics import Metrics
from collector.pipeline.assembly import Pipeline, assemble
from collector.pipeline.dedup import Registry
from collector.pipeline.identity import from_inventory
from collector.pipeline.listening import ListeningClock
from collector.pipeline.rules_stage import FaultLog, RulesSetup, RulesStage, load_setup, new_engine
from collector.pipeline.stage import FaultStage
from collector.preset_paths import default_rules_dir
from collector.rules.engine import Engine
from collector.scale.scope import Scope, tenant_inventory
from collector.service.calendars import EstimatedCalendars
from collector.service.committer import Committer
from collector.service.tickets import Tickets, TicketsSetup, build_tickets, load_tickets
from collector.store import Store
from collector.store.retry import STORAGE_ERRORS, Health
from collector.store.tsdb import RecentSamples
from collector.store.tsdb_buffer import DiskBuffer, Shipper

log = logging.getLogger("fleetdesk.collector")

ENGINE_STATE = "rules_engine"
DRAIN_COMMIT_S = 10.0  # a drain keeps retrying a failed commit this long (then the broker keeps it)
DRAIN_SHIP_S = 5.0  # ... and ships the disk buffer this long (the rest is sent on the next start)


@dataclass
class Service:
    """Everything the tasks share; built by :func:`build`, run by :func:`run`."""

    cfg: CollectorConfig
    metrics: Metrics
    store: Store
    registry: Registry
    rejects: Rejects
    pipeline: Pipeline
    sink: DiskBuffer | None
    recent: RecentSamples | None
    intake: IntakeGroup  # one MQTT session, or one per owned partition
    committer: Committer
    health_parts: Health
    shipper: Shipper | None = None
    rules: RulesStage | None = None
    faults: FaultLog | None = None
    tickets: Tickets | None = None
    poller: Poller | None = None
    traps: TrapReceiver | None = None
    stopping: bool = False
    http_port: int | None = None  # once listening (the config may say 0: any free port)
    calendars: EstimatedCalendars | None = None
    api: Any = None  # the REST API's context (collector.http.api.context.ApiContext)
    scope: Scope | None = None  # scale-out: the partitions this collector owns

    def health(self) -> tuple[bool, dict[str, Any]]:
        detail: dict[str, Any] = {
            "mqtt_connected": self.intake.connected,
            "mqtt_subscribed": self.intake.subscribed,  # after SUBACK: messages now reach us
            "devices": len(self.registry.devices),
            "tsdb_backlog": self.sink.backlog if self.sink is not None else None,
            "draining": self.stopping,
        }
        if self.scope is not None:
            detail["partitions"] = sorted(self.scope.parts)
            detail["tickets_leader"] = self.scope.tickets
        if self.calendars is not None:  # estimated holidays ahead: deadlines may move
            detail["calendars_estimated"] = self.calendars.now()
        degraded = self.health_parts.degraded()
        if self.shipper is not None and self.shipper.failing is not None:
            degraded["tsdb"] = f"{self.shipper.failing} (kept in the disk buffer)"
        if degraded:
            detail["degraded"] = degraded
        return not self.stopping, detail


def build(
    cfg: CollectorConfig,
    store: Store,
    setup: RulesSetup | None = None,
    engine: Engine | None = None,
    tickets: TicketsSetup | None = None,
    *,
    scope: Scope | None = None,
) -> Service:
    """The service's parts, wired; ``engine`` is the rules engine built from ``setup``;
    ``scope``: the partitions this collector owns (scale-out), None: every device."""
    metrics = Metrics()
    identity = None
    if setup is not None:  # tenants from the inventory; polled SNMP devices are known too
        polled = [t.device for t in cfg.snmp.targets]
        identity = from_inventory(setup.inventory, configured=polled, adopt=cfg.rules.adopt_tenants)
    registry = Registry(metrics, window=cfg.intake.dedup_window, identity=identity)
    registry.restore(store.devices())
    rejects = Rejects(
        metrics,
        file=cfg.intake.dead_letter_file,
        topic=cfg.intake.dead_letter_topic,
        logs_per_minute=cfg.intake.reject_logs_per_minute,
    )
    health = Health(metrics.store_errors)
    writer = (
        DiskBuffer(buffer_dir(cfg), cfg.tsdb.max_buffer_lines, metrics) if cfg.tsdb.url else None
    )
    recent = RecentSamples(cfg.tsdb.recent_samples, metrics)  # for the board, TSDB or not
    faults = None
    ticketing = None
    fault_stages: list[FaultStage] = []
    if engine is not None and setup is not None:
        # every fault becomes a ticket (kept in the store; delivered when sinks are configured),
        # handed over through the store: each event is committed with its ticket input
        faults = FaultLog(engine, metrics, tickets=True)
        faults.open_now()  # a restored engine's open faults show at once
        if scope is None or scope.tickets:  # scale-out: the book runs in one collector
            ticket_setup = tickets if tickets is not None else load_tickets(cfg)
            ticketing = build_tickets(
                cfg,
                ticket_setup,
                setup,
                store,
                metrics.registry,
                health=health,
                serials=registry.serial,
            )
        fault_stages = [faults]
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
    intake = IntakeGroup(mqtt_sessions(cfg, pipeline, metrics, scope), cfg.mqtt.protocol)
    rejects.publish = intake.publish
    committer = Committer(
        store=store,
        registry=registry,
        faults=faults,
        buffer=writer,
        intake=intake,
        metrics=metrics,
        health=health,
        commit_interval_s=cfg.store.commit_interval_s,
        idle_interval_s=cfg.store.flush_interval_s,
        scope=scope.fault_scope() if scope is not None else None,
        states_of=(
            (lambda events: scope.states_for(engine.state, (e[1] for e in events)))
            if scope is not None and engine is not None
            else None
        ),
    )
    intake.set_on_batch(committer.notify)
    if ticketing is not None:
        committer.on_faults.append(ticketing.runtime.notify)
        committer.tickets_in_commit = ticketing.runtime.in_commit
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
        committer,
        health,
        rules=pipeline.rules,
        faults=faults,
        tickets=ticketing,
        scope=scope,
    )
    rules_dir = setup.policies_dir if setup is not None else None
    service.calendars = EstimatedCalendars(rules_dir).register(metrics.registry)
    if writer is not None:
        service.shipper = Shipper(writer, cfg.tsdb, metrics)
    if cfg.snmp.targets:
        service.poller = Poller(cfg.snmp, snmp_profiles(cfg), pipeline, metrics)
    if cfg.snmp.traps is not None:
        named = dict(setup.rules.traps) if setup is not None else {}  # the rules' trap OIDs
        service.traps = TrapReceiver(
            cfg.snmp.traps, cfg.snmp.targets, pipeline, metrics, trap_names=named
        )
    return service


def mqtt_sessions(
    cfg: CollectorConfig, pipeline: Pipeline, metrics: Metrics, scope: Scope | None
) -> list[MqttIntake]:
    """One session for every device, or one per owned partition: client id
    ``<mqtt.client_id>-p007`` subscribed to its devices' topics (and, in partition 0's
    session, the custom mappings)."""
    if scope is None:
        return [MqttIntake(cfg.mqtt, cfg.mappings, pipeline.feed, metrics)]
    sessions = []
    for part in sorted(scope.parts):
        topics = scope.partitioning.topics(part)
        if part == 0:
            topics += [m.subscription for m in cfg.mappings]
        if not topics:
            continue  # no device hashes here: nothing to receive
        own = cfg.mqtt.model_copy(update={"client_id": f"{cfg.mqtt.client_id}-p{part:03d}"})
        sessions.append(MqttIntake(own, cfg.mappings, pipeline.feed, metrics, topics=topics))
    return sessions


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


def buffer_dir(cfg: CollectorConfig) -> Path:
    """The TSDB disk buffer's folder: configured, or beside the SQLite file, or the config."""
    if cfg.tsdb.buffer_dir is not None:
        return cfg.tsdb.buffer_dir
    url = sa.engine.make_url(cfg.store.url)
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        return Path(f"{url.database}.tsdb-buffer")
    return cfg.source.parent / "fleetdesk-tsdb-buffer"


async def save_engine_state(service: Service, engine: Engine | None) -> None:
    """The rules engine's state to the store; a storage error is counted, shown and retried at
    the next interval (the engine keeps running on what it has in memory)."""
    if engine is None:
        return
    state = engine.export_state()
    try:
        if service.scope is not None:  # one blob per owned partition
            await asyncio.to_thread(service.store.save_states, service.scope.split(state))
        else:
            await asyncio.to_thread(service.store.save_state, ENGINE_STATE, state)
    except STORAGE_ERRORS as exc:
        service.health_parts.failed("rules-state", exc)
        return
    service.health_parts.recovered("rules-state")


async def run(
    cfg: CollectorConfig,
    stop: asyncio.Event,
    *,
    setup: RulesSetup | None = None,
    tickets: TicketsSetup | None = None,
    on_ready: Callable[[Service], None] | None = None,
    scope: Scope | None = None,
) -> Service:
    """Run until ``stop`` is set, then drain. Returns the service (for tests to inspect).
    ``scope``: the partitions this collector owns (``collector.service.partitioned``)."""
    from collector.http import app as http
    from collector.http.desk_route import desk_routes
    from collector.service.web import web_routes

    store = await asyncio.to_thread(Store.open, cfg.store.url)
    if setup is None:
        setup = load_setup(cfg)
    engine = None
    if setup is not None:
        if scope is not None:  # its partitions' devices, from their own saved state
            setup = replace(setup, inventory=scope.inventory())
            blobs = [await asyncio.to_thread(store.load_state, n) for n in scope.state_names()]
            saved = scope.restored(blobs, await asyncio.to_thread(store.devices))
        else:  # subscribed to some tenants: judge only their devices
            setup = replace(setup, inventory=tenant_inventory(setup.inventory, cfg.mqtt.tenants))
            saved = await asyncio.to_thread(store.load_state, ENGINE_STATE)
        engine = new_engine(setup, saved)
    service = build(cfg, store, setup, engine, tickets, scope=scope)
    routes = web_routes(service, setup)
    if service.tickets is not None and service.tickets.inbound is not None:
        routes.extend(desk_routes(service.tickets.inbound))
    app = http.build_app(service.metrics, service.health, routes)

    def listening(port: int) -> None:
        service.http_port = port
        log.info("http on %s:%d (/healthz, /metrics, /api/v1, /board)", cfg.http.host, port)

    listening_clock = ListeningClock(service.pipeline)  # absence only while listening

    async def clock() -> None:
        listening_clock(datetime.now(UTC), service.intake.connected)
        if service.faults is not None and service.faults.changed:
            service.committer.notify()

    async def engine_state() -> None:
        await save_engine_state(service, engine)

    async def last_commit() -> None:  # before the intake disconnects: its acks still go out
        await service.committer.commit(stop, time.monotonic() + DRAIN_COMMIT_S)

    service.intake.set_before_disconnect(last_commit)
    if service.shipper is not None:
        service.shipper.start()

    try:
        async with asyncio.TaskGroup() as tg:
            tg.create_task(service.intake.run(stop), name="mqtt-intake")
            tg.create_task(
                http.serve(app, cfg.http.host, cfg.http.port, stop, on_listening=listening),
                name="http",
            )
            tg.create_task(service.committer.run(stop), name="intake-commit")
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
            if service.api is not None:
                service.api.hub.close()  # open event streams would hold the HTTP server
            service.metrics.draining.set(1)
    finally:
        stop.set()
        log.info("draining")
        # what SNMP and the timers produced after the intake's last commit
        committed = await service.committer.commit(stop, time.monotonic() + DRAIN_COMMIT_S)
        if service.tickets is not None and committed:  # fault events of the last batch
            try:
                await service.tickets.runtime.drain(stop)
            except STORAGE_ERRORS:
                log.error("tickets not drained (database unavailable): applied on next start")
        await save_engine_state(service, engine)
        if service.shipper is not None:
            await asyncio.to_thread(service.shipper.stop, DRAIN_SHIP_S)
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
