"""The API's request and response bodies (pydantic v2): what the OpenAPI document describes."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from cloud.alerting import AlertEvent, AlertState
from cloud.api._auth import Role
from cloud.registry import Asset
from cloud.workorders import Priority, WorkOrder, WoState

T = TypeVar("T")

Reason = Annotated[str, Field(min_length=1, max_length=500)]


class _Out(BaseModel):
    model_config = ConfigDict(frozen=True)


class Page(_Out, Generic[T]):
    """One page of a list: the items and where they sit in the whole."""

    items: list[T]
    total: int
    """How many items match the filters, over all pages."""
    limit: int
    offset: int


class Problem(_Out):
    """An error answer (every 4xx and 5xx but request validation, which is FastAPI's 422)."""

    error: str
    """A stable, machine-readable code: ``unauthorized``, ``forbidden``, ``not_found``,
    ``illegal_transition``, ``no_work_order``, ``influx_unavailable``..."""
    message: str
    """What went wrong, for people."""
    state: str | None = None
    """For ``illegal_transition``: the current state."""
    allowed: list[str] | None = None
    """For ``illegal_transition``: the events the current state allows."""


class Health(_Out):
    """The public health check."""

    status: str
    version: str


class Me(_Out):
    """Who the presented token belongs to."""

    name: str
    role: Role


class TargetScore(_Out):
    """The latest score of one target (failure mode or consumable) by one model."""

    target: str
    model_name: str
    model_version: str
    time: dt.datetime
    health: float | None = None
    probability: float | None = None
    horizon_h: float | None = None
    rul: float | None = None
    rul_lo: float | None = None
    rul_hi: float | None = None


class AssetSummary(_Out):
    """One asset of the fleet overview: its record's key fields and its latest condition."""

    asset_id: str
    site: str
    customer: str
    tier: str
    asset_class: str
    team: str
    criticality: str
    model: str
    profile: str
    health: float | None
    """The lowest latest health (0-100, higher is healthier) over its targets."""
    worst_probability: float | None
    """The highest latest failure probability over its targets."""
    worst_target: str | None
    """The target with the highest probability (or the lowest health when none has one)."""
    shortest_rul: float | None
    """The shortest latest remaining life over its targets, hours."""
    shortest_rul_lo: float | None
    """The lower bound of that remaining life's interval, hours."""
    scored_at: dt.datetime | None
    """The time of its latest score."""
    open_alerts: int
    """Alerts in an active state (open, acknowledged, snoozed, suppressed)."""
    open_work_orders: int
    """Work orders not yet done (proposed, pending, failed, created, assigned, in progress)."""


class AssetDetail(_Out):
    """One asset: its full record, its summary and its latest score per target and model."""

    record: Asset
    summary: AssetSummary
    targets: list[TargetScore]


class ScorePoint(_Out):
    """One point of a score history."""

    time: dt.datetime
    health: float | None = None
    probability: float | None = None
    horizon_h: float | None = None
    rul: float | None = None
    rul_lo: float | None = None
    rul_hi: float | None = None


class ScoreSeries(_Out):
    """The score history of one target by one model, oldest first."""

    target: str
    model_name: str
    model_version: str
    points: list[ScorePoint]


class ScoreHistory(_Out):
    """An asset's score history over a range."""

    asset: str
    start: dt.datetime
    end: dt.datetime
    series: list[ScoreSeries]


class Telemetry(_Out):
    """An asset's signals over a range, one aggregate per `every` bucket, oldest first."""

    asset: str
    start: dt.datetime
    end: dt.datetime
    every: str
    """The bucket width (InfluxQL duration: ``30s``, ``5m``, ``1h``)."""
    aggregate: str
    signals: list[str]
    times: list[dt.datetime]
    """The start of each bucket that holds data."""
    values: dict[str, list[float | None]]
    """Per signal, one value per entry of `times` (None where the bucket has none)."""


class WorkOrderRef(_Out):
    """The work order raised for an alert."""

    key: str
    state: WoState
    priority: Priority


class AlertOut(_Out):
    """One alert, with its asset's key fields and its work order."""

    alert_id: str
    asset: str
    site: str | None
    """From the registry; None for an asset the registry does not know."""
    customer: str | None
    tier: str | None
    criticality: str | None
    target: str
    state: AlertState
    opened_at: dt.datetime
    updated_at: dt.datetime
    last_score: float
    last_score_at: dt.datetime
    peak: float
    snoozed_until: dt.datetime | None
    resolved_at: dt.datetime | None
    closed_at: dt.datetime | None
    reason: str
    work_order: WorkOrderRef | None
    allowed: list[AlertEvent]
    """The events its state allows (a UI enables its buttons from this)."""


class ActionIn(BaseModel):
    """An optional reason for an action (recorded in the audit log)."""

    model_config = ConfigDict(extra="forbid")

    reason: Reason | None = None


class SnoozeIn(BaseModel):
    """Snooze until a time (timezone-aware, in the future)."""

    model_config = ConfigDict(extra="forbid")

    until: dt.datetime
    reason: Reason | None = None


class DismissIn(BaseModel):
    """Dismiss with a reason (required)."""

    model_config = ConfigDict(extra="forbid")

    reason: Reason


class ActionResult(_Out):
    """What an action on an alert did."""

    alert: AlertOut
    work_order: WorkOrderRef | None = None
    """The work order the action changed, if any."""


class WorkOrderSummary(_Out):
    """One work order of a list."""

    key: str
    state: WoState
    priority: Priority
    asset: str
    site: str
    customer: str
    tier: str
    team: str
    target: str
    kind: str
    title: str
    created_at: dt.datetime
    updated_at: dt.datetime
    respond_by: dt.datetime
    due_by: dt.datetime
    alert_id: str | None
    external_id: str | None
    reason: str
    """Why it is in its state (``suggest``, ``auto``, ``budget_exhausted``, a cancel reason)."""


class Transition(_Out):
    """One state change of a work order."""

    at: dt.datetime
    event: str
    old: str
    new: str
    source: str
    """Who: ``outbox``, ``service_system``, ``scorer``, ``cli``, ``api:<user>``."""


class Delivery(_Out):
    """One delivery attempt or outcome to the service system."""

    op: str
    attempt: int
    at: dt.datetime
    outcome: str
    detail: str


class WorkOrderDetail(_Out):
    """One work order: its summary, its full content, its transitions and deliveries."""

    summary: WorkOrderSummary
    work_order: WorkOrder
    transitions: list[Transition]
    deliveries: list[Delivery]


class AuditEntry(_Out):
    """One entry of the audit log."""

    model_config = ConfigDict(frozen=True, extra="allow")

    at: dt.datetime
    user: str
    role: str
    action: str
    target: str
    reason: str | None
    outcome: str


def page(items: list[Any], *, total: int, limit: int, offset: int) -> dict[str, Any]:
    """The fields of a `Page`."""
    return {"items": items, "total": total, "limit": limit, "offset": offset}
