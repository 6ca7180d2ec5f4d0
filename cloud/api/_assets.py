"""Routes: the fleet (assets with their latest condition), one asset, scores and telemetry."""

from __future__ import annotations

import datetime as dt
import enum
import re
from collections import defaultdict
from collections.abc import Mapping
from typing import Annotated

from fastapi import APIRouter, Query

from cloud.api._app import ERRORS, ApiError, Context, Ctx, ReadDb, Viewer
from cloud.api._decisions import open_counts
from cloud.api._influx import (
    EVERY_PATTERN,
    Aggregate,
    auto_every,
    every_seconds,
    latest_scores,
    numeric_signals,
    score_history,
    telemetry,
)
from cloud.api._latest import UNSCORED, Condition, condition
from cloud.api._models import (
    AssetDetail,
    AssetSummary,
    Page,
    Problem,
    ScoreHistory,
    ScorePoint,
    ScoreSeries,
    TargetScore,
    Telemetry,
    page,
)
from cloud.registry import Asset, Criticality, Tier

router = APIRouter(tags=["assets"], responses=ERRORS)
NOT_FOUND: dict[int | str, dict[str, object]] = {
    404: {"model": Problem, "description": "No such asset in the registry"}
}
SIGNAL_PATTERN = r"^[A-Za-z0-9_.-]{1,128}$"


class AssetSort(enum.StrEnum):
    """Sort keys of the fleet list; ``-`` first for descending. None values sort last."""

    ASSET_ID = "asset_id"
    ASSET_ID_DESC = "-asset_id"
    SITE = "site"
    SITE_DESC = "-site"
    HEALTH = "health"
    HEALTH_DESC = "-health"
    WORST_PROBABILITY = "worst_probability"
    WORST_PROBABILITY_DESC = "-worst_probability"
    SHORTEST_RUL = "shortest_rul"
    SHORTEST_RUL_DESC = "-shortest_rul"
    OPEN_ALERTS = "open_alerts"
    OPEN_ALERTS_DESC = "-open_alerts"
    CRITICALITY = "criticality"
    CRITICALITY_DESC = "-criticality"


def _summary(
    asset: Asset, cond: Condition, alerts: Mapping[str, int], orders: Mapping[str, int]
) -> AssetSummary:
    return AssetSummary(
        asset_id=asset.asset_id,
        site=asset.site,
        customer=asset.customer,
        tier=asset.tier.value,
        asset_class=asset.asset_class,
        team=asset.team,
        criticality=asset.criticality.value,
        model=asset.model,
        profile=asset.profile,
        health=cond.health,
        worst_probability=cond.worst_probability,
        worst_target=cond.worst_target,
        shortest_rul=cond.shortest_rul,
        shortest_rul_lo=cond.shortest_rul_lo,
        scored_at=cond.scored_at,
        open_alerts=alerts.get(asset.asset_id, 0),
        open_work_orders=orders.get(asset.asset_id, 0),
    )


def _sorted(
    assets: list[Asset],
    sort: AssetSort,
    conditions: Mapping[str, Condition],
    alerts: Mapping[str, int],
) -> list[Asset]:
    """`assets` in `sort` order, ties by asset id; None values last (by asset id)."""
    name, descending = sort.value.lstrip("-"), sort.value.startswith("-")

    def value(a: Asset) -> float | str | None:
        if name == "asset_id":
            return a.asset_id
        if name == "site":
            return a.site
        if name == "criticality":
            return a.criticality.rank
        if name == "open_alerts":
            return alerts.get(a.asset_id, 0)
        v: float | None = getattr(conditions.get(a.asset_id, UNSCORED), name)
        return v

    keyed = [(value(a), a.asset_id, a) for a in assets]
    known = [k for k in keyed if k[0] is not None]
    unknown = [k for k in keyed if k[0] is None]
    known.sort(key=lambda k: (k[0], k[1]), reverse=descending)
    unknown.sort(key=lambda k: k[1])
    return [k[2] for k in known + unknown]


