"""Deciding on scores: alerts through `cloud.alerting`, work orders through `cloud.workorders`.

Follows docs/alerts.md and docs/workorders.md:

1. Before each run, `Decider.restore` calls ``AlertEngine.restore(store.alerts())`` (alert
   numbering survives restarts; changes made by work-order feedback are taken in).
2. Per (asset, target) and scoring time the engine observes one score: the highest risk
   (``1 - health / 100``) among that target's scores. Every change is saved (``save_alert``).
3. An alert that ``needs_work`` yields one work order (``build_from_prediction`` with
   ``window=alert_window(alert_id)``), admitted by the guardrails and stored (``submit``): the key
   is the same on every run, so the store keeps one.
4. An alert resolved with reason ``late_data`` was withdrawn: its work order is cancelled.
5. Calendar and usage rules (``due_consumables``) yield ``build_from_rule`` work orders.

The store is the only I/O; everything else is the pure engine and builders.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable, Mapping, Sequence

import structlog

from cloud.alerting import AlertEngine, AlertEvent, AlertPolicy
from cloud.registry import Asset
from cloud.scoring._core import Score
from cloud.workorders import (
    AssetLike,
    Evidence,
    IllegalWorkOrderTransition,
    Priority,
    ProfileLike,
    ServicePolicy,
    Store,
    WoEvent,
    WorkOrder,
    alert_window,
    build_from_prediction,
    build_from_rule,
    due_consumables,
    submit,
    work_order_key,
)

log = structlog.get_logger("prognos.scoring")

_ANCIENT = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
"""The ``now`` of warm-up observations: older than any saved alert, so saved alerts win."""


@dataclasses.dataclass(slots=True)
class Decisions:
    """What one batch of decisions did (added to the scorer's counters)."""

    alert_changes: int = 0
    work_orders_created: int = 0
    work_orders_cancelled: int = 0
    work_orders_updated: int = 0
    rule_work_orders: int = 0


def target_risks(scores: Iterable[Score]) -> dict[str, list[Score]]:
    """Scores grouped by target, the riskiest first."""
    out: dict[str, list[Score]] = {}
    for s in scores:
        out.setdefault(s.target, []).append(s)
    for group in out.values():
        group.sort(key=lambda s: s.risk, reverse=True)
    return out


class Decider:
    """Alerts and work orders from scores and rules; one per scorer process.

    Args:
        store: The decision-state store (SQLite).
        policy: The service policy (priorities, guardrails).
        alert_policy: The default alert policy.
        alert_policies: Per-target alert policies.
        rules_lookahead: How early a calendar or usage rule fires.
    """

    def __init__(
        self,
        *,
        store: Store,
        policy: ServicePolicy,
        alert_policy: AlertPolicy,
        alert_policies: Mapping[str, AlertPolicy],
        rules_lookahead: dt.timedelta = dt.timedelta(days=30),
    ) -> None:
        self.store = store
        self.policy = policy
        self.engine = AlertEngine(policy=alert_policy, policies=alert_policies)
        self.rules_lookahead = rules_lookahead

    def restore(self) -> None:
        """Take in every saved alert (docs/alerts.md: before each run)."""
        self.engine.restore(self.store.alerts())

    def warm(self, history: Iterable[tuple[str, str, dt.datetime, float]]) -> int:
        """At start-up: observe the stored scores of the undecided period, then restore.

        The engine keeps scores only in memory (docs/alerts.md: "after a restart the scorer
        re-reads the undecided period's scores from InfluxDB and observes them again").
        Observing them one by one *after* `restore` would judge the first one alone and resolve
        a restored open alert as ``late_data`` (cancelling its work order); so they are observed
        first, on the fresh engine, stamped with an ancient ``now``, and `restore` then installs
        every saved alert over what they rebuilt (a saved alert is always newer): the engine gets
        the scores, the store keeps the say on state (acknowledged, suppressed, closed).

        Args:
            history: ``(asset, target, ts, risk)``, risk as `Score.risk`, in any order.

        Returns:
            The number of scores observed.
        """
        count = 0
        for asset, target, ts, risk in sorted(history, key=lambda h: h[2]):
            self.engine.observe(asset, target, ts, risk, now=_ANCIENT)
            count += 1
        self.restore()
        return count

    def on_scores(
        self,
        asset: AssetLike,
        profile: ProfileLike | None,
        scores: Sequence[Score],
        *,
        now: dt.datetime,
    ) -> Decisions:
        """Feed one asset's scores of one time to the alert engine; act on what changes.

        Args:
            asset: The asset record.
            profile: Its firmware profile (parts for the work order).
            scores: Its scores at one scoring time.
            now: The current time (the scoring time in a replay).

        Returns:
            The counts of what was done.
        """
        done = Decisions()
        for target, group in target_risks(scores).items():
            top = group[0]
            changes = self.engine.observe(asset.asset_id, target, top.ts, top.risk, now=now)
            for change in changes:
                done.alert_changes += 1
                self.store.save_alert_change(change, source="scorer")
                if change.event is AlertEvent.RESOLVE and change.alert.reason == "late_data":
                    done.work_orders_cancelled += self._cancel(
                        asset.asset_id, target, change.alert.alert_id, now
                    )
            current = next(
                (
                    a
                    for a in self.engine.alerts()
                    if a.asset == asset.asset_id and a.target == target
                ),
                None,
            )
            if current is None or not current.needs_work:
                continue
            if self.store.alert_state(current.alert_id) is None:
                self.store.insert_alert(current, source="scorer")  # rebuilt by warm-up: keep its id
            prob = next((s for s in group if s.probability is not None), None)
            life = min(
                (s for s in group if s.rul_lo is not None),
                key=lambda s: s.rul_lo or 0.0,
                default=None,
            )
            evidence = tuple(e for s in group for e in s.evidence)
            wo = build_from_prediction(
                asset=asset,
                profile=profile,
                failure_mode=target,
                window=alert_window(current.alert_id),
                created_at=now,
                policy=self.policy,
                probability=prob.probability if prob else None,
                horizon_h=prob.horizon_h if prob else None,
                rul_h=life.rul if life else None,
                rul_lo_h=life.rul_lo if life else None,
                rul_hi_h=life.rul_hi if life else None,
                evidence=_unique_evidence(evidence),
                similar_cases=self.store.similar_cases(asset.profile, target),
                alert_id=current.alert_id,
            )
            admission = submit(self.store, wo, policy=self.policy, now=now)
            if admission is None:
                done.work_orders_updated += self._escalate(wo, now)
            else:
                done.work_orders_created += 1
                log.info(
                    "work_order_created",
                    key=wo.key,
                    asset=asset.asset_id,
                    target=target,
                    priority=wo.priority.value,
                    state=admission.state.value,
                )
        return done

    def on_rules(
        self,
        asset: Asset,
        profile: ProfileLike,
        *,
        hours_now: float | None,
        now: dt.datetime,
    ) -> Decisions:
        """Calendar and usage rules of one asset: a work order per due consumable."""
        done = Decisions()
        due = due_consumables(
            asset,
            profile,
            now=now,
            hours_now=hours_now,
            lookahead=self.rules_lookahead,
        )
        for rule in due:
            wo = build_from_rule(
                asset=asset,
                profile=profile,
                consumable=rule.consumable,
                window=rule.window,
                due_by=rule.due_by,
                reason=rule.reason,
                created_at=now,
                policy=self.policy,
                similar_cases=self.store.similar_cases(asset.profile, rule.consumable),
            )
            if submit(self.store, wo, policy=self.policy, now=now) is not None:
                done.rule_work_orders += 1
                log.info(
                    "rule_work_order_created",
                    key=wo.key,
                    asset=asset.asset_id,
                    consumable=rule.consumable,
                )
        return done

    def _escalate(self, wo: WorkOrder, now: dt.datetime) -> int:
        """Send new content when the same alert now asks for a more urgent priority.

        Only an escalation updates: fresh evidence every pass would flood the service system.
        """
        stored = self.store.get(wo.key).work_order
        if list(Priority).index(wo.priority) >= list(Priority).index(stored.priority):
            return 0
        self.store.update(wo, now=now, source="scorer")
        log.info(
            "work_order_escalated",
            key=wo.key,
            old=stored.priority.value,
            new=wo.priority.value,
        )
        return 1

    def _cancel(self, asset: str, target: str, alert_id: str, now: dt.datetime) -> int:
        key = work_order_key(asset, target, "repair", alert_window(alert_id))
        try:
            self.store.transition(key, WoEvent.CANCEL, now=now, source="scorer", reason="late_data")
        except KeyError:
            return 0  # no work order was made for it
        except IllegalWorkOrderTransition:
            return 0  # already finished or cancelled
        return 1


def _unique_evidence(items: Iterable[Evidence]) -> tuple[Evidence, ...]:
    seen: set[str] = set()
    out = []
    for item in items:
        if item.signal not in seen:
            seen.add(item.signal)
            out.append(item)
    return tuple(out)
