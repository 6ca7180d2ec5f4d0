"""Routes for the web page's overview and asset page: the fleet by site, a score's drivers.

- ``GET /fleet/sites``: one row per site (assets, open alerts, worst condition), from the same
  cached latest scores as ``GET /assets`` (`cloud.api._latest`).
- ``GET /assets/{asset_id}/drivers``: the signals that drove each target's latest score (the
  scorer's ``explain`` field, `models.explain`'s contributions).
"""

from __future__ import annotations

import datetime as dt
import json
from collections import defaultdict
from collections.abc import Mapping
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict

from cloud.api._app import ERRORS, Ctx, ReadDb, Viewer
from cloud.api._assets import NOT_FOUND, _asset, fleet_conditions
from cloud.api._decisions import open_counts
from cloud.api._influx import SCORES
from cloud.api._latest import UNSCORED, Condition, lowest
from cloud.store import as_ns, as_time, quote_ident

router = APIRouter(responses=ERRORS)


class SiteSummary(BaseModel):
    """One site of the fleet: how many assets, their open alerts and their worst condition."""

    model_config = ConfigDict(frozen=True)

    site: str
    assets: int
    scored: int
    """Assets with a score within the look-back."""
    open_alerts: int
    open_work_orders: int
    assets_with_alerts: int
    min_health: float | None
    """The lowest health at the site (0-100)."""
    max_probability: float | None
    """The highest failure probability at the site."""
    min_rul: float | None
    """The shortest remaining life at the site, hours."""


class TargetDrivers(BaseModel):
    """The explanation stored with one target's latest explained score."""

    model_config = ConfigDict(frozen=True)

    target: str
    model_name: str
    model_version: str
    time: dt.datetime
    explanation: dict[str, Any]
    """`models.explain`'s JSON: ``method``, ``prediction``, ``reference_prediction``, ``other``
    and ``contributions`` (``feature``, ``contribution``, ``value``, ``reference``), largest
    first; empty when the scorer stored none."""
    latest: dt.datetime | None = None
    """The time of the latest score, explained or not: later than ``time`` when the scorer did
    not explain it (``explain: at_risk`` explains only scores at or above the watch level, the
    alert's clear level); with an empty ``explanation``, no score of the look-back was."""


class Drivers(BaseModel):
    """The signals that drove an asset's latest scores, per target and model."""

    model_config = ConfigDict(frozen=True)

    asset: str
    targets: list[TargetDrivers]


def _site(
    site: str,
    assets: list[str],
    conditions: Mapping[str, Condition],
    alerts: Mapping[str, int],
    orders: Mapping[str, int],
) -> SiteSummary:
    conds = [conditions.get(a, UNSCORED) for a in assets]
    probabilities = [c.worst_probability for c in conds if c.worst_probability is not None]
    return SiteSummary(
        site=site,
        assets=len(assets),
        scored=sum(1 for c in conds if c.scored_at is not None),
        open_alerts=sum(alerts.get(a, 0) for a in assets),
        open_work_orders=sum(orders.get(a, 0) for a in assets),
        assets_with_alerts=sum(1 for a in assets if alerts.get(a, 0)),
        min_health=lowest([c.health for c in conds]),
        max_probability=max(probabilities) if probabilities else None,
        min_rul=lowest([c.shortest_rul for c in conds]),
    )


@router.get(
    "/fleet/sites",
    response_model=list[SiteSummary],
    tags=["assets"],
    summary="The fleet by site: assets, open alerts, worst condition",
)
def list_sites(ctx: Ctx, _user: Viewer, db: ReadDb) -> list[SiteSummary]:
    """One row per site of the registry, sorted by site; the overview's site panel.

    From the same kept read of the latest scores as ``GET /assets``; open alerts and work
    orders are read on every call.
    """
    conditions = fleet_conditions(ctx)
    alerts, orders = open_counts(db)
    by_site: defaultdict[str, list[str]] = defaultdict(list)
    for asset in ctx.assets():
        by_site[asset.site].append(asset.asset_id)
    return [
        _site(site, assets, conditions, alerts, orders) for site, assets in sorted(by_site.items())
    ]


def _series(row: Mapping[str, Any]) -> tuple[str, str, str]:
    return tuple(str(row.get(t) or "") for t in ("target", "model_name", "model_version"))  # type: ignore[return-value]


def _explanation(raw: object) -> dict[str, Any]:
    if not isinstance(raw, str) or not raw:
        return {}
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


@router.get(
    "/assets/{asset_id}/drivers",
    response_model=Drivers,
    responses=NOT_FOUND,
    tags=["assets"],
    summary="The signals that drove the latest score of each target",
)
def get_drivers(
    ctx: Ctx,
    _user: Viewer,
    asset_id: str,
    target: Annotated[str | None, Query(description="Only this target")] = None,
) -> Drivers:
    """The explanation stored with each target's latest explained score within the look-back.

    ``latest`` tells when the latest score was (the scorer explains only the scores that could
    open or hold an alert, docs/scoring.md); a series none of whose scores is explained comes
    with an empty explanation and ``time == latest``.
    """
    _asset(ctx, asset_id)
    since = ctx.clock() - ctx.settings.scores_lookback
    where = f"asset = $asset AND time >= {as_ns(since)}"
    params = {"asset": asset_id}
    if target is not None:
        where += " AND target = $target"
        params["target"] = target
    group = ", ".join(quote_ident(t) for t in ("target", "model_name", "model_version"))
    q = (
        f"SELECT {quote_ident('explain')} FROM {quote_ident(SCORES)} WHERE {where} "  # noqa: S608 - quoted names, bound values
        f"GROUP BY {group} ORDER BY time DESC LIMIT 1"
    )
    client = ctx.influx_client()
    # Selecting `explain` alone skips the points without one: the latest explained score.
    rows = client.query(q, params=params).rows()
    q_latest = q.replace(quote_ident("explain"), quote_ident("health"), 1)
    latest = {_series(r): as_time(r["time"]) for r in client.query(q_latest, params=params).rows()}
    explained = {_series(r): r for r in rows}
    targets = [
        TargetDrivers(
            target=key[0],
            model_name=key[1],
            model_version=key[2],
            time=as_time(r["time"]) if r is not None else latest[key],
            explanation=_explanation(r.get("explain")) if r is not None else {},
            latest=latest.get(key),
        )
        for key in sorted({*explained, *latest})
        for r in [explained.get(key)]
    ]
    targets.sort(key=lambda t: (t.target, t.model_name))
    return Drivers(asset=asset_id, targets=targets)
