"""Building work orders from a prediction (an alert) or a maintenance rule: pure.

Everything comes in as arguments, ``created_at`` included; the same inputs always build the same
work order with the same key.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Literal

from cloud.workorders._model import (
    AssetLike,
    Evidence,
    PartLine,
    ProfileLike,
    SimilarCase,
    WorkOrder,
    work_order_key,
)
from cloud.workorders._policy import ServicePolicy
from cloud.workorders._priority import (
    classify,
    deadlines,
    due_by_date,
    order_by_date,
    resolution_mode,
)


def _parts(
    profile: ProfileLike | None,
    numbers: Sequence[str],
    due_by: dt.datetime,
    policy: ServicePolicy,
) -> tuple[PartLine, ...]:
    known = {p.part_number: p for p in (profile.spare_parts if profile else ())}
    lines = []
    for number in numbers:
        part = known.get(number)
        lead = policy.parts.lead_time_days.get(number, policy.parts.default_lead_time_days)
        lines.append(
            PartLine(
                part_number=number,
                description=part.description if part else "",
                quantity=part.quantity if part else 1,
                lead_time_days=lead,
                order_by=order_by_date(due_by, [number], policy),
            )
        )
    return tuple(lines)


def _warranty(asset: AssetLike, on: dt.datetime) -> Literal["free", "billable"]:
    end = asset.warranty_end
    return "free" if end is not None and on.date() <= end else "billable"


def build_from_prediction(
    *,
    asset: AssetLike,
    profile: ProfileLike | None,
    failure_mode: str,
    window: str,
    created_at: dt.datetime,
    policy: ServicePolicy,
    probability: float | None = None,
    horizon_h: float | None = None,
    rul_h: float | None = None,
    rul_lo_h: float | None = None,
    rul_hi_h: float | None = None,
    evidence: Sequence[Evidence] = (),
    similar_cases: Sequence[SimilarCase] = (),
    alert_id: str | None = None,
    production_stopped: bool = False,
) -> WorkOrder:
    """A repair work order for a predicted failure (one per alert: ``window`` = the alert).

    Args:
        asset: The asset record.
        profile: Its firmware profile (failure modes and parts); None when unknown.
        failure_mode: The predicted failure mode.
        window: Which occurrence (``alert-<n>`` of the alert's key).
        created_at: Now.
        policy: The service policy.
        probability: Failure probability within `horizon_h`.
        horizon_h: Hours.
        rul_h: Remaining life, hours (point estimate).
        rul_lo_h: Its interval's lower bound: the due-by.
        rul_hi_h: Its interval's upper bound.
        evidence: The signals that drove the score.
        similar_cases: From the case library.
        alert_id: The alert it comes from.
        production_stopped: Production is down (P1).

    Returns:
        The work order.
    """
    mode = next(
        (m for m in (profile.failure_modes if profile else ()) if m.name == failure_mode), None
    )
    numbers = tuple(mode.spare_parts) if mode else ()
    priority = classify(
        rule_based=False,
        probability=probability,
        horizon_h=horizon_h,
        rul_lo_h=rul_lo_h,
        criticality=str(asset.criticality),
        production_stopped=production_stopped,
        tier=str(asset.tier),
        policy=policy,
    )
    due_by = due_by_date(
        created_at=created_at, rul_lo_h=rul_lo_h, horizon_h=horizon_h, policy=policy
    )
    sla = deadlines(
        priority, tier=str(asset.tier), created_at=created_at, due_by=due_by, policy=policy
    )
    parts = _parts(profile, numbers, due_by, policy)
    described = (
        mode.description if mode and mode.description else failure_mode.replace("_", " ")
    ).rstrip(".")
    chance = (
        f"{probability:.0%} within {horizon_h:g} h" if probability is not None and horizon_h else ""
    )
    life = (
        f"remaining life {rul_h:g} h ({rul_lo_h:g}-{rul_hi_h:g} h)"
        if rul_h is not None and rul_lo_h is not None and rul_hi_h is not None
        else ""
    )
    return WorkOrder(
        key=work_order_key(asset.asset_id, failure_mode, "repair", window),
        kind="prediction",
        action="repair",
        window=window,
        asset=asset.asset_id,
        site=asset.site,
        customer=asset.customer,
        tier=str(asset.tier),
        asset_class=asset.asset_class,
        team=asset.team,
        profile=asset.profile,
        title=f"{asset.asset_id}: {failure_mode.replace('_', ' ')} predicted",
        description="; ".join(x for x in (described, chance, life) if x),
        priority=priority,
        created_at=created_at,
        respond_by=sla.respond_by,
        onsite_by=sla.onsite_by,
        resolve_by=sla.resolve_by,
        failure_mode=failure_mode,
        probability=probability,
        horizon_h=horizon_h,
        rul_h=rul_h,
        rul_lo_h=rul_lo_h,
        rul_hi_h=rul_hi_h,
        due_by=due_by,
        evidence=tuple(evidence),
        parts=parts,
        order_by=min((p.order_by for p in parts if p.order_by), default=None),
        warranty=_warranty(asset, created_at),
        resolution_mode=resolution_mode(failure_mode, numbers, policy),
        similar_cases=tuple(similar_cases),
        asset_url=policy.asset_url.format(asset=asset.asset_id),
        alert_id=alert_id,
    )


def build_from_rule(
    *,
    asset: AssetLike,
    profile: ProfileLike | None,
    consumable: str,
    window: str,
    due_by: dt.datetime,
    reason: str,
    created_at: dt.datetime,
    policy: ServicePolicy,
    similar_cases: Sequence[SimilarCase] = (),
) -> WorkOrder:
    """A replacement work order from a calendar or usage rule (P4 before the tier).

    Args:
        asset: The asset record.
        profile: Its firmware profile.
        consumable: The consumable to replace.
        window: The rule's due point (``due@16000h``, ``due@2027-03-01``).
        due_by: When it is due.
        reason: Why (``operating hours 15,200 of 16,000``), for the description.
        created_at: Now.
        policy: The service policy.
        similar_cases: From the case library.

    Returns:
        The work order.
    """
    item = next((c for c in (profile.consumables if profile else ()) if c.name == consumable), None)
    numbers = (item.spare_part,) if item and item.spare_part else ()
    priority = classify(rule_based=True, tier=str(asset.tier), policy=policy)
    sla = deadlines(
        priority, tier=str(asset.tier), created_at=created_at, due_by=due_by, policy=policy
    )
    parts = _parts(profile, numbers, due_by, policy)
    described = item.description if item and item.description else consumable.replace("_", " ")
    return WorkOrder(
        key=work_order_key(asset.asset_id, consumable, "replace", window),
        kind="rule",
        action="replace",
        window=window,
        asset=asset.asset_id,
        site=asset.site,
        customer=asset.customer,
        tier=str(asset.tier),
        asset_class=asset.asset_class,
        team=asset.team,
        profile=asset.profile,
        title=f"{asset.asset_id}: replace {consumable.replace('_', ' ')}",
        description=f"{described}; {reason}",
        priority=priority,
        created_at=created_at,
        respond_by=sla.respond_by,
        onsite_by=sla.onsite_by,
        resolve_by=sla.resolve_by,
        consumable=consumable,
        due_by=due_by,
        parts=parts,
        order_by=min((p.order_by for p in parts if p.order_by), default=None),
        warranty=_warranty(asset, created_at),
        resolution_mode="on-site",
        similar_cases=tuple(similar_cases),
        asset_url=policy.asset_url.format(asset=asset.asset_id),
    )
