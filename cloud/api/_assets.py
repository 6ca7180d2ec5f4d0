"""Routes: the fleet (assets with their latest condition), one asset, scores and telemetry."""

from __future__ import annotations

import datetime as dt
import enum
import re
from collections import defaultdict
from collections.abc import Iterable
from typing import Annotated

from fastapi import APIRouter, Query

from cloud.api._app import ERRORS, ApiError, Context, Ctx, ReadDb, Viewer
from cloud.api._decisions import open_counts
from cloud.api._influx import (
    EVERY_PATTERN,
    Aggregate,
    ScoreRow,
    auto_every,
    every_seconds,
    latest_scores,
    numeric_signals,
    score_history,
    telemetry,
)
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


def _min(values: Iterable[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return min(known) if known else None


def _summary(
    asset: Asset, rows: list[ScoreRow], alerts: dict[str, int], orders: dict[str, int]
) -> AssetSummary:
    by_prob = [r for r in rows if r.fields["probability"] is not None]
    by_health = [r for r in rows if r.fields["health"] is not None]
    worst = (
        max(by_prob, key=lambda r: r.fields["probability"] or 0.0)
        if by_prob
        else min(by_health, key=lambda r: r.fields["health"] or 0.0, default=None)
    )
    with_rul = [r for r in rows if r.fields["rul"] is not None]
    shortest = min(with_rul, key=lambda r: r.fields["rul"] or 0.0, default=None)
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
        health=_min(r.fields["health"] for r in rows),
        worst_probability=None if not by_prob or worst is None else worst.fields["probability"],
        worst_target=None if worst is None else worst.target,
        shortest_rul=None if shortest is None else shortest.fields["rul"],
        shortest_rul_lo=None if shortest is None else shortest.fields["rul_lo"],
        scored_at=max((r.time for r in rows), default=None),
        open_alerts=alerts.get(asset.asset_id, 0),
        open_work_orders=orders.get(asset.asset_id, 0),
    )


def _sort_key(sort: AssetSort) -> tuple[str, bool]:
    return sort.value.lstrip("-"), sort.value.startswith("-")


def _sorted(items: list[AssetSummary], sort: AssetSort) -> list[AssetSummary]:
    name, descending = _sort_key(sort)

    def value(s: AssetSummary) -> float | str | None:
        if name == "criticality":
            return Criticality(s.criticality).rank
        v: float | str | None = getattr(s, name)
        return v

    known = [s for s in items if value(s) is not None]
    unknown = [s for s in items if value(s) is None]
    known.sort(key=lambda s: (value(s), s.asset_id), reverse=descending)
    return known + sorted(unknown, key=lambda s: s.asset_id)


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
    sort: AssetSort = AssetSort.ASSET_ID,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> dict[str, object]:
    """The fleet overview in one call: assets with their latest condition.

    Registry records with their latest health, worst failure probability and shortest remaining
    life (InfluxDB ``scores`` within the look-back) and their open alerts and work orders.
    """
    assets = [
        a
        for a in ctx.assets()
        if (not site or a.site in site)
        and (not tier or a.tier in tier)
        and (not asset_class or a.asset_class in asset_class)
        and (not criticality or a.criticality in criticality)
        and (not team or a.team in team)
    ]
    since = ctx.clock() - ctx.settings.scores_lookback
    only_site = site[0] if site and len(site) == 1 else None
    rows: dict[str, list[ScoreRow]] = defaultdict(list)
    if assets:
        for row in latest_scores(ctx.influx_client(), since=since, site=only_site):
            rows[row.asset].append(row)
    alerts, orders = open_counts(db)
    items = _sorted([_summary(a, rows[a.asset_id], alerts, orders) for a in assets], sort)
    return page(items[offset : offset + limit], total=len(items), limit=limit, offset=offset)


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
    return AssetDetail(record=asset, summary=_summary(asset, rows, alerts, orders), targets=targets)


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
