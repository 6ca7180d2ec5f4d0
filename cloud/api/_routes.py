"""Routes: health, who am I, work orders (list, one, approve, reject), the audit log."""

from __future__ import annotations

import sqlite3
from typing import Annotated

from fastapi import APIRouter, FastAPI, Query, Request
from fastapi.responses import JSONResponse

from cloud.api._alerts import router as alerts
from cloud.api._app import (
    API_PREFIX,
    ERRORS,
    Admin,
    ApiError,
    Context,
    Ctx,
    Planner,
    ReadDb,
    Viewer,
    WriteStore,
)
from cloud.api._assets import router as assets
from cloud.api._auth import Principal
from cloud.api._decisions import WoRow, get_work_order, history, query_work_orders
from cloud.api._models import (
    ActionIn,
    AuditEntry,
    Delivery,
    DismissIn,
    Health,
    Me,
    Page,
    Problem,
    Transition,
    WorkOrderDetail,
    WorkOrderSummary,
    page,
)
from cloud.workorders import (
    IllegalWorkOrderTransition,
    Priority,
    Store,
    WoEvent,
    WorkOrder,
    WoState,
)
from edge_agent import __version__

health = APIRouter(tags=["health"])
api = APIRouter(responses=ERRORS)
NOT_FOUND: dict[int | str, dict[str, object]] = {
    404: {"model": Problem, "description": "No such work order"}
}
ACTION_ERRORS: dict[int | str, dict[str, object]] = NOT_FOUND | {
    409: {
        "model": Problem,
        "description": "The state does not allow it (names the state and the allowed events)",
    },
}


@health.get("/healthz", response_model=Health, summary="Health check (no token needed)")
def healthz() -> Health:
    """The only route served without a token."""
    return Health(status="ok", version=__version__)


@api.get("/me", response_model=Me, tags=["auth"], summary="Who the token belongs to")
def me(user: Viewer) -> Me:
    """The token's name and role (a UI's login check)."""
    return Me(name=user.name, role=user.role)


@api.get("/openapi.json", include_in_schema=False)
def openapi(request: Request, _user: Viewer) -> JSONResponse:
    """The OpenAPI document (also committed as docs/openapi.json)."""
    return JSONResponse(request.app.openapi())


def _summary(row: WoRow) -> WorkOrderSummary:
    p = row.payload
    return WorkOrderSummary(
        key=row.key,
        state=row.state,
        priority=Priority(row.priority),
        asset=p["asset"],
        site=p["site"],
        customer=p["customer"],
        tier=p["tier"],
        team=p["team"],
        target=p.get("failure_mode") or p.get("consumable") or "",
        kind=p["kind"],
        title=p["title"],
        created_at=p["created_at"],
        updated_at=row.updated_at,
        respond_by=p["respond_by"],
        due_by=p["due_by"],
        alert_id=row.alert_id,
        external_id=row.external_id,
        reason=row.reason,
    )