def fleet_conditions(ctx: Context) -> Mapping[str, Condition]:
    """Every scored asset's `Condition` from the kept read of the fleet's latest scores."""
    return ctx.latest.snapshot(
        ctx.influx_client(), since=lambda: ctx.clock() - ctx.settings.scores_lookback
    ).conditions


def _haystack(asset: Asset) -> str:
    return f"{asset.asset_id}\n{asset.customer}\n{asset.site}\n{asset.model}".casefold()


def _asset(ctx: Context, asset_id: str) -> Asset:
    asset = ctx.assets().get(asset_id)
    if asset is None:
        raise ApiError(404, "not_found", f"no asset {asset_id!r} in the registry")
    return asset


@router.get("/assets", response_model=Page[AssetSummary], summary="The fleet, with condition")
def list_assets(
    *,
    ctx: Ctx,
    _user: Viewer,
    db: ReadDb,
    site: Annotated[list[str] | None, Query(description="Any of these sites")] = None,
    tier: Annotated[list[Tier] | None, Query(description="Any of these tiers")] = None,
    asset_class: Annotated[
        list[str] | None, Query(alias="class", description="Any of these asset classes")
    ] = None,
    criticality: Annotated[list[Criticality] | None, Query()] = None,
    team: Annotated[list[str] | None, Query()] = None,
    q: Annotated[
        str | None,
        Query(
            max_length=100,
            description="Text in the asset id, customer, site or model (case-insensitive)",
        ),
    ] = None,
    sort: AssetSort = AssetSort.ASSET_ID,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> dict[str, object]:
    """The fleet overview in one call: assets with their latest condition.

    Registry records with their latest health, worst failure probability and shortest remaining
    life (InfluxDB ``scores`` within the look-back, one query for the fleet reused for a few
    seconds) and their open alerts and work orders (read on every call).
    """
    text = (q or "").strip().casefold()
    assets = [
        a
        for a in ctx.assets()
        if (not site or a.site in site)
        and (not tier or a.tier in tier)
        and (not asset_class or a.asset_class in asset_class)
        and (not criticality or a.criticality in criticality)
        and (not team or a.team in team)
        and (not text or text in _haystack(a))
    ]
    conditions = fleet_conditions(ctx) if assets else {}
    alerts, orders = open_counts(db)
    ordered = _sorted(assets, sort, conditions, alerts)
    items = [
        _summary(a, conditions.get(a.asset_id, UNSCORED), alerts, orders)
        for a in ordered[offset : offset + limit]
    ]
    return page(items, total=len(ordered), limit=limit, offset=offset)


@router.get(
    "/assets/{asset_id}",
    response_model=AssetDetail,
    responses=NOT_FOUND,
    summary="One asset: record, condition, latest score per target",
)
def get_asset(ctx: Ctx, _user: Viewer, db: ReadDb, asset_id: str) -> AssetDetail:
    """The asset's registry record, its summary and the latest score of each target and model."""
    asset = _asset(ctx, asset_id)
    since = ctx.clock() - ctx.settings.scores_lookback
    rows = latest_scores(ctx.influx_client(), since=since, asset=asset_id)
    alerts, orders = open_counts(db)
    targets = [
        TargetScore(
            target=r.target,
            model_name=r.model_name,
            model_version=r.model_version,
            time=r.time,
            **r.fields,
        )
        for r in sorted(rows, key=lambda r: (r.target, r.model_name))
    ]
    return AssetDetail(
        record=asset, summary=_summary(asset, condition(rows), alerts, orders), targets=targets
    )


def _range(
    ctx: Context, start: dt.datetime | None, end: dt.datetime | None, default: dt.timedelta
) -> tuple[dt.datetime, dt.datetime]:
    end = end or ctx.clock()
    start = start or end - default
    for name, value in (("from", start), ("to", end)):
        if value.tzinfo is None:
            raise ApiError(422, "bad_range", f"{name} must carry a time zone. Got {value}.")
    if start >= end:
        raise ApiError(422, "bad_range", f"from ({start}) must be before to ({end})")
    return start, end


From = Annotated[dt.datetime | None, Query(alias="from", description="Start (default: see route)")]
To = Annotated[dt.datetime | None, Query(alias="to", description="End (default: now)")]


@router.get(
    "/assets/{asset_id}/scores",
    response_model=ScoreHistory,
    responses=NOT_FOUND,
    summary="Score history (probability, health, remaining life band)",
)
def get_scores(
    *,
    ctx: Ctx,
    _user: Viewer,
    asset_id: str,
    target: str | None = None,
    start: From = None,
    end: To = None,
) -> ScoreHistory:
    """The asset's ``scores`` per target and model, oldest first.

    From and to default to the score look-back (7 days) up to now; at most `max_points` (5000)
    points per series.
    """
    _asset(ctx, asset_id)
    start, end = _range(ctx, start, end, ctx.settings.scores_lookback)
    rows = score_history(
        ctx.influx_client(),
        asset=asset_id,
        start=start,
        end=end,
        target=target,
        limit=ctx.settings.max_points,
    )
    grouped: dict[tuple[str, str, str], list[ScorePoint]] = defaultdict(list)
    for r in rows:
        grouped[(r.target, r.model_name, r.model_version)].append(
            ScorePoint(time=r.time, **r.fields)
        )
    series = [
        ScoreSeries(target=t, model_name=m, model_version=v, points=points)
        for (t, m, v), points in sorted(grouped.items())
    ]
    return ScoreHistory(asset=asset_id, start=start, end=end, series=series)


@router.get(
    "/assets/{asset_id}/telemetry",
    response_model=Telemetry,
    responses=NOT_FOUND,
    summary="Sensor signals over a range, downsampled",
)
def get_telemetry(
    *,
    ctx: Ctx,
    _user: Viewer,
    asset_id: str,
    signals: Annotated[
        list[str] | None,
        Query(description="Signals (repeat or comma-separate); default: every numeric one"),
    ] = None,
    start: From = None,
    end: To = None,
    every: Annotated[
        str | None,
        Query(pattern=EVERY_PATTERN, description="Bucket width (30s, 5m, 1h, 1d); default: auto"),
    ] = None,
    points: Annotated[int, Query(ge=1, le=100_000, description="Buckets for an auto width")] = 500,
    aggregate: Aggregate = "mean",
) -> Telemetry:
    """The asset's ``telemetry``, one value per signal and time bucket.

    From and to default to the last 24 h; InfluxQL ``GROUP BY time(every)`` with the chosen
    aggregate; buckets without data are left out.
    """
    _asset(ctx, asset_id)
    start, end = _range(ctx, start, end, dt.timedelta(hours=24))
    influx = ctx.influx_client()
    wanted = [s.strip() for group in signals or [] for s in group.split(",") if s.strip()]
    for name in wanted:
        if re.fullmatch(SIGNAL_PATTERN, name) is None:
            raise ApiError(422, "bad_signal", f"signal names match {SIGNAL_PATTERN}: {name!r}")
    known = numeric_signals(influx)
    unknown = sorted(set(wanted) - set(known))
    if unknown:
        raise ApiError(
            422, "unknown_signal", f"no numeric telemetry field {unknown}; known: {known}"
        )
    names = list(dict.fromkeys(wanted)) or known
    span = end - start
    if every is None:
        every = auto_every(span, min(points, ctx.settings.max_points))
    elif span.total_seconds() / every_seconds(every) > ctx.settings.max_points:
        raise ApiError(
            422,
            "too_many_points",
            f"{span} in buckets of {every} is more than {ctx.settings.max_points} points; "
            "widen every or narrow the range",
        )
    if not names:
        return Telemetry(
            asset=asset_id,
            start=start,
            end=end,
            every=every,
            aggregate=aggregate,
            signals=[],
            times=[],
            values={},
        )
    data = telemetry(
        influx,
        asset=asset_id,
        signals=names,
        start=start,
        end=end,
        every=every,
        aggregate=aggregate,
    )
    return Telemetry(
        asset=asset_id,
        start=start,
        end=end,
        every=every,
        aggregate=aggregate,
        signals=names,
        times=data.times,
        values=data.values,
    )
