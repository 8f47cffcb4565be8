"""The collector's real HTTP app over a real SQLite store, without its network tasks.

``Api`` builds the service exactly as ``collector.service.app.run`` does (same ``build``, same
``web_routes``), feeds MQTT payloads straight into its pipeline and applies the queued fault
events to the ticket service, so a test sees what a running collector would serve.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from collector.config.collector import parse_config
from collector.http import app as http
from collector.pipeline.rules_stage import load_setup, new_engine
from collector.service import app
from collector.service.tickets import load_tickets
from collector.service.web import web_routes
from collector.store import Store
from collector.store.api_store import create_token
from tests.support.collector import telemetry

HEADER = (
    "device,tenant,model,class,site,parent,criticality,customer,policy,"
    "warranty_start,warranty_months,interval_s\n"
)
INVENTORY = HEADER + (
    "gw-1,acme,WR5120,router,north,,common,acme-water,xian-integrator,2026-01-01,36,3600\n"
    "gw-2,acme,WR5120,router,north,,common,acme-water,xian-integrator,2026-01-01,36,3600\n"
    "nj-1,globex,DTU-9,dtu,south,,common,nanjing,nanjing-instruments,2026-03-01,12,3600\n"
    "nj-2,globex,DTU-9,dtu,south,,common,nanjing,nanjing-instruments,2026-03-01,12,3600\n"
)


@dataclass
class Port:
    port: int = 1  # no broker: the tests feed the pipeline directly


@dataclass
class Api:
    tmp: Path
    sink_url: str | None = None
    inventory: str = INVENTORY
    store_url: str | None = None  # default: SQLite in tmp
    tokens: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        from tests.support.collector import collector_yaml

        inv = self.tmp / "inventory.csv"
        inv.write_text(self.inventory)
        extra = f"rules:\n  inventory: {inv}\n"
        env: dict[str, str] = {}
        if self.sink_url is not None:
            sinks = self.tmp / "sinks.yaml"
            sinks.write_text(
                f"sinks:\n  - name: desk\n    type: webhook\n    url: {self.sink_url}\n"
                "    secret_env: DESK_OUT_SECRET\n"
            )
            extra += f"tickets:\n  sinks: {sinks}\n  worker: false\n"
            env["DESK_OUT_SECRET"] = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
        text = collector_yaml(self.tmp, Port(), extra=extra, store_url=self.store_url)  # type: ignore[arg-type]
        path = self.tmp / "collector.yaml"
        path.write_text(text)
        self.cfg = parse_config(text, path)
        self.store = Store.open(self.cfg.store.url)
        self.setup = load_setup(self.cfg)
        assert self.setup is not None
        engine = new_engine(self.setup, None)
        self.service = app.build(
            self.cfg, self.store, self.setup, engine, load_tickets(self.cfg, env)
        )
        self.app = http.build_app(
            self.service.metrics, self.service.health, web_routes(self.service, self.setup)
        )
        for name, role, tenant in (
            ("viewer", "viewer", None),
            ("operator", "operator", None),
            ("admin", "admin", None),
            ("acme-viewer", "viewer", "acme"),
            ("acme-operator", "operator", "acme"),
        ):
            self.tokens[name] = create_token(self.store.engine, role, tenant, name)[0]

    def auth(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"}

    def report(self, device: str, seq: int, tenant: str = "acme", **metrics: Any) -> None:
        """One MQTT telemetry payload through the pipeline, its tickets committed."""
        topic = f"fleet/v1/{tenant}/{device}/telemetry"
        self.service.pipeline.feed([(topic, telemetry(device, seq, **metrics), time.time())])
        self.settle()

    def settle(self) -> None:
        """Commit what the pipeline holds; the ticket runtime takes the fault events from there."""

        async def commit_and_ticket() -> None:
            await self.service.committer.commit()
            assert self.service.tickets is not None
            await self.service.tickets.runtime.drain()

        asyncio.run(commit_and_ticket())

    def close(self) -> None:
        self.store.close()
