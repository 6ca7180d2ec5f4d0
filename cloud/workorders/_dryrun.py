"""The dry run: stored history replayed through the current settings, counted per ISO week.

Pure: the caller reads the history (InfluxDB ``scores``, failure records) and passes it in;
nothing is stored or sent. It answers the planners' question before a setting goes live: *how
many work orders per week would this produce, how many would go out on their own, and how many
of them came before a real failure?*

Theory of operation
-------------------
1. `AlertReplay` takes the scores of each (asset, target) in time order, as the scorer's
   decider feeds them to the engine (per scoring time the highest risk of the target, with the
   probability, horizon and remaining-life bound that go into the work order's priority), and
   runs the real `cloud.alerting.AlertEngine` (thresholds, hysteresis, cooldown). An alert that
   needs work yields one work order, once per alert, as in production (a reopened alert keeps
   its work order). Each work order is taken as done ``work_takes`` after it was opened: its
   alert is closed then, which starts the cooldown. Keys are independent, so assets can be fed
   one batch after another (the caller streams; nothing holds the whole history).
2. `admit_openings` passes every opening, in time order over the whole fleet, through the real
   priority (`classify`) and guardrails (`admit`, `budget_day`): mode per asset class, daily
   budget per team in the policy's calendar, budget-exempt priorities.
3. `match_failures` pairs work orders with real failures: a work order *came before a failure*
   when it was opened within ``lead_window`` before a failure of the same asset and failure mode
   (``match="mode"``: the alert's target equals the failure's mode, or the failure names no
   mode; ``match="asset"``: any target of the asset). A failure's lead time is from the
   earliest such work order.

Calendar and usage rules (`due_consumables`) are not replayed: the asset records hold only the
latest replacement of each consumable, so past rule windows cannot be rebuilt.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import statistics
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal

from cloud.alerting import AlertEngine, AlertEvent, AlertPolicy
from cloud.workorders._guardrails import admit, budget_day
from cloud.workorders._model import AssetLike
from cloud.workorders._policy import Priority, ServicePolicy
from cloud.workorders._priority import classify
from cloud.workorders._state import WoState

Match = Literal["mode", "asset"]


@dataclasses.dataclass(frozen=True, slots=True)
class ScoreAt:
    """What the alert engine sees for one (asset, target) at one scoring time."""

    asset: str
    target: str
    ts: dt.datetime
    risk: float
    """``1 - health / 100`` of the target's riskiest score at `ts` (higher is worse)."""
    probability: float | None = None
    horizon_h: float | None = None
    rul_lo_h: float | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class Opening:
    """A work order the replay would have opened (before the guardrails)."""

    asset: str
    target: str
    at: dt.datetime
    alert_id: str
    probability: float | None = None
    horizon_h: float | None = None
    rul_lo_h: float | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class DryWorkOrder:
    """An opening after priority and guardrails."""

    opening: Opening
    priority: Priority
    team: str
    state: WoState
    """``pending`` (to the service system) or ``proposed`` (waits for a planner)."""
    reason: str
    """Why it starts there: ``auto``, ``budget_exempt``, ``suggest_mode``, ``budget_exhausted``."""

    @property
    def kind(self) -> Literal["auto", "suggested", "deferred"]:
        """``auto``, ``suggested`` (suggest mode) or ``deferred`` (the team's budget was spent)."""
        if self.state is WoState.PENDING:
            return "auto"
        return "deferred" if self.reason == "budget_exhausted" else "suggested"


@dataclasses.dataclass(frozen=True, slots=True)
class Failure:
    """A real failure: from a "failure confirmed" label, a failure record, or a file."""

    asset: str
    at: dt.datetime
    failure_mode: str | None = None
    source: str = ""


@dataclasses.dataclass(frozen=True, slots=True)
class FailureOutcome:
    """One failure and the earliest work order of the replay that came before it."""

    failure: Failure
    work_order: DryWorkOrder | None
    lead: dt.timedelta | None