@api.get(
    "/workorders",
    response_model=Page[WorkOrderSummary],
    tags=["workorders"],
    summary="Work orders, newest first",
)
def list_work_orders(
    *,
    _user: Viewer,
    db: ReadDb,
    state: Annotated[list[WoState] | None, Query(description="Any of these states")] = None,
    priority: Annotated[list[Priority] | None, Query(description="Any of these")] = None,
    site: Annotated[list[str] | None, Query(description="Any of these sites")] = None,
    asset: Annotated[list[str] | None, Query(description="Any of these assets")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> dict[str, object]:
    """Work orders matching every filter given (each filter: any of its values)."""
    rows, total = query_work_orders(
        db,
        states=state or (),
        priorities=[p.value for p in priority or ()],
        sites=site or (),
        assets=asset or (),
        limit=limit,
        offset=offset,
    )
    return page([_summary(r) for r in rows], total=total, limit=limit, offset=offset)


def _detail(db: sqlite3.Connection, key: str) -> WorkOrderDetail:
    row = get_work_order(db, key)
    if row is None:
        raise ApiError(404, "not_found", f"no work order {key!r}")
    events, deliveries = history(db, key)
    return WorkOrderDetail(
        summary=_summary(row),
        work_order=WorkOrder.model_validate(row.payload),
        transitions=[Transition.model_validate(e) for e in events],
        deliveries=[Delivery.model_validate(d) for d in deliveries],
    )


@api.get(
    "/workorders/{key}",
    response_model=WorkOrderDetail,
    responses=NOT_FOUND,
    tags=["workorders"],
    summary="One work order with its transitions and deliveries",
    name="get_work_order",
)
def get_work_order_route(_user: Viewer, db: ReadDb, key: str) -> WorkOrderDetail:
    """The work order's content (DESIGN.md fields), its state history and every delivery."""
    return _detail(db, key)


def _wo_action(
    ctx: Context,
    user: Principal,
    *,
    db: sqlite3.Connection,
    store: Store,
    key: str,
    event: WoEvent,
    reason: str | None,
) -> WorkOrderDetail:
    action = f"workorder.{event.value}"

    def audit(outcome: str, **detail: object) -> None:
        ctx.audit.record(
            at=ctx.clock(),
            user=user.name,
            role=user.role.value,
            action=action,
            target=key,
            reason=reason,
            outcome=outcome,
            detail=dict(detail),
        )

    try:
        state = store.transition(
            key,
            event,
            now=ctx.clock(),
            source=f"api:{user.name}",
            reason=reason if event is WoEvent.REJECT else None,
        )
    except KeyError:
        audit("not_found")
        raise ApiError(404, "not_found", f"no work order {key!r}") from None
    except IllegalWorkOrderTransition as exc:
        audit("illegal_transition", state=exc.state.value)
        raise ApiError(
            409,
            "illegal_transition",
            str(exc),
            state=exc.state.value,
            allowed=[e.value for e in exc.allowed],
        ) from None
    audit("ok", state=state.value)
    return _detail(db, key)


@api.post(
    "/workorders/{key}/approve",
    response_model=WorkOrderDetail,
    responses=ACTION_ERRORS,
    tags=["workorders"],
    summary="Approve a proposed work order",
)
def approve_work_order(
    *,
    ctx: Ctx,
    user: Planner,
    db: ReadDb,
    store: WriteStore,
    key: str,
    body: ActionIn | None = None,
) -> WorkOrderDetail:
    """A proposed work order (``suggest`` mode or over budget) goes to the outbox.

    As ``prognos workorders approve KEY``; for rule work orders too, which have no alert.
    """
    return _wo_action(
        ctx,
        user,
        db=db,
        store=store,
        key=key,
        event=WoEvent.APPROVE,
        reason=body.reason if body else None,
    )


@api.post(
    "/workorders/{key}/reject",
    response_model=WorkOrderDetail,
    responses=ACTION_ERRORS,
    tags=["workorders"],
    summary="Reject a proposed work order (reason required)",
)
def reject_work_order(
    *, ctx: Ctx, user: Planner, db: ReadDb, store: WriteStore, key: str, body: DismissIn
) -> WorkOrderDetail:
    """A proposed work order is not wanted; nothing was sent, nothing will be."""
    return _wo_action(
        ctx, user, db=db, store=store, key=key, event=WoEvent.REJECT, reason=body.reason
    )


@api.get(
    "/audit",
    response_model=Page[AuditEntry],
    tags=["audit"],
    summary="The audit log, newest first (admin)",
)
def audit_log(
    ctx: Ctx,
    _user: Admin,
    user: Annotated[str | None, Query(description="Only this user's entries")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> dict[str, object]:
    """Every state-changing call: who, when, what, why, and what came of it."""
    entries = [e for e in reversed(ctx.audit.entries()) if user is None or e["user"] == user]
    return page(entries[offset : offset + limit], total=len(entries), limit=limit, offset=offset)


def register(app: FastAPI) -> None:
    """Add every route to `app`."""
    app.include_router(health)
    app.include_router(api, prefix=API_PREFIX)
    app.include_router(assets, prefix=API_PREFIX)
    app.include_router(alerts, prefix=API_PREFIX)
