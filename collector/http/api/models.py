"""The API's request and response bodies (pydantic): they are the OpenAPI document."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

SlaStatus = Literal["ok", "warning", "escalated", "breached"]
DeviceState = Literal[
    "ok", "faulty", "offline", "unknown_reporting", "in_maintenance", "never_seen"
]
Role = Literal["viewer", "operator", "admin"]
ActionName = Literal[
    "acknowledge",
    "on_site",
    "received_for_repair",
    "resolve",
    "comment",
    "change_level",
    "mark_exempt",
    "change_coverage",
    "pause",
    "resume",
]


class Error(BaseModel):
    error: str = Field(description="a stable code, e.g. unknown_ticket, role_required")
    detail: str = Field(description="what was wrong and what to do about it")
    fields: list[dict[str, Any]] | None = None


class Target(BaseModel):
    name: str
    duration: str
    calendar: str
    start: str
    due: str | None
    left_s: float | None
    running: bool
    paused: bool
    stopped_at: str | None
    outcome: str | None
    pauses: list[list[str | None]]


class TicketOut(BaseModel):
    number: str
    state: str
    device: str | None
    site: str | None
    tenant: str | None
    customer: str | None
    kind: str
    impact: str
    policy: str
    level: str
    coverage: str
    coverage_reason: str
    exempt: str | None
    paused: bool
    fault_active: bool
    onset: str
    opened_at: str
    acknowledged_at: str | None
    resolved_at: str | None
    sla_status: SlaStatus
    time_left_s: float | None
    targets: list[Target]
    escalations: list[str]
    seq: int


class TicketPage(BaseModel):
    items: list[TicketOut]
    total: int
    offset: int
    limit: int


class Delivery(BaseModel):
    sink: str
    state: str
    attempts: int
    created_at: float
    done_at: float | None
    last_error: str | None


class TimelineEntry(BaseModel):
    seq: int
    type: str
    at: str | None
    detail: dict[str, Any]
    deliveries: list[Delivery]


class ActionRecord(BaseModel):
    at: float
    actor: str
    action: str
    reason: str
    result: str


class TicketDetail(TicketOut):
    timeline: list[TimelineEntry]
    actions: list[ActionRecord]


class ActionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    action: ActionName
    reason: str = Field(default="", max_length=2000, description="why: kept with the action")
    level: str | None = Field(default=None, max_length=32, description="change_level: new level")
    exempt: str | None = Field(
        default=None,
        max_length=64,
        pattern=r"^[a-z_]+$",
        description="mark_exempt: one of the policy's exemptions, e.g. misuse",
    )
    coverage: Literal["warranty", "billable"] | None = Field(
        default=None, description="change_coverage: the new coverage"
    )
    charge: Literal["free", "parts", "parts_and_labour"] | None = Field(
        default=None, description="change_coverage: what the customer pays"
    )
    repaired: bool = False


class ActionOut(BaseModel):
    result: str
    detail: str
    ticket: TicketOut | None


class ManualTicketIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    device: str = Field(min_length=1, max_length=64)
    kind: str = Field(min_length=1, max_length=64, pattern=r"^[a-z0-9_]+$")
    impact: Literal["outage", "at_risk", "degraded", "intermittent", "info"] = "outage"
    level: str | None = Field(default=None, max_length=32)
    reason: str = Field(default="", max_length=2000)


class DeviceOut(BaseModel):
    id: str
    tenant: str
    customer: str
    site: str | None
    cls: str
    model: str
    state: DeviceState
    last_seen: float | None
    open_faults: int
    in_inventory: bool


class DevicePage(BaseModel):
    items: list[DeviceOut]
    total: int
    offset: int
    limit: int


class FaultOut(BaseModel):
    id: str
    kind: str
    impact: str
    scope: str
    subject: str
    device: str | None
    site: str | None
    onset: str
    policy: str
    level: str | None
    exempt: str | None
    ticket: str | None


class Sample(BaseModel):
    at: float
    metrics: dict[str, Any]


class Warranty(BaseModel):
    start: str | None
    months: int | None
    policy: str
    coverage_now: str | None


class DeviceDetail(DeviceOut):
    samples: list[Sample]
    faults: list[FaultOut]
    tickets: list[TicketOut]
    warranty: Warranty


class MaintenanceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    device: str | None = Field(default=None, min_length=1, max_length=64)
    site: str | None = Field(default=None, min_length=1, max_length=64)
    start: str = Field(description="ISO 8601 with offset")
    end: str = Field(description="ISO 8601 with offset")
    reason: str = Field(default="", max_length=2000)


class MaintenanceOut(BaseModel):
    id: str
    device: str | None
    site: str | None
    start: str
    end: str
    active: bool


class Due(BaseModel):
    calendar: str
    start: str
    duration: str
    due: str
    estimated_years: list[int]


class Deadlines(BaseModel):
    policy: str
    level: str
    start: str
    deadlines: dict[str, str]


class Classified(BaseModel):
    policy: str
    level: str | None
    rule: str | None


class Health(BaseModel):
    status: str
    detail: dict[str, Any]
    intake: dict[str, float]
    rejects: dict[str, float]
    tsdb_backlog: int | None
    outbox: dict[str, int]
    dead_letters: int
    estimated_calendars: list[str]


class Whoami(BaseModel):
    name: str
    role: Role
    tenant: str | None


class TokenIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    role: Role
    tenant: str | None = Field(default=None, min_length=1, max_length=64)
    name: str = Field(default="", max_length=128)


class TokenOut(BaseModel):
    token: str = Field(description="shown once: only its SHA-256 is stored")
    name: str
    role: Role
    tenant: str | None
