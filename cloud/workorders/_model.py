"""The work order (DESIGN.md "Work orders to the service system") and its deterministic key.

What the builders need from an asset record and a firmware profile is written as small
Protocols, so `cloud.registry.Asset` and `edge_agent._profile.Profile` fit without this package
importing them (and tests can pass plain dataclasses).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Sequence
from typing import Annotated, Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

from cloud.workorders._policy import Priority

KEY_VERSION = "v1"


class AssetLike(Protocol):
    """The fields of an asset record (`cloud.registry.Asset`) a work order needs."""

    @property
    def asset_id(self) -> str: ...
    @property
    def site(self) -> str: ...
    @property
    def customer(self) -> str: ...
    @property
    def tier(self) -> str: ...
    @property
    def profile(self) -> str: ...
    @property
    def asset_class(self) -> str: ...
    @property
    def team(self) -> str: ...
    @property
    def criticality(self) -> str: ...
    @property
    def warranty_end(self) -> dt.date | None: ...


class SparePartLike(Protocol):
    """A profile's spare part."""

    @property
    def part_number(self) -> str: ...
    @property
    def description(self) -> str: ...
    @property
    def quantity(self) -> int: ...


class FailureModeLike(Protocol):
    """A profile's failure mode."""

    @property
    def name(self) -> str: ...
    @property
    def description(self) -> str: ...
    @property
    def spare_parts(self) -> Sequence[str]: ...


class ConsumableLike(Protocol):
    """A profile's consumable."""

    @property
    def name(self) -> str: ...
    @property
    def description(self) -> str: ...
    @property
    def interval_h(self) -> float | None: ...
    @property
    def interval_days(self) -> float | None: ...
    @property
    def spare_part(self) -> str | None: ...


class ProfileLike(Protocol):
    """The maintenance part of a firmware profile (`edge_agent._profile.Profile`)."""

    @property
    def failure_modes(self) -> Sequence[FailureModeLike]: ...
    @property
    def consumables(self) -> Sequence[ConsumableLike]: ...
    @property
    def spare_parts(self) -> Sequence[SparePartLike]: ...


def work_order_key(asset: str, target: str, action: str, window: str) -> str:
    """The deterministic key of one intended piece of work (DESIGN.md), never per scoring run.

    Args:
        asset: The asset id.
        target: The failure mode or consumable.
        action: ``repair`` (a prediction) or ``replace`` (a consumable rule), ...
        window: Which occurrence: the alert (``alert-3``) or the rule's due point (``due@16000h``).

    Returns:
        ``wo-`` and 32 hex digits: fits ServiceNow's ``correlation_id`` and HTTP headers.
    """
    text = f"{KEY_VERSION}|{asset}|{target}|{action}|{window}"
    return "wo-" + hashlib.sha256(text.encode()).hexdigest()[:32]


def alert_window(alert_id: str) -> str:
    """The work-order window of an alert: ``pump-07/bearing_wear/3`` -> ``alert-3``."""
    return "alert-" + alert_id.rsplit("/", 1)[-1]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Evidence(_Model):
    """A signal that drove the score, with its value and trend."""

    signal: str
    value: float | None = None
    unit: str = ""
    trend_per_day: float | None = None
    """Change per day over the scored window."""
    note: str = ""


class PartLine(_Model):
    """A recommended spare part or consumable, with when to order it."""

    part_number: str
    description: str = ""
    quantity: Annotated[int, Field(ge=1)] = 1
    lead_time_days: Annotated[int, Field(ge=0)] = 0
    order_by: dt.datetime | None = None


class SimilarCase(_Model):
    """A closed work order of the same kind, from the case library."""

    key: str
    asset: str
    closed_at: dt.datetime
    failure_confirmed: bool | None = None
    root_cause: str = ""
    parts_used: tuple[str, ...] = ()
    resolution_mode: str | None = None


class WorkOrder(_Model):
    """One intended piece of work, with every field of DESIGN.md."""

    key: str
    kind: Literal["prediction", "rule"]
    action: str
    window: str
    asset: str
    site: str
    customer: str
    tier: str
    asset_class: str
    team: str
    profile: str
    title: str
    description: str
    priority: Priority
    created_at: dt.datetime
    respond_by: dt.datetime
    onsite_by: dt.datetime | None
    resolve_by: dt.datetime
    failure_mode: str | None = None
    consumable: str | None = None
    probability: float | None = None
    horizon_h: float | None = None
    rul_h: float | None = None
    rul_lo_h: float | None = None
    rul_hi_h: float | None = None
    due_by: dt.datetime
    evidence: tuple[Evidence, ...] = ()
    parts: tuple[PartLine, ...] = ()
    order_by: dt.datetime | None = None
    """The earliest order-by date of the parts."""
    warranty: Literal["free", "billable"]
    resolution_mode: Literal["remote", "on-site"]
    similar_cases: tuple[SimilarCase, ...] = ()
    asset_url: str
    alert_id: str | None = None

    @property
    def target(self) -> str:
        """The failure mode or consumable."""
        return self.failure_mode or self.consumable or ""

    def payload(self) -> dict[str, Any]:
        """The JSON body sent to the service system (``data`` of the webhook event)."""
        return self.model_dump(mode="json")
