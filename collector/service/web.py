"""The REST API and the board in the collector's HTTP app, over the running service's parts."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from starlette.routing import BaseRoute, Mount

from collector.http.api.app import build_api, ticket_listener
from collector.http.api.context import ApiContext
from collector.http.board.routes import board_routes
from collector.intake.envelope import Envelope
from collector.pipeline.rules_stage import RulesSetup, RulesStage
from collector.rules.maintenance import Window
from collector.tickets.sla_adapter import SlaEngine


def api_context(service: Any, setup: RulesSetup | None) -> ApiContext:
    """``service``: collector.service.app.Service (not imported: app imports this module)."""
    pipeline = service.pipeline
    rules: RulesStage | None = pipeline.rules

    def feed(notice: Any) -> None:
        now = datetime.now(UTC).timestamp()
        pipeline([Envelope("", b"", now, msg=notice, source="maintenance")])

    def cancel(window_id: str) -> Window | None:
        if rules is None:
            return None
        rules.cancel_maintenance(window_id, datetime.now(UTC))
        return rules.engine.state.maintenance.windows.get(window_id)

    ticketing = service.tickets
    ctx = ApiContext(
        db=service.store.engine,
        metrics=service.metrics,
        tickets=ticketing.runtime.service if ticketing is not None else None,
        committed=ticketing.runtime.committed if ticketing is not None else None,
        inventory=setup.inventory if setup is not None else None,
        engine=rules.engine if rules is not None else None,
        feed=feed if rules is not None else None,
        cancel=cancel if rules is not None else None,
        registry=service.registry,
        recent=service.recent,
        rejects=service.rejects,
        health=service.health,
        rules_dir=setup.policies_dir if setup is not None else None,
        sla=SlaEngine(setup.policies_dir if setup is not None else None),
    )
    if ticketing is not None:
        ticketing.runtime.listeners.append(ticket_listener(ctx))
    return ctx


def web_routes(service: Any, setup: RulesSetup | None) -> list[BaseRoute]:
    """``/api/v1`` (REST, OpenAPI, events) and the board's pages (``/``, ``/board``, ...)."""
    ctx = api_context(service, setup)
    service.api = ctx
    return [Mount("/api/v1", build_api(ctx)), *board_routes(ctx)]
