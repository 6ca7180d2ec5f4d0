"""Routes: the alert feed, one alert, and the planner's actions on alerts.

Actions and what they do (docs/api.md):

- acknowledge: the alert's ``acknowledge`` event.
- snooze: ``snooze`` until a time; the scorer wakes it (``wake``) when the time comes.
- dismiss (reason required): ``close`` (starting the cooldown), and a work order still
  ``proposed`` for it is rejected with the same reason (nothing was sent).
- approve: the alert's ``proposed`` work order (``suggest`` mode, or over the team's budget) is
  approved into the outbox (`Store.transition` with ``approve``, as ``prognos workorders
  approve``); an open or snoozed alert is acknowledged with it.

Every alert change goes through `Store.apply_alert_event`: a compare-and-set on the alert as
stored at the moment of writing (the scorer may have changed it since this request read it), so
neither side's transition is lost, and 409 means the event is illegal for the state it would
have applied to.

Each is audited with the user and the reason, refused ones too.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from typing import Annotated

from fastapi import APIRouter, Query

from cloud.alerting import Alert, AlertEvent, AlertState, IllegalAlertTransition
from cloud.api._app import ERRORS, ApiError, Context, Ctx, Planner, ReadDb, Viewer, WriteStore
from cloud.api._auth import Principal
from cloud.api._decisions import (
    WoRow,
    allowed_events,
    get_alert,
    query_alerts,
    work_orders_for_alerts,
)
from cloud.api._models import (
    ActionIn,
    ActionResult,
    AlertOut,
    DismissIn,
    Page,
    Problem,
    SnoozeIn,
    WorkOrderRef,
    page,
)
from cloud.workorders import IllegalWorkOrderTransition, Priority, Store, WoEvent, WoState

router = APIRouter(tags=["alerts"], responses=ERRORS)
NOT_FOUND: dict[int | str, dict[str, object]] = {
    404: {"model": Problem, "description": "No such alert"}
}
ACTION_ERRORS: dict[int | str, dict[str, object]] = NOT_FOUND | {
    409: {
        "model": Problem,
        "description": "The state does not allow it (names the state and the allowed events)",
    },
}


def _ref(row: WoRow | None) -> WorkOrderRef | None:
    if row is None:
        return None
    return WorkOrderRef(key=row.key, state=row.state, priority=Priority(row.priority))


def _out(ctx: Context, alert: Alert, wo: WoRow | None) -> AlertOut:
    asset = ctx.assets().get(alert.asset)
    return AlertOut(
        alert_id=alert.alert_id,
        asset=alert.asset,
        site=None if asset is None else asset.site,
        customer=None if asset is None else asset.customer,
        tier=None if asset is None else asset.tier.value,
        criticality=None if asset is None else asset.criticality.value,
        target=alert.target,
        state=alert.state,
        opened_at=alert.opened_at,
        updated_at=alert.updated_at,
        last_score=alert.last_score,
        last_score_at=alert.last_score_at,
        peak=alert.peak,
        snoozed_until=alert.snoozed_until,
        resolved_at=alert.resolved_at,
        closed_at=alert.closed_at,
        reason=alert.reason,
        work_order=_ref(wo),
        allowed=allowed_events(alert.state),
    )


@router.get("/alerts", response_model=Page[AlertOut], summary="The alert feed, newest first")
def list_alerts(
    *,
    ctx: Ctx,
    _user: Viewer,
    db: ReadDb,
    state: Annotated[list[AlertState] | None, Query(description="Any of these states")] = None,
    site: Annotated[list[str] | None, Query(description="Any of these sites")] = None,
    asset: Annotated[list[str] | None, Query(description="Any of these assets")] = None,
    target: Annotated[list[str] | None, Query(description="Any of these targets")] = None,
    priority: Annotated[
        list[Priority] | None, Query(description="Alerts whose work order has any of these")
    ] = None,
    min_peak: Annotated[
        float | None, Query(ge=0, le=1, description="Severity: peak score at least this")
    ] = None,
    start: Annotated[
        dt.datetime | None, Query(alias="from", description="Opened at or after")
    ] = None,
    end: Annotated[dt.datetime | None, Query(alias="to", description="Opened before")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> dict[str, object]:
    """The alert feed: alerts matching every filter given, newest opened first.

    Each filter matches any of its values. Each alert carries its asset's site, customer, tier
    and criticality and its work order.
    """
    for name, value in (("from", start), ("to", end)):
        if value is not None and value.tzinfo is None:
            raise ApiError(422, "bad_range", f"{name} must carry a time zone. Got {value}.")
    assets: list[str] | None = list(asset) if asset else None
    if site:
        at_sites = {a.asset_id for a in ctx.assets() if a.site in site}
        assets = sorted(at_sites if assets is None else at_sites & set(assets))
    alerts = query_alerts(db, states=state or (), assets=assets, targets=target or ())
    alerts = [
        a
        for a in alerts
        if (start is None or a.opened_at >= start)
        and (end is None or a.opened_at < end)
        and (min_peak is None or a.peak >= min_peak)
    ]
    orders = work_orders_for_alerts(db, (a.alert_id for a in alerts))
    if priority:
        alerts = [
            a
            for a in alerts
            if a.alert_id in orders and Priority(orders[a.alert_id].priority) in priority
        ]
    alerts.sort(key=lambda a: (a.opened_at, a.alert_id), reverse=True)
    items = [_out(ctx, a, orders.get(a.alert_id)) for a in alerts[offset : offset + limit]]
    return page(items, total=len(alerts), limit=limit, offset=offset)


def _load(db: sqlite3.Connection, alert_id: str) -> Alert:
    alert = get_alert(db, alert_id)
    if alert is None:
        raise ApiError(404, "not_found", f"no alert {alert_id!r}")
    return alert


@router.get(
    "/alerts/{alert_id:path}",
    response_model=AlertOut,
    responses=NOT_FOUND,
    summary="One alert",
    name="get_alert",
)
def get_alert_route(ctx: Ctx, _user: Viewer, db: ReadDb, alert_id: str) -> AlertOut:
    """One alert (ids are ``asset/target/n``; the slashes need no escaping)."""
    alert = _load(db, alert_id)
    return _out(ctx, alert, work_orders_for_alerts(db, [alert_id]).get(alert_id))


def _audit(
    ctx: Context,
    user: Principal,
    *,
    action: str,
    alert_id: str,
    reason: str | None,
    outcome: str,
    **detail: object,
) -> None:
    ctx.audit.record(
        at=ctx.clock(),
        user=user.name,
        role=user.role.value,
        action=f"alert.{action}",
        target=alert_id,
        reason=reason,
        outcome=outcome,
        detail=dict(detail),
    )


def _act(
    ctx: Context,
    user: Principal,
    *,
    db: sqlite3.Connection,
    store: Store,
    alert_id: str,
    action: str,
    reason: str | None,
    until: dt.datetime | None = None,
) -> ActionResult:
    now = ctx.clock()
    alert = get_alert(db, alert_id)
    if alert is None:
        _audit(ctx, user, action=action, alert_id=alert_id, reason=reason, outcome="not_found")
        raise ApiError(404, "not_found", f"no alert {alert_id!r}")
    wo = work_orders_for_alerts(db, [alert_id]).get(alert_id)
    source = f"api:{user.name}"
    try:
        alert, changed_wo = _apply_action(
            store,
            alert=alert,
            wo=wo,
            action=action,
            now=now,
            source=source,
            reason=reason,
            until=until,
        )
    except KeyError:
        _audit(ctx, user, action=action, alert_id=alert_id, reason=reason, outcome="not_found")
        raise ApiError(404, "not_found", f"no alert {alert_id!r}") from None
    except (IllegalAlertTransition, IllegalWorkOrderTransition) as exc:
        _audit(
            ctx,
            user,
            action=action,
            alert_id=alert_id,
            reason=reason,
            outcome="illegal_transition",
            state=exc.state.value,
        )
        raise ApiError(
            409,
            "illegal_transition",
            str(exc),
            state=exc.state.value,
            allowed=[e.value for e in exc.allowed],
        ) from None
    except ApiError as exc:
        _audit(
            ctx, user, action=action, alert_id=alert_id, reason=reason, outcome=exc.problem.error
        )
        raise
    _audit(
        ctx,
        user,
        action=action,
        alert_id=alert_id,
        reason=reason,
        outcome="ok",
        state=alert.state.value,
        work_order=None if changed_wo is None else changed_wo.key,
        work_order_state=None if changed_wo is None else changed_wo.state.value,
    )
    current = changed_wo or wo
    return ActionResult(alert=_out(ctx, alert, current), work_order=_ref(changed_wo))


def _apply_action(
    store: Store,
    *,
    alert: Alert,
    wo: WoRow | None,
    action: str,
    now: dt.datetime,
    source: str,
    reason: str | None,
    until: dt.datetime | None,
) -> tuple[Alert, WoRow | None]:
    """Do one action; the alert as stored after it, and the work order it changed (if any)."""
    alert_id = alert.alert_id
    changed_wo: WoRow | None = None
    if action == "approve":
        if wo is None:
            raise ApiError(
                409,
                "no_work_order",
                f"alert {alert_id!r} has no work order to approve",
                state=alert.state.value,
            )
        new_state = store.transition(wo.key, WoEvent.APPROVE, now=now, source=source)
        changed_wo = _with_state(wo, new_state)
        try:
            alert = store.apply_alert_event(
                alert_id, AlertEvent.ACKNOWLEDGE, now=now, source=source, reason=reason
            )
        except IllegalAlertTransition:
            # Acknowledged "with it" only where the state allows; the approval stands.
            alert = _current(store, alert_id, alert)
    else:
        event = {
            "acknowledge": AlertEvent.ACKNOWLEDGE,
            "snooze": AlertEvent.SNOOZE,
            "dismiss": AlertEvent.CLOSE,
        }[action]
        if event is AlertEvent.SNOOZE and until is not None and until <= now:
            raise ApiError(422, "bad_until", f"until ({until}) must be after now ({now})")
        # Compare-and-set on the state as stored now, not as read above: a scorer change
        # in between is kept, and 409 means illegal for the state it would apply to.
        alert = store.apply_alert_event(
            alert_id, event, now=now, source=source, until=until, reason=reason
        )
        if event is AlertEvent.CLOSE and wo is not None and wo.state is WoState.PROPOSED:
            try:
                new_state = store.transition(
                    wo.key, WoEvent.REJECT, now=now, source=source, reason=reason
                )
                changed_wo = _with_state(wo, new_state)
            except IllegalWorkOrderTransition:
                pass  # Approved meanwhile: the dismissal stands, the work order goes on.
    return alert, changed_wo


def _current(store: Store, alert_id: str, fallback: Alert) -> Alert:
    stored = store.get_alert(alert_id)
    return fallback if stored is None else stored[0]


def _with_state(row: WoRow, state: WoState) -> WoRow:
    return WoRow(
        key=row.key,
        state=state,
        priority=row.priority,
        alert_id=row.alert_id,
        external_id=row.external_id,
        reason=row.reason,
        updated_at=row.updated_at,
        payload=row.payload,
    )


@router.post(
    "/alerts/{alert_id:path}/acknowledge",
    response_model=ActionResult,
    responses=ACTION_ERRORS,
    summary="Acknowledge an alert",
)
def acknowledge_alert(
    *,
    ctx: Ctx,
    user: Planner,
    db: ReadDb,
    store: WriteStore,
    alert_id: str,
    body: ActionIn | None = None,
) -> ActionResult:
    """A planner has seen it (open or snoozed alerts)."""
    return _act(
        ctx,
        user,
        db=db,
        store=store,
        alert_id=alert_id,
        action="acknowledge",
        reason=body.reason if body else None,
    )


@router.post(
    "/alerts/{alert_id:path}/snooze",
    response_model=ActionResult,
    responses=ACTION_ERRORS,
    summary="Snooze an alert until a time",
)
def snooze_alert(
    *, ctx: Ctx, user: Planner, db: ReadDb, store: WriteStore, alert_id: str, body: SnoozeIn
) -> ActionResult:
    """Hide it until `until` (timezone-aware, in the future); it opens again then."""
    if body.until.tzinfo is None:
        raise ApiError(422, "bad_until", "until must carry a time zone")
    return _act(
        ctx,
        user,
        db=db,
        store=store,
        alert_id=alert_id,
        action="snooze",
        reason=body.reason,
        until=body.until,
    )


@router.post(
    "/alerts/{alert_id:path}/dismiss",
    response_model=ActionResult,
    responses=ACTION_ERRORS,
    summary="Dismiss an alert (reason required)",
)
def dismiss_alert(
    *, ctx: Ctx, user: Planner, db: ReadDb, store: WriteStore, alert_id: str, body: DismissIn
) -> ActionResult:
    """Close it with a reason (its cooldown starts).

    A work order still proposed for it is rejected with the same reason.
    """
    return _act(
        ctx, user, db=db, store=store, alert_id=alert_id, action="dismiss", reason=body.reason
    )


@router.post(
    "/alerts/{alert_id:path}/approve",
    response_model=ActionResult,
    responses=ACTION_ERRORS,
    summary="Approve the alert's proposed work order",
)
def approve_alert(
    *,
    ctx: Ctx,
    user: Planner,
    db: ReadDb,
    store: WriteStore,
    alert_id: str,
    body: ActionIn | None = None,
) -> ActionResult:
    """Approve the work order waiting for a planner (``suggest`` mode): it goes to the outbox.

    An open or snoozed alert is acknowledged with it.
    """
    return _act(
        ctx,
        user,
        db=db,
        store=store,
        alert_id=alert_id,
        action="approve",
        reason=body.reason if body else None,
    )
