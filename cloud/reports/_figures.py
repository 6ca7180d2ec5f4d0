"""The reports' figures, computed from facts already read (pure: no I/O, no clock).

Every figure is defined in docs/reports.md; the definitions are repeated here where they are
computed. Times come in as arguments; the period is half-open ``[start, end)``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import statistics
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Final

from cloud.registry import Asset
from cloud.reports._period import Period
from cloud.reports._sources import AlertFacts, LatestScore, WoFacts
from cloud.workorders import Priority, WoState

REPEAT_WINDOW: Final = dt.timedelta(days=30)
"""A work order for the same asset and target within this time after a resolution is a second
visit: the first one was not a first-time fix."""
DROPPED: Final = frozenset({WoState.CANCELLED, WoState.REJECTED})
"""States of work orders that were never worked on."""
PRIORITIES: Final = tuple(Priority)


def _hours(delta: dt.timedelta) -> float:
    return delta.total_seconds() / 3600.0


def _pct(part: float, whole: float) -> float | None:
    return None if not whole else 100.0 * part / whole


def _quantile(values: Sequence[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    pos = q * (len(ordered) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


# ---------------------------------------------------------------- service quality


@dataclasses.dataclass(frozen=True, slots=True)
class PriorityRow:
    """Work orders of one priority created in the period, and how their service went."""

    priority: str
    created: int
    open: int
    resolved: int
    dropped: int
    responded_on_time: int
    responded_late: int
    response_pending: int
    resolution_median_h: float | None
    resolution_p90_h: float | None
    resolved_in_time: int

    @property
    def on_time_pct(self) -> float | None:
        """Responses on time among those due (on time + late)."""
        return _pct(self.responded_on_time, self.responded_on_time + self.responded_late)

    @property
    def resolved_in_time_pct(self) -> float | None:
        """Resolved before ``resolve_by`` among the resolved."""
        return _pct(self.resolved_in_time, self.resolved)


@dataclasses.dataclass(frozen=True, slots=True)
class PrecisionRow:
    """Predicted against confirmed failures for one scoring model and failure mode."""

    model: str
    target: str
    predicted: int
    confirmed: int
    not_confirmed: int
    no_feedback: int

    @property
    def precision_pct(self) -> float | None:
        """Confirmed among predictions with feedback."""
        return _pct(self.confirmed, self.confirmed + self.not_confirmed)


@dataclasses.dataclass(frozen=True, slots=True)
class FailureModeRow:
    """Confirmed failures of one failure mode on one equipment model."""

    equipment_model: str
    failure_mode: str
    confirmed: int
    root_causes: tuple[tuple[str, int], ...]
    parts: tuple[tuple[str, int], ...]


@dataclasses.dataclass(frozen=True, slots=True)
class ServiceQuality:
    """The service-quality report's figures."""

    period: Period
    customer: str | None
    by_priority: tuple[PriorityRow, ...]
    total: PriorityRow
    first_time_fix: int
    ftf_eligible: int
    reopened: int
    repeat_visits: int
    remote: int
    onsite: int
    precision: tuple[PrecisionRow, ...]
    precision_total: PrecisionRow
    failure_modes: tuple[FailureModeRow, ...]
    late_orders: tuple[tuple[str, str, str, float], ...]
    """(key, asset, priority, hours late) of the latest responses, worst first (10 at most)."""

    @property
    def ftf_pct(self) -> float | None:
        """First-time fixes among resolved work orders."""
        return _pct(self.first_time_fix, self.ftf_eligible)


