"""The service policy: service levels, calendar, escalation, delivery and guardrails (config).

One pydantic model, validated at load with ``extra="forbid"`` (STYLE.md 4); every default is the
DESIGN.md table "Default service levels", so an empty file is the documented policy. Spans are
written as people write them: ``30m``, ``2h``, ``3d``, ``1 business day``, ``next planning
cycle``, ``due-by``; they are canonicalised here, once. See config/service-policy.example.yaml.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import re
import zoneinfo
from pathlib import Path
from typing import Annotated, Any, Final, Literal, Self

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator

from cloud._validation import format_validation_error
from cloud.workorders._exceptions import PolicyError


class Priority(enum.StrEnum):
    """DESIGN.md priorities; P1 is the most urgent."""

    P1 = "P1"
    P2 = "P2"
    P3 = "P3"
    P4 = "P4"

    def raised(self) -> Priority:
        """One level more urgent (P1 stays P1)."""
        order = list(Priority)
        return order[max(order.index(self) - 1, 0)]


@dataclasses.dataclass(frozen=True, slots=True)
class BusinessDays:
    """A span of whole business days (``1 business day``)."""

    days: int


@dataclasses.dataclass(frozen=True, slots=True)
class NextPlanningCycle:
    """Until the start of the next planning cycle."""


@dataclasses.dataclass(frozen=True, slots=True)
class UntilDueBy:
    """Until the work order's due-by date."""


Span = dt.timedelta | BusinessDays | NextPlanningCycle | UntilDueBy
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)\s*(s|m|min|h|d)$")
_UNITS: Final = {"s": 1, "m": 60, "min": 60, "h": 3600, "d": 86400}
_BUSINESS = re.compile(r"^(\d+)\s+business\s+days?$")


def parse_span(value: object) -> object:
    """``30m``, ``2h``, ``3d``, ``N business day(s)``, ``next planning cycle``, ``due-by``."""
    if isinstance(value, dt.timedelta | BusinessDays | NextPlanningCycle | UntilDueBy):
        return value
    if not isinstance(value, str):
        raise ValueError(  # noqa: TRY004 - pydantic turns ValueError into a validation error
            f"must be a span like '30m', '2h', '1 business day'. Got {value!r} instead"
        )
    text = value.strip().casefold()
    if m := _DURATION.match(text):
        return dt.timedelta(seconds=float(m[1]) * _UNITS[m[2]])
    if m := _BUSINESS.match(text):
        return BusinessDays(int(m[1]))
    if text in {"next planning cycle", "next_planning_cycle"}:
        return NextPlanningCycle()
    if text in {"due-by", "due_by", "before due-by", "by due date"}:
        return UntilDueBy()
    raise ValueError(
        "must be a span like '30m', '2h', '3d', '1 business day', 'next planning cycle' or "
        f"'due-by'. Got {value!r} instead"
    )


def _duration(value: object) -> object:
    if isinstance(value, str):
        span = parse_span(value)
        if not isinstance(span, dt.timedelta):
            raise ValueError(  # noqa: TRY004 - pydantic turns ValueError into a validation error
                f"must be a plain duration like '15m' or '2h'. Got {value!r} instead"
            )
        return span
    return value


SpanField = Annotated[
    dt.timedelta | BusinessDays | NextPlanningCycle | UntilDueBy, BeforeValidator(parse_span)
]
Duration = Annotated[dt.timedelta, BeforeValidator(_duration)]
Weekday = Literal["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
WEEKDAYS: Final[tuple[Weekday, ...]] = (
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
)
Label = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]


class _Model(BaseModel):
    model_config = ConfigDict(
        extra="forbid", frozen=True, arbitrary_types_allowed=True, use_attribute_docstrings=True
    )


class ServiceLevel(_Model):
    """One row of the service-level table."""

    respond: SpanField
    """Time to acknowledge (the service system assigns it)."""
    respond_gold: SpanField | None = None
    """Gold customers' faster response; defaults to ``respond``."""
    onsite: SpanField | None = None
    """Time to be on site or have a workaround; none for routine work."""
    resolve: SpanField
    """Time to resolve."""


DEFAULT_LEVELS: Final = {
    Priority.P1: ServiceLevel(
        respond=dt.timedelta(minutes=30),
        respond_gold=dt.timedelta(minutes=15),
        onsite=dt.timedelta(hours=2),
        resolve=dt.timedelta(hours=24),
    ),
    Priority.P2: ServiceLevel(
        respond=dt.timedelta(hours=1),
        respond_gold=dt.timedelta(minutes=30),
        onsite=dt.timedelta(hours=4),
        resolve=dt.timedelta(hours=72),
    ),
    Priority.P3: ServiceLevel(
        respond=BusinessDays(1),
        respond_gold=dt.timedelta(hours=4),
        onsite=UntilDueBy(),
        resolve=UntilDueBy(),
    ),
    Priority.P4: ServiceLevel(
        respond=NextPlanningCycle(), respond_gold=BusinessDays(1), resolve=UntilDueBy()
    ),
}


