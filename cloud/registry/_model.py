"""The asset record: a frozen pydantic model, validated at load (DESIGN.md "Asset records").

Every choice is an enum or a `Literal` (STYLE.md 4): a customer's tier is `Tier`, an asset's
criticality `Criticality`. Aliases are canonicalised once, here: ``vip``, ``GOLD`` and ``regular``
become the tier, ``Crit`` does not (a typo is an error, never a guess).
"""

from __future__ import annotations

import datetime as dt
import enum
from typing import Annotated, Final

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from prognos_contract import ID_PATTERN, NAME_PATTERN

ASSET_ID_PATTERN: Final = NAME_PATTERN
"""Asset ids: the `asset` of contract-v1 readings and the InfluxDB tag (``pump-07``)."""
SITE_PATTERN: Final = ID_PATTERN
"""Sites and gateways: one MQTT topic level (``plant1``, ``gw-plant1-01``)."""
PROFILE_PATTERN: Final = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$"
"""A firmware profile id: the file stem in ``firmware_profiles/`` (``aquaflo_cpv150_2.x``)."""
LABEL_PATTERN: Final = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
"""Asset classes, teams and consumable names: short identifiers used as keys in other configs."""


class Tier(enum.StrEnum):
    """The customer's service tier (DESIGN.md "Default service levels").

    VIP customers move up one priority level; Gold customers get the faster response of theirs.
    """

    VIP = "VIP"
    GOLD = "Gold"
    REGULAR = "Regular"


class Criticality(enum.StrEnum):
    """How much the asset's failure hurts production; orders the alert and work-order queues."""

    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        """0 for ``low`` up to 3 for ``critical``, for sorting."""
        return list(Criticality).index(self)


def _canonical_enum(kind: type[enum.StrEnum]) -> BeforeValidator:
    """Accept an enum's value in any letter case (``vip``, ``GOLD``), canonicalised at load."""

    def canonical(value: object) -> object:
        if isinstance(value, str):
            for member in kind:
                if member.value.casefold() == value.strip().casefold():
                    return member
        return value

    return BeforeValidator(canonical)


TierField = Annotated[Tier, _canonical_enum(Tier)]
CriticalityField = Annotated[Criticality, _canonical_enum(Criticality)]
Text = Annotated[str, Field(min_length=1, max_length=200)]
Label = Annotated[str, Field(pattern=LABEL_PATTERN)]
Hours = Annotated[float, Field(ge=0, le=10_000_000, allow_inf_nan=False)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)


class Location(_Model):
    """Where the asset stands, in WGS 84 degrees."""

    lat: Annotated[float, Field(ge=-90, le=90, allow_inf_nan=False)]
    """Latitude, -90 to 90."""
    lon: Annotated[float, Field(ge=-180, le=180, allow_inf_nan=False)]
    """Longitude, -180 to 180."""


class ConsumableState(_Model):
    """When a consumable (a profile's `consumables` entry) was last replaced.

    The replacement rules of the profile (``interval_h``, ``interval_days``) count from here; a
    consumable with no record counts from commissioning.
    """

    replaced_on: dt.date | None = None
    """The calendar date of the last replacement."""
    replaced_at_hours: Hours | None = None
    """The asset's operating hours at the last replacement."""

    @model_validator(mode="after")
    def _something_known(self) -> ConsumableState:
        if self.replaced_on is None and self.replaced_at_hours is None:
            raise ValueError("needs replaced_on or replaced_at_hours (or both)")
        return self


class Asset(_Model):
    """One asset record (DESIGN.md "Asset records"), plus what scoring and work orders need.

    Dates are calendar dates in the site's time zone; anything that compares them with "today"
    takes the day as a parameter (`warranty_active`).
    """

    asset_id: Annotated[str, Field(pattern=ASSET_ID_PATTERN)]
    """The asset's id, as in telemetry readings and the InfluxDB ``asset`` tag."""
    site: Annotated[str, Field(pattern=SITE_PATTERN)]
    """The site it stands at, as in MQTT topics and the ``site`` tag."""
    customer: Text
    """The customer that owns or operates it."""
    tier: TierField
    """The customer's service tier: VIP, Gold or Regular."""
    model: Text
    """The device model, as the firmware profile names it (``CPV-150``)."""
    firmware: Annotated[str, Field(min_length=1, max_length=64)]
    """The firmware version running on it (``2.4``)."""
    profile: Annotated[str, Field(pattern=PROFILE_PATTERN)]
    """The firmware profile id (file stem in ``firmware_profiles/``); resolved from model and
    firmware at load when the file leaves it out and a profiles folder is given."""
    serial: Text
    """The manufacturer's serial number."""
    asset_class: Label
    """What kind of machine it is (``pump``, ``compressor``, ``spindle``): work-order policies
    (suggest or auto-create) are set per class."""
    team: Label
    """The maintenance team that services it: work-order budgets are per team."""
    criticality: CriticalityField
    """How much its failure hurts: low, medium, high or critical."""
    commissioned: dt.date
    """The date it went into service."""
    operating_hours: Hours | None = None
    """Operating hours when the record was last updated (``operating_hours_as_of``); live hours
    come from telemetry when the device reports them."""
    operating_hours_as_of: dt.date | None = None
    """The date ``operating_hours`` was read; required with it."""
    warranty_end: dt.date | None = None
    """The last day of the manufacturer's warranty, if any."""
    service_contract: Text | None = None
    """The service contract's id, if the customer has one."""
    location: Location | None = None
    """Latitude and longitude."""
    gateway: Annotated[str, Field(pattern=SITE_PATTERN)] | None = None
    """The gateway that reads it, when known (for "gateway offline" alerts)."""
    consumables: dict[Annotated[str, Field(pattern=LABEL_PATTERN)], ConsumableState] = Field(
        default_factory=dict
    )
    """Last replacement of each consumable, by the profile's consumable name."""

    @model_validator(mode="after")
    def _dates_consistent(self) -> Asset:
        if (self.operating_hours is None) != (self.operating_hours_as_of is None):
            raise ValueError("operating_hours and operating_hours_as_of go together")
        if (
            self.operating_hours_as_of is not None
            and self.operating_hours_as_of < self.commissioned
        ):
            raise ValueError(
                f"operating_hours_as_of ({self.operating_hours_as_of}) is before "
                f"commissioned ({self.commissioned})"
            )
        if self.warranty_end is not None and self.warranty_end < self.commissioned:
            raise ValueError(
                f"warranty_end ({self.warranty_end}) is before commissioned ({self.commissioned})"
            )
        for name, state in self.consumables.items():
            if state.replaced_on is not None and state.replaced_on < self.commissioned:
                raise ValueError(
                    f"consumables.{name}.replaced_on ({state.replaced_on}) is before "
                    f"commissioned ({self.commissioned})"
                )
        return self

    def warranty_active(self, on: dt.date) -> bool:
        """Whether the warranty covers work done on ``on`` (work is free rather than billable).

        Args:
            on: The day of the work.

        Returns:
            True up to and including `warranty_end`; False without a warranty.
        """
        return self.warranty_end is not None and on <= self.warranty_end