def _priority_row(name: str, orders: Sequence[WoFacts], end: dt.datetime) -> PriorityRow:
    on_time = late = pending = in_time = 0
    durations: list[float] = []
    for f in orders:
        if f.responded_at is not None:
            if f.responded_at <= f.wo.respond_by:
                on_time += 1
            else:
                late += 1
        elif f.state not in DROPPED:
            if f.wo.respond_by < end:
                late += 1  # no response, and the deadline passed within the period
            else:
                pending += 1
        if f.resolved_at is not None and f.resolved_at < end:
            durations.append(_hours(f.resolved_at - f.wo.created_at))
            in_time += f.resolved_at <= f.wo.resolve_by
    resolved = len(durations)
    return PriorityRow(
        priority=name,
        created=len(orders),
        open=sum(f.resolved_at is None and f.state not in DROPPED for f in orders),
        resolved=resolved,
        dropped=sum(f.state in DROPPED for f in orders),
        responded_on_time=on_time,
        responded_late=late,
        response_pending=pending,
        resolution_median_h=statistics.median(durations) if durations else None,
        resolution_p90_h=_quantile(durations, 0.9),
        resolved_in_time=in_time,
    )


def _precision_row(model: str, target: str, orders: Iterable[WoFacts]) -> PrecisionRow:
    items = list(orders)
    confirmed = sum(1 for f in items if f.label and f.label.failure_confirmed is True)
    refuted = sum(1 for f in items if f.label and f.label.failure_confirmed is False)
    return PrecisionRow(
        model=model,
        target=target,
        predicted=len(items),
        confirmed=confirmed,
        not_confirmed=refuted,
        no_feedback=len(items) - confirmed - refuted,
    )


def in_scope(orders: Iterable[WoFacts], period: Period, customer: str | None) -> list[WoFacts]:
    """Work orders created in the period (of one customer, when given)."""
    return [
        f
        for f in orders
        if f.wo.created_at in period and (customer is None or f.wo.customer == customer)
    ]


def service_quality(
    orders: Sequence[WoFacts],
    *,
    period: Period,
    customer: str | None,
    assets: Mapping[str, Asset],
    scored_by: Mapping[tuple[str, str, dt.datetime], str],
    top: int = 5,
) -> ServiceQuality:
    """The service-quality figures of the work orders created in `period`.

    Args:
        orders: Every work order of the store (later ones reveal second visits).
        period: The period.
        customer: Only this customer's work orders; None for all.
        assets: The registry's assets by id (equipment model of each asset).
        scored_by: ``name@version`` of the model behind each prediction, keyed by (asset,
            target, created_at) (`cloud.reports._sources.scoring_models`).
        top: Failure modes listed per equipment model.
    """
    scope = in_scope(orders, period, customer)
    rows = tuple(
        _priority_row(p.value, [f for f in scope if f.wo.priority is p], period.end)
        for p in PRIORITIES
    )
    total = _priority_row("all", scope, period.end)

    # First-time fix: resolved in the period's scope, never reopened, and no second work order
    # for the same asset and target within REPEAT_WINDOW after the resolution.
    later: dict[tuple[str, str], list[dt.datetime]] = defaultdict(list)
    for f in orders:
        later[f.wo.asset, f.wo.target].append(f.wo.created_at)
    ftf = reopened = repeats = remote = onsite = eligible = 0
    for f in scope:
        if f.resolved_at is None or f.resolved_at >= period.end:
            continue
        eligible += 1
        repeat = any(
            f.resolved_at < t <= f.resolved_at + REPEAT_WINDOW
            for t in later[f.wo.asset, f.wo.target]
        )
        reopened += f.reopened
        repeats += repeat
        ftf += not f.reopened and not repeat
        if f.resolution_mode == "remote":
            remote += 1
        else:
            onsite += 1

    predictions = [f for f in scope if f.wo.kind == "prediction" and f.state not in DROPPED]
    by_model: dict[tuple[str, str], list[WoFacts]] = defaultdict(list)
    for f in predictions:
        model = scored_by.get((f.wo.asset, f.wo.target, f.wo.created_at), "unknown")
        by_model[model, f.wo.target].append(f)
    precision = tuple(
        sorted(
            (_precision_row(m, t, fs) for (m, t), fs in by_model.items()),
            key=lambda r: (r.model, r.target),
        )
    )

    confirmed: dict[tuple[str, str], list[WoFacts]] = defaultdict(list)
    for f in scope:
        if f.label is not None and f.label.failure_confirmed is True:
            asset = assets.get(f.wo.asset)
            model = asset.model if asset is not None else f.wo.profile
            confirmed[model, f.wo.target].append(f)
    modes = []
    for model in sorted({m for m, _ in confirmed}):
        mine = sorted(
            ((t, fs) for (m, t), fs in confirmed.items() if m == model),
            key=lambda kv: (-len(kv[1]), kv[0]),
        )[:top]
        for target, fs in mine:
            causes = Counter(f.label.root_cause for f in fs if f.label and f.label.root_cause)
            parts = Counter(p for f in fs if f.label for p in f.label.parts_used)
            modes.append(
                FailureModeRow(
                    equipment_model=model,
                    failure_mode=target,
                    confirmed=len(fs),
                    root_causes=tuple(causes.most_common(3)),
                    parts=tuple(parts.most_common(3)),
                )
            )

    late = sorted(
        (
            (f.wo.key, f.wo.asset, f.wo.priority.value, _hours(f.responded_at - f.wo.respond_by))
            for f in scope
            if f.responded_at is not None and f.responded_at > f.wo.respond_by
        ),
        key=lambda r: -r[3],
    )[:10]
    return ServiceQuality(
        period=period,
        customer=customer,
        by_priority=rows,
        total=total,
        first_time_fix=ftf,
        ftf_eligible=eligible,
        reopened=reopened,
        repeat_visits=repeats,
        remote=remote,
        onsite=onsite,
        precision=precision,
        precision_total=_precision_row("all", "all", predictions),
        failure_modes=tuple(modes),
        late_orders=tuple(late),
    )