@dataclasses.dataclass(frozen=True, slots=True)
class WeekCount:
    """One ISO week of the dry run (``week`` is ``2026-W48``, or ``total``)."""

    week: str
    alerts: int = 0
    """Alerts raised."""
    work_orders: int = 0
    auto: int = 0
    """Would have gone to the service system without a planner."""
    suggested: int = 0
    """Would have waited for a planner: ``suggest`` mode."""
    deferred: int = 0
    """Would have waited for a planner: the team's daily budget was spent."""
    before_failure: int = 0
    """Work orders opened within the lead window before a matching failure."""
    failures: int = 0
    """Real failures in the week."""


@dataclasses.dataclass(frozen=True, slots=True)
class DryRunReport:
    """The whole answer."""

    weeks: tuple[WeekCount, ...]
    total: WeekCount
    failures: tuple[FailureOutcome, ...]
    work_orders: tuple[DryWorkOrder, ...]
    lead_window: dt.timedelta
    match: Match

    @property
    def median_lead(self) -> dt.timedelta | None:
        """The median lead time over the failures that had a work order before them."""
        leads = sorted(f.lead.total_seconds() for f in self.failures if f.lead is not None)
        return dt.timedelta(seconds=statistics.median(leads)) if leads else None

    @property
    def missed(self) -> list[Failure]:
        """Failures with no work order before them."""
        return [f.failure for f in self.failures if f.work_order is None]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able form (times ISO 8601, durations in hours)."""
        median = self.median_lead
        return {
            "weeks": [dataclasses.asdict(w) for w in self.weeks],
            "total": dataclasses.asdict(self.total),
            "lead_window_h": self.lead_window.total_seconds() / 3600,
            "match": self.match,
            "failures_total": len(self.failures),
            "failures_with_work_order_before": len(self.failures) - len(self.missed),
            "median_lead_h": None if median is None else median.total_seconds() / 3600,
            "failures": [
                {
                    "asset": f.failure.asset,
                    "failure_mode": f.failure.failure_mode,
                    "at": f.failure.at.isoformat(),
                    "source": f.failure.source,
                    "work_order_at": None
                    if f.work_order is None
                    else f.work_order.opening.at.isoformat(),
                    "work_order_target": None
                    if f.work_order is None
                    else f.work_order.opening.target,
                    "lead_h": None if f.lead is None else f.lead.total_seconds() / 3600,
                }
                for f in self.failures
            ],
        }


def iso_week(ts: dt.datetime) -> str:
    """``2026-W48`` (ISO year and week of `ts` in UTC)."""
    year, week, _ = ts.astimezone(dt.UTC).isocalendar()
    return f"{year}-W{week:02d}"


class AlertReplay:
    """Phase 1: scores in, per (asset, target) in time order; alerts and openings out.

    Args:
        alert_policy: The default alert policy (the scoring config's ``alert``).
        alert_policies: Per-target policies (its ``alerts``).
        work_takes: When each work order's alert is taken as closed.
    """

    def __init__(
        self,
        *,
        alert_policy: AlertPolicy,
        alert_policies: Mapping[str, AlertPolicy] | None = None,
        work_takes: dt.timedelta = dt.timedelta(days=3),
    ) -> None:
        self.engine = AlertEngine(policy=alert_policy, policies=alert_policies, in_order=True)
        self.work_takes = work_takes
        self.alerts: list[tuple[str, str, dt.datetime]] = []
        """(asset, target, time) of every alert raised."""
        self.openings: list[Opening] = []
        self.scores = 0
        self._closing: dict[tuple[str, str], tuple[dt.datetime, str]] = {}
        self._with_work: set[str] = set()

    def feed(self, score: ScoreAt) -> None:
        """One score; a key's scores must come in time order (keys may interleave freely)."""
        self.scores += 1
        key = (score.asset, score.target)
        pending = self._closing.get(key)
        if pending is not None and pending[0] <= score.ts:
            del self._closing[key]
            self.engine.act(pending[1], AlertEvent.CLOSE, now=pending[0], reason="dry_run_done")
        changes = self.engine.observe(score.asset, score.target, score.ts, score.risk, now=score.ts)
        for change in changes:
            if change.raised:
                self.alerts.append((score.asset, score.target, score.ts))
        if not changes:
            return
        alert = changes[-1].alert
        if alert.needs_work and alert.alert_id not in self._with_work:
            self._with_work.add(alert.alert_id)
            self.openings.append(
                Opening(
                    asset=score.asset,
                    target=score.target,
                    at=score.ts,
                    alert_id=alert.alert_id,
                    probability=score.probability,
                    horizon_h=score.horizon_h,
                    rul_lo_h=score.rul_lo_h,
                )
            )
            self._closing[key] = (score.ts + self.work_takes, alert.alert_id)


def admit_openings(
    openings: Iterable[Opening], *, assets: Mapping[str, AssetLike], policy: ServicePolicy
) -> list[DryWorkOrder]:
    """Phase 2: priority and guardrails over the whole fleet, in time order.

    Args:
        openings: From `AlertReplay` (any order).
        assets: Asset records by id (tier, criticality, class, team); unknown assets are skipped.
        policy: The service policy (classification, modes, budgets, calendar).

    Returns:
        The work orders, in time order.
    """
    sent: Counter[tuple[str, dt.date]] = Counter()
    out: list[DryWorkOrder] = []
    for o in sorted(openings, key=lambda o: (o.at, o.asset, o.target)):
        asset = assets.get(o.asset)
        if asset is None:
            continue
        priority = classify(
            rule_based=False,
            probability=o.probability,
            horizon_h=o.horizon_h,
            rul_lo_h=o.rul_lo_h,
            criticality=str(asset.criticality),
            tier=str(asset.tier),
            policy=policy,
        )
        day = budget_day(o.at, policy)
        admission = admit(
            priority=priority,
            asset_class=asset.asset_class,
            team=asset.team,
            sent_today=sent[(asset.team, day)],
            policy=policy,
        )
        if admission.state is WoState.PENDING:
            sent[(asset.team, day)] += 1
        out.append(DryWorkOrder(o, priority, asset.team, admission.state, admission.reason))
    return out


def _matches(wo: DryWorkOrder, failure: Failure, match: Match) -> bool:
    if wo.opening.asset != failure.asset:
        return False
    return match == "asset" or failure.failure_mode in {None, wo.opening.target}


def match_failures(
    work_orders: Sequence[DryWorkOrder],
    failures: Iterable[Failure],
    *,
    lead_window: dt.timedelta,
    match: Match = "mode",
) -> tuple[list[FailureOutcome], set[int]]:
    """Phase 3: which work orders came before a real failure, and each failure's lead time.

    Returns:
        One outcome per failure (in time order), and the indexes in `work_orders` of those that
        came before one.
    """
    by_asset: dict[str, list[int]] = {}
    for i, wo in enumerate(work_orders):
        by_asset.setdefault(wo.opening.asset, []).append(i)
    before: set[int] = set()
    outcomes = []
    for failure in sorted(failures, key=lambda f: (f.at, f.asset)):
        hits = [
            i
            for i in by_asset.get(failure.asset, [])
            if _matches(work_orders[i], failure, match)
            and failure.at - lead_window <= work_orders[i].opening.at < failure.at
        ]
        before.update(hits)
        first = min(hits, key=lambda i: work_orders[i].opening.at, default=None)
        if first is None:
            outcomes.append(FailureOutcome(failure, None, None))
        else:
            earliest = work_orders[first]
            outcomes.append(FailureOutcome(failure, earliest, failure.at - earliest.opening.at))
    return outcomes, before


def summarize(
    replay: AlertReplay,
    work_orders: Sequence[DryWorkOrder],
    failures: Iterable[Failure],
    *,
    lead_window: dt.timedelta,
    match: Match = "mode",
) -> DryRunReport:
    """The per-week counts, the totals and the failure outcomes."""
    failures = list(failures)
    outcomes, before = match_failures(work_orders, failures, lead_window=lead_window, match=match)
    weeks: dict[str, Counter[str]] = {}
    for _asset, _target, ts in replay.alerts:
        weeks.setdefault(iso_week(ts), Counter())["alerts"] += 1
    for i, wo in enumerate(work_orders):
        count = weeks.setdefault(iso_week(wo.opening.at), Counter())
        count["work_orders"] += 1
        count[wo.kind] += 1
        count["before_failure"] += i in before
    for failure in failures:
        weeks.setdefault(iso_week(failure.at), Counter())["failures"] += 1
    fields = [f.name for f in dataclasses.fields(WeekCount) if f.name != "week"]
    rows = tuple(WeekCount(w, **{f: c[f] for f in fields}) for w, c in sorted(weeks.items()))
    total = WeekCount("total", **{f: sum(getattr(r, f) for r in rows) for f in fields})
    return DryRunReport(rows, total, tuple(outcomes), tuple(work_orders), lead_window, match)


def dry_run(
    scores: Iterable[ScoreAt | tuple[str, str, dt.datetime, float]],
    *,
    assets: Mapping[str, AssetLike],
    alert_policy: AlertPolicy,
    policy: ServicePolicy,
    alert_policies: Mapping[str, AlertPolicy] | None = None,
    work_takes: dt.timedelta = dt.timedelta(days=3),
    failures: Iterable[Failure] = (),
    lead_window: dt.timedelta = dt.timedelta(days=30),
    match: Match = "mode",
) -> DryRunReport:
    """The three phases over scores held in memory (the CLI streams them instead).

    Args:
        scores: `ScoreAt` or (asset, target, time, risk), any order (replayed in time order).
        assets: Asset records by id (tier, team, class); unknown assets are skipped.
        alert_policy: The default alert policy to try.
        policy: The service policy (modes, budgets).
        alert_policies: Per-target overrides.
        work_takes: When each work order's alert is taken as closed.
        failures: Real failures.
        lead_window: How long before a failure a work order counts as "before" it.
        match: ``mode`` or ``asset`` (module docstring).

    Returns:
        The report.
    """
    replay = AlertReplay(
        alert_policy=alert_policy, alert_policies=alert_policies, work_takes=work_takes
    )
    points = [s if isinstance(s, ScoreAt) else ScoreAt(*s) for s in scores]
    for s in sorted(points, key=lambda s: (s.ts, s.asset, s.target)):
        if s.asset in assets:
            replay.feed(s)
    work_orders = admit_openings(replay.openings, assets=assets, policy=policy)
    return summarize(replay, work_orders, failures, lead_window=lead_window, match=match)


def _days(value: dt.timedelta | None) -> str:
    return "-" if value is None else f"{value.total_seconds() / 86400:.1f} d"


def render_table(report: DryRunReport, header: Mapping[str, Any]) -> str:
    """The report as text: a row per ISO week, totals, failures."""
    lines = [
        (
            f"dry run {header['from']} .. {header['to']}: {header['assets']:,} assets, "
            f"{header['scores']:,} scores (config {header['config'] or 'default'}, "
            f"policy {header['policy'] or 'default'}, work takes {header['work_takes_h']:g} h, "
            f"lead window {_days(report.lead_window)}, match {report.match})"
        ),
        "",
        (
            f"{'week':<10} {'alerts':>7} {'work orders':>12} {'auto':>6} {'suggested':>10} "
            f"{'deferred':>9} {'before failure':>15} {'failures':>9}"
        ),
    ]
    lines += [
        f"{w.week:<10} {w.alerts:>7} {w.work_orders:>12} {w.auto:>6} {w.suggested:>10} "
        f"{w.deferred:>9} {w.before_failure:>15} {w.failures:>9}"
        for w in (*report.weeks, report.total)
    ]
    missed = report.missed
    n = len(report.failures)
    lines += [
        "",
        (
            f"failures: {n}, with a work order before: {n - len(missed)}, "
            f"median lead {_days(report.median_lead)}"
        ),
    ]
    if missed:
        lines.append("failures with no work order before them:")
        lines += [
            f"  {f.asset}  {f.failure_mode or '-'}  {f.at.isoformat()}  ({f.source})"
            for f in missed
        ]
    return "\n".join(lines)