class Calendar(_Model):
    """Business days and the planning cycle, in the service organisation's time zone."""

    timezone: str = "UTC"
    """An IANA time zone (``Europe/Berlin``)."""
    workdays: tuple[Weekday, ...] = WEEKDAYS[:5]
    holidays: tuple[dt.date, ...] = ()
    day_start: dt.time = dt.time(8, 0)
    """When a business day starts (work raised on a day off counts from here)."""
    planning_weekday: Weekday = "monday"
    planning_time: dt.time = dt.time(8, 0)

    @model_validator(mode="after")
    def _zone(self) -> Self:
        try:
            zoneinfo.ZoneInfo(self.timezone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"timezone must be an IANA zone like 'Europe/Berlin'. Got {self.timezone!r} instead"
            ) from None
        if not self.workdays:
            raise ValueError("workdays must name at least one day")
        return self

    @property
    def zone(self) -> zoneinfo.ZoneInfo:
        """The time zone."""
        return zoneinfo.ZoneInfo(self.timezone)


class Classification(_Model):
    """How a model's prediction becomes a priority (DESIGN.md "when" column)."""

    likely_probability: Annotated[float, Field(ge=0, le=1)] = 0.5
    """A failure is "likely" within the horizon at this probability or above."""
    p1_within: Duration = dt.timedelta(hours=24)
    p2_within: Duration = dt.timedelta(days=7)
    planning_horizon: Duration = dt.timedelta(days=30)
    critical: tuple[str, ...] = ("high", "critical")
    """Asset criticalities that count as a critical asset for P1."""


class EscalationStep(_Model):
    """One step before an unacknowledged response deadline."""

    at: Annotated[float, Field(gt=0, lt=1)]
    """When, as the fraction of the response window gone (0.5 = half way)."""
    action: Literal["warn", "escalate"]
    channels: tuple[Literal["webhook", "email"], ...] = ("webhook", "email")
    to: tuple[str, ...] = ()
    """E-mail addresses (team leads, duty manager)."""


class Delivery(_Model):
    """Outbox retries."""

    max_attempts: Annotated[int, Field(ge=1, le=1000)] = 8
    """Dead-letter after this many failed attempts."""
    backoff_min: Duration = dt.timedelta(seconds=30)
    backoff_max: Duration = dt.timedelta(hours=1)
    timeout_s: Annotated[float, Field(gt=0, le=600)] = 10.0


class Guardrails(_Model):
    """Against flooding the planners."""

    daily_budget: dict[Label, Annotated[int, Field(ge=0)]] = {}
    """Work orders per team per day that go out without a planner."""
    default_daily_budget: Annotated[int, Field(ge=0)] | None = None
    """Teams not named above; none = no budget."""
    budget_exempt: tuple[Priority, ...] = (Priority.P1, Priority.P2)
    """Priorities that never wait for the budget."""
    modes: dict[Label, Literal["suggest", "auto"]] = {}
    """Per asset class: ``suggest`` (a planner approves) or ``auto``."""
    default_mode: Literal["suggest", "auto"] = "suggest"


class Parts(_Model):
    """Supplier lead times, for the order-by date."""

    lead_time_days: dict[str, Annotated[int, Field(ge=0)]] = {}
    default_lead_time_days: Annotated[int, Field(ge=0)] = 7


class Resolution(_Model):
    """Which work can be done remotely."""

    remote_failure_modes: tuple[str, ...] = ()
    """Failure modes fixed by a remote command or reset when no part is needed."""


class ServicePolicy(_Model):
    """The whole service policy; every default is DESIGN.md's."""

    levels: dict[Priority, ServiceLevel] = DEFAULT_LEVELS
    calendar: Calendar = Calendar()
    classification: Classification = Classification()
    escalation: tuple[EscalationStep, ...] = (
        EscalationStep(at=0.5, action="warn"),
        EscalationStep(at=0.8, action="escalate"),
    )
    delivery: Delivery = Delivery()
    guardrails: Guardrails = Guardrails()
    parts: Parts = Parts()
    resolution: Resolution = Resolution()
    asset_url: str = "https://prognos.example/assets/{asset}"
    """Link to the asset page; ``{asset}`` is replaced."""

    @model_validator(mode="before")
    @classmethod
    def _merge_levels(cls, data: Any) -> Any:  # noqa: ANN401 - pydantic's before-validator
        # A file that sets one level keeps the defaults of the others.
        if isinstance(data, dict) and isinstance(data.get("levels"), dict):
            merged: dict[object, object] = {p.value: lv for p, lv in DEFAULT_LEVELS.items()}
            merged.update(data["levels"])
            data = {**data, "levels": merged}
        return data

    def level(self, priority: Priority) -> ServiceLevel:
        """The service level of `priority`."""
        return self.levels[priority]


def parse_policy(data: object, *, source: str = "<policy>") -> ServicePolicy:
    """Validate a policy mapping.

    Args:
        data: The parsed YAML (``None`` for an empty file = the defaults).
        source: Named in errors (the file).

    Returns:
        The policy.

    Raises:
        PolicyError: Every problem, one line each naming source, key and value.
    """
    try:
        return ServicePolicy.model_validate(data or {})
    except ValidationError as exc:
        raise PolicyError(format_validation_error(exc, source), source=source) from None


def load_policy(path: Path | str | None) -> ServicePolicy:
    """Load a policy file; ``None`` gives the defaults (DESIGN.md).

    Raises:
        PolicyError: Unreadable, not YAML, or invalid (the message names file, key and value).
    """
    if path is None:
        return ServicePolicy()
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise PolicyError(f"{path}: cannot read the policy: {exc}", source=str(path)) from exc
    return parse_policy(data, source=str(path))