# ---------------------------------------------------------------- availability


Span = tuple[dt.datetime, dt.datetime]


def _clip(spans: Iterable[Span], period: Period) -> list[Span]:
    out = []
    for s, e in spans:
        s2, e2 = max(s, period.start), min(e, period.end)
        if e2 > s2:
            out.append((s2, e2))
    return out


def union_hours(spans: Iterable[Span]) -> float:
    """Hours covered by the union of time spans (overlaps counted once)."""
    total = 0.0
    current: Span | None = None
    for s, e in sorted(spans):
        if current is None or s > current[1]:
            if current is not None:
                total += _hours(current[1] - current[0])
            current = (s, e)
        elif e > current[1]:
            current = (current[0], e)
    if current is not None:
        total += _hours(current[1] - current[0])
    return total


@dataclasses.dataclass(frozen=True, slots=True)
class AvailabilityRow:
    """One asset's availability over the period."""

    asset: str
    site: str
    customer: str
    model: str
    criticality: str
    period_h: float
    offline_h: float
    failure_h: float
    maintenance_h: float
    down_h: float
    """The union of the three (an hour offline during a repair counts once)."""
    data_h: int | None
    """Hours with at least one reading; None without InfluxDB."""

    @property
    def availability_pct(self) -> float:
        """Time neither offline nor in repair, over the period."""
        return 100.0 * (1.0 - self.down_h / self.period_h)

    @property
    def coverage_pct(self) -> float | None:
        """Hours with readings, over the period's hours."""
        return None if self.data_h is None else 100.0 * self.data_h / self.period_h


@dataclasses.dataclass(frozen=True, slots=True)
class Availability:
    """The availability report's figures."""

    period: Period
    customer: str | None
    rows: tuple[AvailabilityRow, ...]
    by_site: tuple[tuple[str, float], ...]

    @property
    def fleet_pct(self) -> float | None:
        """Time-weighted over the assets: total time up over total time."""
        whole = sum(r.period_h for r in self.rows)
        return None if not whole else 100.0 * (1 - sum(r.down_h for r in self.rows) / whole)


