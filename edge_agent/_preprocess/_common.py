"""Helpers every pre-processing step shares: value checks, exact sums, config validation."""

from __future__ import annotations

import math
from collections.abc import Collection
from dataclasses import dataclass
from typing import TypeGuard

from edge_agent._model import Quality, Reading, Value
from prognos_contract import MAX_INT, MIN_INT

Key = tuple[str, str]
"""A time series: (asset, signal)."""


def is_number(value: object) -> TypeGuard[int | float]:
    """Whether `value` is an int or a float (a bool is not a number here)."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def same_value(a: Value, b: Value) -> bool:
    """Whether two values are equal, without Python's `True == 1`: a bool only equals a bool."""
    if is_number(a) and is_number(b):
        return a == b
    return type(a) is type(b) and a == b


def checked(reading: Reading) -> Reading:
    """The reading, or a bad one if its good value cannot be carried by the contract (Rule 7).

    Returns:
        `reading` itself, or a bad reading with reason `non_finite` (a NaN or an infinity),
        `out_of_range` (an int outside int64) or `no_value` (a good reading without a value).
    """
    if reading.quality is not Quality.GOOD:
        return reading
    value = reading.value
    reason: str | None = None
    if value is None:
        reason = "no_value"
    elif isinstance(value, float) and not math.isfinite(value):
        reason = "non_finite"
    elif isinstance(value, int) and not isinstance(value, bool) and not MIN_INT <= value <= MAX_INT:
        reason = "out_of_range"
    if reason is None:
        return reading
    return Reading.bad(reading.asset, reading.signal, reading.ts_ms, reason)


@dataclass(slots=True)
class CompensatedSum:
    """A running float sum with Neumaier's compensation term.

    A usage total grows for years (1e9 units) while each poll adds a little (1e-6 units); a plain
    float sum would round those increments away. The compensation term carries the lost low-order
    bits, so the total stays within a few ulps of the exact sum of its increments.
    """

    total: float = 0.0
    compensation: float = 0.0

    def add(self, x: float) -> None:
        """Add `x` to the sum."""
        t = self.total + x
        if abs(self.total) >= abs(x):
            self.compensation += (self.total - t) + x
        else:
            self.compensation += (x - t) + self.total
        self.total = t

    @property
    def value(self) -> float:
        """The sum."""
        return self.total + self.compensation


def require_finite(name: str, value: float, *, minimum: float | None = None) -> None:
    """Raise `ValueError` unless `value` is a finite number, at least `minimum` if given."""
    if (
        not is_number(value)
        or not math.isfinite(value)
        or (minimum is not None and value < minimum)
    ):
        bound = "" if minimum is None else f" >= {minimum:g}"
        raise ValueError(f"{name} must be a finite number{bound}. Got {value!r} instead.")


def require_positive(name: str, value: float) -> None:
    """Raise `ValueError` unless `value` is a finite number greater than zero."""
    if not is_number(value) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a finite number > 0. Got {value!r} instead.")


def seconds_to_ms(name: str, seconds: float) -> int:
    """`seconds` as whole milliseconds, which must be at least 1.

    Raises:
        ValueError: `seconds` is not finite, or rounds to less than 1 ms.
    """
    require_positive(name, seconds)
    ms = round(seconds * 1000)
    if ms < 1:
        raise ValueError(f"{name} must be at least 0.001 s. Got {seconds!r} instead.")
    return ms


def name_set(name: str, names: Collection[str]) -> frozenset[str]:
    """`names` as a frozenset, refusing a bare string (which is a collection of its letters).

    Raises:
        TypeError: `names` is a string.
    """
    if isinstance(names, str):
        raise TypeError(f"{name} must be a list of names, not the string {names!r}.")
    return frozenset(names)
