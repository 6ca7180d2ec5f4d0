"""The dry run: replay stored scores through the alert engine and the guardrails, count work orders.

Pure: the caller reads the history (InfluxDB ``scores``) and passes it in; nothing is stored or
sent. It answers the planners' question before a policy goes live: *how many work orders per
week would this produce, and how many would go out on their own?* An alert that needs work is
one work order (as in production: one per alert); each is assumed done ``work_takes`` after it
was raised (its alert closed then, which starts the cooldown).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections import Counter
from collections.abc import Iterable, Mapping

from cloud.alerting import AlertEngine, AlertEvent, AlertPolicy
from cloud.workorders._guardrails import admit, budget_day
from cloud.workorders._model import AssetLike
from cloud.workorders._policy import ServicePolicy
from cloud.workorders._priority import classify
from cloud.workorders._state import WoState


@dataclasses.dataclass(frozen=True, slots=True)
class WeekCount:
    """One ISO week of the dry run."""

    week: str
    """``2026-W48``."""
    work_orders: int
    auto: int
    """Would have gone to the service system without a planner."""
    proposed: int
    """Would have waited for a planner (suggest mode or budget spent)."""


def dry_run(
    scores: Iterable[tuple[str, str, dt.datetime, float]],
    *,
    assets: Mapping[str, AssetLike],
    alert_policy: AlertPolicy,
    policy: ServicePolicy,
    alert_policies: Mapping[str, AlertPolicy] | None = None,
    work_takes: dt.timedelta = dt.timedelta(days=3),
) -> list[WeekCount]:
    """Work orders per ISO week that the stored history would have produced.

    Args:
        scores: (asset, target, time, score), any order (replayed in time order).
        assets: Asset records by id (tier, team, class); unknown assets are skipped.
        alert_policy: The default alert policy to try.
        policy: The service policy (modes, budgets).
        alert_policies: Per-target overrides.
        work_takes: When each work order's alert is taken as closed.

    Returns:
        One entry per week with work orders, in order.
    """
    engine = AlertEngine(policy=alert_policy, policies=alert_policies)
    closing: list[tuple[dt.datetime, str]] = []
    sent: Counter[tuple[str, dt.date]] = Counter()
    weeks: dict[str, Counter[str]] = {}
    for asset_id, target, ts, score in sorted(scores, key=lambda s: (s[2], s[0], s[1])):
        for when, alert_id in sorted(c for c in closing if c[0] <= ts):
            closing.remove((when, alert_id))
            engine.act(alert_id, AlertEvent.CLOSE, now=when)
        asset = assets.get(asset_id)
        if asset is None:
            continue
        for change in engine.observe(asset_id, target, ts, score, now=ts):
            if not change.raised:
                continue
            priority = classify(
                rule_based=False,
                criticality=str(asset.criticality),
                tier=str(asset.tier),
                policy=policy,
            )
            day = budget_day(ts, policy)
            admission = admit(
                priority=priority,
                asset_class=asset.asset_class,
                team=asset.team,
                sent_today=sent[(asset.team, day)],
                policy=policy,
            )
            year, week, _ = ts.isocalendar()
            count = weeks.setdefault(f"{year}-W{week:02d}", Counter())
            count["work_orders"] += 1
            if admission.state is WoState.PENDING:
                sent[(asset.team, day)] += 1
                count["auto"] += 1
            else:
                count["proposed"] += 1
            closing.append((ts + work_takes, change.alert.alert_id))
    return [
        WeekCount(w, c["work_orders"], c["auto"], c["proposed"]) for w, c in sorted(weeks.items())
    ]
