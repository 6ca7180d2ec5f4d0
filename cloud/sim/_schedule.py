"""Seeded schedules of time windows: sensor dropouts, Modbus exceptions, offline periods (pure).

A schedule is drawn once from a seed and is then a plain sorted tuple of `Window`s, so "is the
device offline at t?" is a pure lookup and the same seed always gives the same plant.
"""

from __future__ import annotations

import bisect
import random
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True, order=True)
class Window:
    """A half-open interval `[start_s, end_s)` of simulated seconds."""

    start_s: float
    end_s: float

    def __post_init__(self) -> None:
        if not self.end_s > self.start_s:
            raise ValueError(f"a window must end after it starts. Got {self!r} instead.")

    def contains(self, t_s: float) -> bool:
        """Whether simulated time `t_s` falls inside the window."""
        return self.start_s <= t_s < self.end_s


def random_windows(
    rng: random.Random, *, horizon_s: float, mean_gap_s: float, mean_length_s: float
) -> tuple[Window, ...]:
    """Windows over `[0, horizon_s)`: exponential gaps and lengths (a Poisson process), no overlap.

    Args:
        rng: The seeded generator to draw from (consumed).
        horizon_s: Simulated seconds to cover.
        mean_gap_s: Mean time between the end of one window and the start of the next.
        mean_length_s: Mean window length.

    Returns:
        The windows, sorted, each at least one second long.
    """
    if mean_gap_s <= 0 or mean_length_s <= 0:
        raise ValueError("mean_gap_s and mean_length_s must be greater than 0")
    windows: list[Window] = []
    t = rng.expovariate(1.0 / mean_gap_s)
    while t < horizon_s:
        length = max(1.0, rng.expovariate(1.0 / mean_length_s))
        windows.append(Window(t, t + length))
        t += length + rng.expovariate(1.0 / mean_gap_s)
    return tuple(windows)


def periodic_windows(
    *, horizon_s: float, every_s: float, length_s: float, first_s: float | None = None
) -> tuple[Window, ...]:
    """Windows of `length_s` every `every_s` (the first at `first_s`, default `every_s`)."""
    if every_s <= length_s or length_s <= 0:
        raise ValueError("every_s must exceed length_s, and length_s must be greater than 0")
    start = every_s if first_s is None else first_s
    windows: list[Window] = []
    while start < horizon_s:
        windows.append(Window(start, start + length_s))
        start += every_s
    return tuple(windows)


def active(windows: Sequence[Window], t_s: float) -> Window | None:
    """The window of the sorted, non-overlapping `windows` that contains `t_s`, if any."""
    index = bisect.bisect_right(windows, Window(t_s, t_s + 1.0)) - 1
    for candidate in windows[max(index, 0) : index + 2]:
        if candidate.contains(t_s):
            return candidate
    return None
