"""The period a report covers: ``--from``/``--to`` or a calendar quarter (``2026Q3``), in UTC."""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from typing import Final

from cloud._args import parse_time

QUARTER_PATTERN: Final = r"^(?P<year>[0-9]{4})-?Q(?P<q>[1-4])$"


class PeriodError(ValueError):
    """A period that cannot be used; the message names the value and the rule."""


@dataclasses.dataclass(frozen=True, slots=True)
class Period:
    """A half-open time range ``[start, end)``, UTC.

    Attributes:
        start: The first instant covered.
        end: The first instant no longer covered.
        label: How reports name it (``2026 Q3``, or ``2026-07-01 - 2026-09-30``).
    """

    start: dt.datetime
    end: dt.datetime
    label: str

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise PeriodError("a period's start and end must carry a time zone")
        if self.end <= self.start:
            raise PeriodError(
                f"the period must end after it starts. Got {self.start.isoformat()} to "
                f"{self.end.isoformat()} instead."
            )

    @property
    def hours(self) -> float:
        """The period's length in hours."""
        return (self.end - self.start).total_seconds() / 3600.0

    def __contains__(self, when: object) -> bool:
        return isinstance(when, dt.datetime) and self.start <= when < self.end

    @classmethod
    def quarter(cls, text: str) -> Period:
        """A calendar quarter, ``2026Q3`` or ``2026-Q3`` (July 1 to October 1, UTC).

        Raises:
            PeriodError: Not a quarter.
        """
        match = re.fullmatch(QUARTER_PATTERN, text.strip(), flags=re.IGNORECASE)
        if match is None:
            raise PeriodError(f"a quarter looks like 2026Q3. Got {text!r} instead.")
        year, q = int(match["year"]), int(match["q"])
        start = dt.datetime(year, 3 * q - 2, 1, tzinfo=dt.UTC)
        end = (
            dt.datetime(year + 1, 1, 1, tzinfo=dt.UTC)
            if q == 4  # noqa: PLR2004 - the fourth quarter ends the year
            else dt.datetime(year, 3 * q + 1, 1, tzinfo=dt.UTC)
        )
        return cls(start, end, f"{year} Q{q}")

    @classmethod
    def between(cls, start: str | dt.datetime, end: str | dt.datetime) -> Period:
        """``[start, end)``; a date alone means its midnight, a time without a zone is UTC.

        Raises:
            PeriodError: A value that is not an ISO 8601 date or time, or end before start.
        """
        s, e = _instant(start, "from"), _instant(end, "to")
        last = e - dt.timedelta(microseconds=1)
        return cls(s, e, f"{s.date().isoformat()} - {last.date().isoformat()}")


def _instant(value: str | dt.datetime, name: str) -> dt.datetime:
    if isinstance(value, dt.datetime):
        when = value
    else:
        try:
            when = parse_time(value)
        except ValueError as exc:
            raise PeriodError(f"{name}: {exc}.") from None
    return when.replace(tzinfo=dt.UTC) if when.tzinfo is None else when.astimezone(dt.UTC)
