"""One simulated device, pure: a trajectory plus noise, dropouts, exceptions and offline periods.

`SimDevice.state_at(t_s)` says everything the device does at simulated time `t_s`: the value of
every signal (None while that signal's sensor has dropped out), whether it answers with a Modbus
exception, whether it is offline (its server not listening), whether it has failed. The I/O shell
(`cloud.sim._server`) only asks this and serves the result.

Rules:
1. The same device, seed and `t_s` always give the same state, whatever was asked before: noise
   is drawn from a generator seeded by (seed, asset, sample step), never from shared state.
2. Values are constant within one sample step of the trajectory.
3. After its failure time a device stays failed (the trajectory keeps the fault code set).
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, field

from cloud.sim._registers import RegisterImage, Tables
from cloud.sim._schedule import Window, active
from cloud.sim._trajectory import Event, Trajectory, Value

EXCEPTION_CODE = 4
"""What a device answers while it has an internal fault: Modbus exception 4, device failure."""


@dataclass(frozen=True, slots=True)
class FaultSchedule:
    """When a device misbehaves, in simulated seconds.

    Attributes:
        dropouts: Per signal, windows in which it serves its invalid value.
        exceptions: Windows in which every request gets Modbus exception 4.
        offline: Windows in which the device does not listen at all.
    """

    dropouts: Mapping[str, tuple[Window, ...]] = field(default_factory=dict)
    exceptions: tuple[Window, ...] = ()
    offline: tuple[Window, ...] = ()


@dataclass(frozen=True, slots=True)
class DeviceState:
    """What a device does at one simulated time."""

    t_s: float
    values: Mapping[str, Value | None]
    """Engineering values; None for a signal whose sensor has dropped out."""
    online: bool
    exception_code: int | None
    failed: bool


@dataclass(frozen=True, slots=True)
class SimDevice:
    """A simulated device: what it serves as a pure function of simulated time.

    Args:
        name: Device name (the edge config's ``name``).
        asset: Asset id its readings carry.
        profile_id: The firmware profile's file stem.
        image: The profile's register image.
        trajectory: What its signals read over time.
        faults: Its dropouts, exception and offline windows.
        seed: Seed of its noise.
        unit: Modbus unit id.
    """

    name: str
    asset: str
    profile_id: str
    image: RegisterImage
    trajectory: Trajectory
    faults: FaultSchedule = FaultSchedule()
    seed: int = 0
    unit: int = 1

    @property
    def failure(self) -> Event | None:
        """The device's failure, if its trajectory has one."""
        return self.trajectory.failure

    def online_at(self, t_s: float) -> bool:
        """Whether the device listens at `t_s`."""
        return active(self.faults.offline, t_s) is None

    def true_values_at(self, t_s: float) -> dict[str, Value]:
        """Values with noise, before dropouts: what the sensors would read."""
        values = self.trajectory.values_at(t_s)
        noise = self.trajectory.noise
        if noise:
            step = int(max(t_s, 0.0) // self.trajectory.sample_s)
            rng = random.Random(f"{self.seed}|{self.asset}|{step}")  # noqa: S311 - simulation
            for name in sorted(noise):
                draw = rng.gauss(0.0, noise[name])
                current = values.get(name)
                if isinstance(current, float):
                    values[name] = current + draw
        return values

    def state_at(self, t_s: float) -> DeviceState:
        """Everything the device does at simulated time `t_s`."""
        values: dict[str, Value | None] = dict(self.true_values_at(t_s))
        for name, windows in self.faults.dropouts.items():
            if name in values and active(windows, t_s) is not None:
                values[name] = None
        failure = self.failure
        return DeviceState(
            t_s=t_s,
            values=values,
            online=self.online_at(t_s),
            exception_code=EXCEPTION_CODE if active(self.faults.exceptions, t_s) else None,
            failed=failure is not None and t_s >= failure.t_s,
        )

    def tables_at(self, t_s: float) -> tuple[DeviceState, Tables]:
        """The state at `t_s` and the Modbus tables it serves."""
        state = self.state_at(t_s)
        return state, self.image.encode(state.values)
