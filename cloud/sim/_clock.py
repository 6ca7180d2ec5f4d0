"""Simulated time: a pure mapping between wall-clock and simulated time (no clock is read here).

Simulated time `t_s` is seconds since the start of the simulation; at wall time `wall_start_ms` it
is 0 and it runs `speed` times faster than the wall clock. Absolute simulated time in epoch
milliseconds is `sim_epoch_ms + t_s * 1000` (by default the epoch is the wall start, so simulated
and wall timestamps agree at the start and drift apart at `speed`).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class SimClock:
    """Maps wall-clock milliseconds to simulated seconds and back.

    Args:
        wall_start_ms: Wall-clock epoch milliseconds at which simulated time is 0.
        speed: Simulated seconds per wall-clock second (3600: one simulated hour per second).
        sim_epoch_ms: Epoch milliseconds that simulated time 0 stands for (default: the wall start).
    """

    wall_start_ms: int
    speed: float
    sim_epoch_ms: int | None = None

    def __post_init__(self) -> None:
        if not self.speed > 0:
            raise ValueError(f"speed must be greater than 0. Got {self.speed!r} instead.")

    @property
    def epoch_ms(self) -> int:
        """Epoch milliseconds of simulated time 0."""
        return self.wall_start_ms if self.sim_epoch_ms is None else self.sim_epoch_ms

    def sim_s(self, wall_ms: float) -> float:
        """Simulated seconds at wall-clock time `wall_ms` (negative before the start)."""
        return (wall_ms - self.wall_start_ms) / 1000.0 * self.speed

    def wall_ms(self, sim_s: float) -> int:
        """Wall-clock epoch milliseconds at which simulated time reaches `sim_s`."""
        return self.wall_start_ms + round(sim_s / self.speed * 1000.0)

    def sim_epoch_ms_at(self, sim_s: float) -> int:
        """Simulated time `sim_s` as absolute epoch milliseconds."""
        return self.epoch_ms + round(sim_s * 1000.0)