def repair_spans(orders: Iterable[WoFacts], asset: str) -> tuple[list[Span], list[Span]]:
    """(failure repairs, other on-site work) of an asset: in progress until resolved.

    A failure repair is a work order whose feedback confirms the failure; other on-site work is
    any other on-site work order (planned maintenance, inspections of unconfirmed predictions).
    Remote work does not stop the machine.
    """
    failure, other = [], []
    for f in orders:
        if f.wo.asset != asset or f.started_at is None or f.resolution_mode == "remote":
            continue
        end = f.resolved_at or dt.datetime.max.replace(tzinfo=dt.UTC)
        span = (f.started_at, end)
        if f.label is not None and f.label.failure_confirmed is True:
            failure.append(span)
        else:
            other.append(span)
    return failure, other


def availability(
    assets: Sequence[Asset],
    orders: Sequence[WoFacts],
    *,
    period: Period,
    customer: str | None,
    gateways: Mapping[str, set[str]],
    offline: Mapping[str, Sequence[Span]],
    data_hours: Mapping[str, int] | None,
) -> Availability:
    """Each asset's availability: the period less the time offline or in repair.

    Args:
        assets: The registry's assets (filtered to `customer` here).
        orders: Every work order of the store.
        period: The period.
        customer: Only this customer's assets; None for all.
        gateways: Per asset, the gateways that read it (registry ``gateway`` or telemetry tags).
        offline: Per gateway, its offline spans (`cloud.reports._sources.gateway_offline`).
        data_hours: Per asset, hours with readings; None when not measured.
    """
    rows = []
    for a in assets:
        if customer is not None and a.customer != customer:
            continue
        gws = gateways.get(a.asset_id, set())
        off = _clip((s for g in gws for s in offline.get(g, ())), period)
        failure, other = (_clip(x, period) for x in repair_spans(orders, a.asset_id))
        rows.append(
            AvailabilityRow(
                asset=a.asset_id,
                site=a.site,
                customer=a.customer,
                model=a.model,
                criticality=a.criticality.value,
                period_h=period.hours,
                offline_h=union_hours(off),
                failure_h=union_hours(failure),
                maintenance_h=union_hours(other),
                down_h=union_hours([*off, *failure, *other]),
                data_h=None if data_hours is None else data_hours.get(a.asset_id, 0),
            )
        )
    rows.sort(key=lambda r: (r.availability_pct, r.asset))
    sites: dict[str, list[AvailabilityRow]] = defaultdict(list)
    for r in rows:
        sites[r.site].append(r)
    by_site = tuple(
        (site, 100.0 * (1 - sum(r.down_h for r in rs) / sum(r.period_h for r in rs)))
        for site, rs in sorted(sites.items())
    )
    return Availability(period=period, customer=customer, rows=tuple(rows), by_site=by_site)


# ---------------------------------------------------------------- equipment health


@dataclasses.dataclass(frozen=True, slots=True)
class HealthRow:
    """One asset's condition over the quarter and at its end."""

    asset: str
    site: str
    model: str
    criticality: str
    health_start: float | None
    health_end: float | None
    health_min: float | None
    worst_probability: float | None
    worst_target: str | None
    rul_h: float | None
    rul_lo_h: float | None
    rul_hi_h: float | None
    rul_target: str | None
    alerts: int
    work_orders: int
    confirmed_failures: int
    availability_pct: float | None
    outlook: str

    @property
    def trend(self) -> str:
        """``better``, ``worse`` or ``steady`` (a change of 5 health points or more counts)."""
        if self.health_start is None or self.health_end is None:
            return "-"
        change = self.health_end - self.health_start
        return "better" if change >= 5 else "worse" if change <= -5 else "steady"  # noqa: PLR2004


@dataclasses.dataclass(frozen=True, slots=True)
class EquipmentHealth:
    """The quarterly equipment-health report of one customer."""

    period: Period
    customer: str
    tier: str
    sites: tuple[str, ...]
    rows: tuple[HealthRow, ...]
    series: Mapping[str, Sequence[tuple[dt.datetime, float]]]
    alerts: int
    work_orders: int
    confirmed_failures: int
    fleet_availability_pct: float | None


def _outlook(row_rul_lo: float | None, prob: float | None, end: dt.datetime) -> str:
    if row_rul_lo is not None and row_rul_lo <= 24 * 92:
        due = end + dt.timedelta(hours=row_rul_lo)
        return f"plan replacement before {due.date().isoformat()}"
    if prob is not None and prob >= 0.5:  # noqa: PLR2004 - one in two
        return "inspect: failure more likely than not within the horizon"
    return "no action foreseen"


def equipment_health(
    assets: Sequence[Asset],
    orders: Sequence[WoFacts],
    alerts: Sequence[AlertFacts],
    *,
    period: Period,
    customer: str,
    latest: Sequence[LatestScore],
    series: Mapping[str, Sequence[tuple[dt.datetime, float]]],
    extremes: Mapping[str, tuple[float | None, float | None]],
    availability_rows: Sequence[AvailabilityRow],
) -> EquipmentHealth:
    """One customer's equipment health over a quarter (or any period).

    Health is the lowest of an asset's targets (0-100, higher is healthier, as the scorer writes
    it); start and end are the first and last daily values of the period.
    """
    mine = [a for a in assets if a.customer == customer]
    ids = {a.asset_id for a in mine}
    scope = in_scope(orders, period, customer)
    avail = {r.asset: r.availability_pct for r in availability_rows}
    rows = []
    for a in sorted(mine, key=lambda x: (x.site, x.asset_id)):
        points = sorted(series.get(a.asset_id, ()))
        last = [s for s in latest if s.asset == a.asset_id]
        probs = [s for s in last if s.probability is not None]
        worst = max(probs, key=lambda s: s.probability or 0.0, default=None)
        ruls = [s for s in last if s.rul is not None]
        shortest = min(
            ruls, key=lambda s: s.rul_lo if s.rul_lo is not None else s.rul or 0.0, default=None
        )
        lo, hi = extremes.get(a.asset_id, (None, None))
        rows.append(
            HealthRow(
                asset=a.asset_id,
                site=a.site,
                model=a.model,
                criticality=a.criticality.value,
                health_start=points[0][1] if points else None,
                health_end=points[-1][1] if points else None,
                health_min=lo,
                worst_probability=hi,
                worst_target=worst.target if worst else None,
                rul_h=shortest.rul if shortest else None,
                rul_lo_h=shortest.rul_lo if shortest else None,
                rul_hi_h=shortest.rul_hi if shortest else None,
                rul_target=shortest.target if shortest else None,
                alerts=sum(1 for x in alerts if x.asset == a.asset_id and x.opened_at in period),
                work_orders=sum(1 for f in scope if f.wo.asset == a.asset_id),
                confirmed_failures=sum(
                    1
                    for f in scope
                    if f.wo.asset == a.asset_id and f.label and f.label.failure_confirmed
                ),
                availability_pct=avail.get(a.asset_id),
                outlook=_outlook(
                    shortest.rul_lo if shortest else None,
                    worst.probability if worst else None,
                    period.end,
                ),
            )
        )
    whole = [r for r in availability_rows if r.asset in ids]
    total_h = sum(r.period_h for r in whole)
    return EquipmentHealth(
        period=period,
        customer=customer,
        tier=mine[0].tier.value if mine else "",
        sites=tuple(sorted({a.site for a in mine})),
        rows=tuple(rows),
        series={k: v for k, v in series.items() if k in ids},
        alerts=sum(r.alerts for r in rows),
        work_orders=sum(r.work_orders for r in rows),
        confirmed_failures=sum(r.confirmed_failures for r in rows),
        fleet_availability_pct=None
        if not total_h
        else 100.0 * (1 - sum(r.down_h for r in whole) / total_h),
    )
