"""Trajectories: what a simulated device's signals read at simulated time t (pure, no noise).

A trajectory is a deterministic function of simulated seconds. Values are constant within one
sample step (`sample_s`: a C-MAPSS cycle, an AI4I row, a compressor sample), which is also the
step at which the device adds noise. A trajectory knows its own failure (time, mode, fault code),
after which the device stays failed, and its consumable replacements, as `Event`s.

Sources:

- `CmapssTrajectory`: one engine of any C-MAPSS-format file (`cloud._cmapss`); its failure is its
  last cycle (RUL 0), one cycle lasting `cycle_s` simulated seconds.
- `Ai4iTrajectory`: a run of AI4I 2020 rows ending in a row with a labelled failure; the tool
  changes inside the run are replacements of the ``cutting_tool`` consumable.
- `FilterWearTrajectory`: a rotary screw compressor whose intake-filter pressure drop rises
  towards and past its replacement threshold and is reset by each replacement; optionally an
  element-overheating failure at a set time.
- `HydraulicTrajectory`: held-out load cycles of the UCI hydraulic rig (`models._hydraulic`),
  replayed as a hydraulic power unit whose cooler goes from full efficiency to reduced
  efficiency to close to total failure; its failure is the first cycle close to total failure.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Protocol

from cloud._cmapss import SENSORS, SETTINGS, read_cycles

if TYPE_CHECKING:
    import pandas as pd

Value = float | int | bool | str
"""An engineering value as the profile's signal publishes it (enum signals take their code)."""

CMAPSS_SIGNALS = SETTINGS + SENSORS


@dataclass(frozen=True, slots=True)
class Event:
    """Something the replay report needs to know happened at simulated time `t_s`."""

    t_s: float
    kind: Literal["failure", "consumable_replaced"]
    name: str
    """The failure mode or the consumable (names from the device's profile)."""
    fault_code: int | None = None
    detail: Mapping[str, Value] = field(default_factory=dict)


class Trajectory(Protocol):
    """What a simulated device serves, as a pure function of simulated time."""

    @property
    def sample_s(self) -> float:
        """Simulated seconds during which values stay the same (and noise is drawn once)."""
        ...

    @property
    def failure(self) -> Event | None:
        """The failure (kind ``failure``), after which the device stays failed; None if none."""
        ...

    @property
    def events(self) -> tuple[Event, ...]:
        """Every failure and replacement, sorted by time."""
        ...

    @property
    def noise(self) -> Mapping[str, float]:
        """Standard deviation of the Gaussian noise per signal, in the signal's unit."""
        ...

    def values_at(self, t_s: float) -> dict[str, Value]:
        """Engineering values of the profile's signals at `t_s` (>= 0); unlisted signals read 0."""
        ...


def _step(t_s: float, sample_s: float) -> int:
    return max(0, math.floor(t_s / sample_s))


# ---------------------------------------------------------------- C-MAPSS engines


def read_cmapss_units(path: Path) -> dict[int, list[dict[str, float]]]:
    """Every engine of a C-MAPSS-format file: unit number to its rows (cycle order).

    Raises:
        ValueError: A malformed row (names the file and line) or a unit whose cycles are not
            1, 2, 3, ... in order.
    """
    units: dict[int, list[dict[str, float]]] = {}
    for row in read_cycles(path):
        rows = units.setdefault(row.unit, [])
        if row.cycle != len(rows) + 1:
            raise ValueError(
                f"{path}: unit {row.unit} cycle {row.cycle} must follow cycle {len(rows)}"
            )
        rows.append(row.values)
    return units


@dataclass(frozen=True, slots=True)
class CmapssTrajectory:
    """One C-MAPSS engine replayed from cycle `first_cycle` to its last (failure) cycle.

    Args:
        rows: The engine's rows from cycle 1 (settings and sensors by name).
        cycle_s: Simulated seconds per operating cycle.
        first_cycle: The first cycle to replay (1: the whole life); earlier cycles are history.
        fault_code: The code the unit reports once failed (the profile's ``hpc_degradation``).
        failure_mode: The profile's failure mode of this data set.
        noise_sd: Extra noise per signal (C-MAPSS sensors are noisy already: default none).
    """

    rows: Sequence[Mapping[str, float]]
    cycle_s: float
    first_cycle: int = 1
    fault_code: int = 11
    failure_mode: str = "hpc_degradation"
    noise_sd: Mapping[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not 1 <= self.first_cycle <= len(self.rows):
            raise ValueError(
                f"first_cycle must be 1..{len(self.rows)}. Got {self.first_cycle!r} instead."
            )

    @property
    def cycles(self) -> int:
        """Cycles replayed (the last one is the failure)."""
        return len(self.rows) - self.first_cycle + 1

    @property
    def sample_s(self) -> float:
        return self.cycle_s

    @property
    def failure(self) -> Event:
        last = len(self.rows)
        # RUL is 0 at the last cycle (the C-MAPSS labelling): the engine fails as that cycle starts.
        return Event(
            (self.cycles - 1) * self.cycle_s,
            "failure",
            self.failure_mode,
            self.fault_code,
            {"cycle": last},
        )

    @property
    def events(self) -> tuple[Event, ...]:
        return (self.failure,)

    @property
    def noise(self) -> Mapping[str, float]:
        return self.noise_sd

    def cycle_at(self, t_s: float) -> int:
        """The C-MAPSS cycle number served at `t_s` (the last one once failed)."""
        return min(self.first_cycle + _step(t_s, self.cycle_s), len(self.rows))

    def values_at(self, t_s: float) -> dict[str, Value]:
        cycle = self.cycle_at(t_s)
        failed = t_s >= self.failure.t_s
        values: dict[str, Value] = dict(self.rows[cycle - 1])
        values["engine_state"] = 2 if failed else 1
        values["fault_code"] = self.fault_code if failed else 0
        values["cycle_count"] = cycle
        return values


# ---------------------------------------------------------------- AI4I milling machines

AI4I_MODES: tuple[tuple[str, str, int], ...] = (
    ("TWF", "tool_wear_failure", 1),
    ("HDF", "heat_dissipation_failure", 2),
    ("PWF", "power_failure", 3),
    ("OSF", "overstrain_failure", 4),
)
"""AI4I failure-mode column, the MillRite profile's failure mode, and its fault code."""
_QUALITY = {"L": 0, "M": 1, "H": 2}
_RATED_POWER_W = 12_000.0


def read_ai4i(path: Path) -> list[dict[str, str]]:
    """The AI4I 2020 rows as dicts of text (the file starts with a UTF-8 BOM)."""
    with path.open(encoding="utf-8-sig", newline="") as fh:
        return list(csv.DictReader(fh))


def ai4i_row_failed(row: Mapping[str, str]) -> bool:
    """The machine failed on this row: ``Machine failure`` or any mode flag (RNF included)."""
    return row["Machine failure"] == "1" or any(
        row.get(col) == "1" for col in ("TWF", "HDF", "PWF", "OSF", "RNF")
    )


def ai4i_failure_rows(rows: Sequence[Mapping[str, str]]) -> list[int]:
    """Indexes of the rows with a machine failure of a known mode (TWF, HDF, PWF or OSF)."""
    return [
        i
        for i, row in enumerate(rows)
        if row["Machine failure"] == "1" and any(row[col] == "1" for col, _, _ in AI4I_MODES)
    ]


@dataclass(frozen=True, slots=True)
class Ai4iTrajectory:
    """AI4I rows `rows[start : failure_row + 1]` replayed one per `row_s`; the last one fails.

    The replay starts after the machine's previous failure of any kind (`previous_failure_row`):
    a failure inside the replayed rows would be served as a normal row and left out of the ground
    truth, and a work order it rightly caused would be counted false.

    Args:
        rows: All AI4I rows (`read_ai4i`).
        failure_row: Index of a row with a labelled failure (`ai4i_failure_rows`).
        history_rows: How many rows lead up to it, at most.
        row_s: Simulated seconds per row.
        noise_sd: Noise per signal.
        tool_limit_min: The ``cutting_tool`` consumable's replacement threshold (tool wear,
            min): each tool change's detail says when its tool reached it (``limit_t_sim_s``).
    """

    rows: Sequence[Mapping[str, str]]
    failure_row: int
    history_rows: int
    row_s: float
    noise_sd: Mapping[str, float] = field(default_factory=dict)
    tool_limit_min: float | None = None

    @property
    def previous_failure_row(self) -> int:
        """Index of the last row before `failure_row` with a failure of any kind; -1 if none."""
        return next(
            (i for i in range(self.failure_row - 1, -1, -1) if ai4i_row_failed(self.rows[i])),
            -1,
        )

    @property
    def start_row(self) -> int:
        """Index of the first row replayed: after the previous failure, at most `history_rows`."""
        return max(0, self.failure_row - self.history_rows, self.previous_failure_row + 1)

    @property
    def sample_s(self) -> float:
        return self.row_s

    @property
    def failure(self) -> Event:
        row = self.rows[self.failure_row]
        column, mode, code = next((c, m, k) for c, m, k in AI4I_MODES if row[c] == "1")
        return Event(
            (self.failure_row - self.start_row) * self.row_s,
            "failure",
            mode,
            code,
            {"udi": int(row["UDI"]), "label": column},
        )

    def _wear(self, i: int) -> int:
        return int(self.rows[i]["Tool wear [min]"])

    @property
    def events(self) -> tuple[Event, ...]:
        replaced: list[Event] = []
        since = self.start_row
        for i in range(self.start_row + 1, self.failure_row + 1):
            if self._wear(i) >= self._wear(i - 1):
                continue
            detail: dict[str, Value] = {"wear_before_min": self._wear(i - 1)}
            limit = self.tool_limit_min
            reached = next(
                (j for j in range(since, i) if limit is not None and self._wear(j) >= limit), None
            )
            if reached is not None:
                detail["limit_t_sim_s"] = (reached - self.start_row) * self.row_s
            replaced.append(
                Event(
                    (i - self.start_row) * self.row_s,
                    "consumable_replaced",
                    "cutting_tool",
                    None,
                    detail,
                )
            )
            since = i
        return (*replaced, self.failure)

    @property
    def noise(self) -> Mapping[str, float]:
        return self.noise_sd

    def values_at(self, t_s: float) -> dict[str, Value]:
        index = min(self.start_row + _step(t_s, self.row_s), self.failure_row)
        row = self.rows[index]
        failed = t_s >= self.failure.t_s
        speed = 0 if failed else int(row["Rotational speed [rpm]"])
        torque = 0.0 if failed else float(row["Torque [Nm]"])
        power = torque * speed * 2 * math.pi / 60
        hours = 8000.0 + t_s / 3600.0
        return {
            "spindle_speed_rpm": speed,
            "spindle_torque_nm": torque,
            "spindle_power_w": power,
            "spindle_running": not failed,
            "at_speed": not failed,
            "gear_stage": 2,
            "fault_code": (self.failure.fault_code or 0) if failed else 0,
            "door_closed": True,
            "tool_clamped": True,
            "emergency_stop_ok": True,
            "air_temp_k": float(row["Air temperature [K]"]),
            "process_temp_k": float(row["Process temperature [K]"]),
            "tool_wear_min": int(row["Tool wear [min]"]),
            "tool_number": 7,
            "spindle_load_pct": 100.0 * power / _RATED_POWER_W,
            "spindle_override_pct": 100,
            "product_quality": _QUALITY.get(row["Type"], 0),
            "coolant_pump_on": not failed,
            "spindle_enable": not failed,
            "spindle_run_hours_h": hours,
            "spindle_revolutions": round(hours * 60 * 1500),
            "program_name": "O1234 HOUSING",
        }


# ---------------------------------------------------------------- compressor filter wear


@dataclass(frozen=True, slots=True)
class FilterWearTrajectory:
    """A screw compressor whose intake-filter pressure drop rises and is reset by replacements.

    The pressure drop rises as ``clean + (threshold - clean) * (age / life_s) ** 1.5`` (a filter
    loads slowly, then faster as the cake closes), and the filter is replaced once it reads
    `overshoot_bar` past the threshold, the way a technician arrives after the warning.

    Args:
        sample_s: Simulated seconds per sample.
        threshold_bar: The profile's replacement threshold (``air_filter`` consumable).
        life_s: Simulated seconds from a new filter to the threshold.
        clean_bar: Pressure drop of a new filter.
        overshoot_bar: How far past the threshold the filter is replaced.
        failure_at_s: When the element overheats and trips (None: never).
        failure_ramp_s: How long the element temperature climbs before the trip.
        noise_sd: Noise per signal.
    """

    sample_s: float
    threshold_bar: float
    life_s: float
    clean_bar: float = 0.015
    overshoot_bar: float = 0.004
    failure_at_s: float | None = None
    failure_ramp_s: float = 0.0
    noise_sd: Mapping[str, float] = field(default_factory=dict)

    @property
    def replace_age_s(self) -> float:
        """Filter age at which it is replaced."""
        rise = (self.threshold_bar + self.overshoot_bar - self.clean_bar) / (
            self.threshold_bar - self.clean_bar
        )
        return float(self.life_s * rise ** (1 / 1.5))

    def filter_dp_bar(self, t_s: float) -> float:
        """Pressure drop across the filter at `t_s` (no noise), sampled per step."""
        t = _step(t_s, self.sample_s) * self.sample_s
        age = t % self.replace_age_s
        wear = float((age / self.life_s) ** 1.5)
        return self.clean_bar + (self.threshold_bar - self.clean_bar) * wear

    @property
    def failure(self) -> Event | None:
        if self.failure_at_s is None:
            return None
        return Event(self.failure_at_s, "failure", "element_overheating", 101)

    def limit_reached_s(self, since_s: float, until_s: float) -> float | None:
        """The first sample time in ``[since_s, until_s)`` whose pressure drop reaches the limit."""
        step = math.ceil(since_s / self.sample_s)
        while (t := step * self.sample_s) < until_s:
            if self.filter_dp_bar(t) >= self.threshold_bar:
                return t
            step += 1
        return None

    def replacements_until(self, horizon_s: float) -> tuple[Event, ...]:
        """Filter replacements up to `horizon_s` (aligned to sample steps).

        Each one's detail holds the pressure drop before it (``dp_before_bar``) and when that
        filter reached its replacement threshold (``limit_t_sim_s``, simulated s): the time a
        consumable work order must come before.
        """
        out: list[Event] = []
        k = 1
        previous = 0.0
        while (t := math.ceil(k * self.replace_age_s / self.sample_s) * self.sample_s) < horizon_s:
            detail: dict[str, Value] = {"dp_before_bar": self.filter_dp_bar(t - self.sample_s)}
            limit = self.limit_reached_s(previous, t)
            if limit is not None:
                detail["limit_t_sim_s"] = limit
            out.append(Event(t, "consumable_replaced", "air_filter", None, detail))
            previous = t
            k += 1
        return tuple(out)

    @property
    def events(self) -> tuple[Event, ...]:
        horizon = self.failure_at_s if self.failure_at_s is not None else 10 * 365 * 86400.0
        failure = () if self.failure is None else (self.failure,)
        return (*self.replacements_until(horizon), *failure)

    @property
    def noise(self) -> Mapping[str, float]:
        return self.noise_sd

    def values_at(self, t_s: float) -> dict[str, Value]:
        failed = self.failure_at_s is not None and t_s >= self.failure_at_s
        element_c = 86.0
        if self.failure_at_s is not None and self.failure_ramp_s > 0:
            into = t_s - (self.failure_at_s - self.failure_ramp_s)
            element_c += 26.0 * min(1.0, max(0.0, into / self.failure_ramp_s)) ** 2
        hours = 12_000 + int(t_s // 3600)
        dp = self.filter_dp_bar(t_s)
        return {
            "discharge_pressure_bar": 0.0 if failed else 7.2,
            "motor_current_a": 0.0 if failed else 118.0 + 200.0 * (dp - self.clean_bar),
            "compressor_state": 5 if failed else 2,
            "fault_code": 101 if failed else 0,
            "air_filter_warning": dp >= self.threshold_bar,
            "separator_warning": False,
            "service_due": False,
            "emergency_stop_ok": True,
            "motor_overload_ok": True,
            "element_outlet_temp_c": element_c,
            "oil_temp_c": element_c - 6.0,
            "ambient_temp_c": 21.0,
            "air_filter_dp_bar": dp,
            "separator_dp_bar": 0.25,
            "oil_filter_dp_bar": 0.4,
            "run_hours_h": hours,
            "load_hours_h": int(hours * 0.8),
            "motor_starts": 3_400 + int(t_s // 86_400) * 4,
            "service_hours_remaining_h": 2_000 - int(t_s // 3600) % 4000,
            "unload_pressure_bar": 7.5,
            "load_pressure_bar": 6.8,
        }


# ---------------------------------------------------------------- hydraulic power unit


@dataclass(frozen=True, slots=True)
class RigCycle:
    """One load cycle of the UCI hydraulic rig: the mean of each sensor and the conditions.

    Attributes:
        rig_cycle: The cycle's number in the recording (the row of ``profile.txt``, from 0, as
            `models._hydraulic.load_hydraulic` numbers them).
        values: The FluidSense HCM-10 signals (`models._hydraulic.SIGNALS`), per-cycle means.
        cooler_pct: Cooler condition: 100 full efficiency, 20 reduced, 3 close to total failure.
        valve_pct: Valve condition (100 optimal .. 73 close to total failure).
        pump_leakage: Internal pump leakage (0 none, 1 weak, 2 severe).
        accumulator_bar: Accumulator pressure (130 optimal .. 90 close to total failure).
        stable: Whether the rig's conditions were stable in this cycle (its ``stable`` flag).
    """

    rig_cycle: int
    values: Mapping[str, float]
    cooler_pct: float
    valve_pct: float
    pump_leakage: int
    accumulator_bar: float
    stable: bool


def read_hydraulic_replays(
    folder: Path, per_stage: int | None, *, units: int
) -> list[tuple[RigCycle, ...]]:
    """Load the UCI hydraulic data set and pick each unit's replay (`hydraulic_replays`).

    Raises:
        ValueError: A file of the data set is missing or malformed (the message names it).
    """
    # pandas and numpy (and the models package) only for a fleet with hydraulic units.
    from models import load_hydraulic  # noqa: PLC0415

    return hydraulic_replays(load_hydraulic(folder), per_stage, units=units)


def hydraulic_replays(
    frame: pd.DataFrame, per_stage: int | None, *, units: int
) -> list[tuple[RigCycle, ...]]:
    """Held-out rig cycles replaying a degrading cooler, one replay per unit.

    Unit i (from 0) replays ``models.cooler_replay(frame, per_stage, offset=i)``:
    `per_stage` held-out cycles at full cooler efficiency, as many at reduced efficiency, then at
    close to total failure (None: all held-out cycles), spread over each stage's valve, pump and
    accumulator settings; the offset shifts the picks, so units replay other cycles of the stages.

    Args:
        frame: The rig's cycles (`models.load_hydraulic`).
        per_stage: Cycles per cooler stage (None: every held-out cycle).
        units: How many replays.
    """
    from models import HYDRAULIC_SIGNALS, cooler_replay  # noqa: PLC0415 - as above

    names = list(HYDRAULIC_SIGNALS.values())
    replays = []
    for unit in range(units):
        replay = cooler_replay(frame, per_stage, offset=unit)
        replays.append(
            tuple(
                RigCycle(
                    rig_cycle=cycle,
                    values={name: float(row[name]) for name in names},
                    cooler_pct=float(row["cooler_pct"]),
                    valve_pct=float(row["valve_pct"]),
                    pump_leakage=int(row["pump_leakage"]),
                    accumulator_bar=float(row["accumulator_bar"]),
                    stable=bool(row["stable"]),
                )
                for cycle, row in zip(
                    replay.index.astype(int).tolist(), replay.to_dict("records"), strict=True
                )
            )
        )
    return replays


@dataclass(frozen=True, slots=True)
class HydraulicTrajectory:
    """A hydraulic power unit replaying rig cycles; its cooler fails at the first cycle at 3 %.

    Row k of `cycles` is served during simulated ``[k * cycle_s, (k + 1) * cycle_s)``, with
    ``cycle_count`` k + 1 (the cycles completed so far: the scorer can order and de-duplicate by
    it). The failure is at the start of the first row whose cooler is at `failure_cooler_pct`:
    from then on ``unit_state`` is failed and ``fault_code`` set, the remaining rows (the cooler
    close to total failure) are still served, and after the last row the last row stays.

    The rows are measured means of real load cycles, with their own variation: no noise is added
    by default (as for C-MAPSS).

    Args:
        cycles: The rig's cycles in replay order (`read_hydraulic_replays`).
        cycle_s: Simulated seconds one recorded load cycle stands for.
        failure_cooler_pct: The cooler condition that is the failure (close to total failure).
        fault_code: The code the unit reports once failed (the profile's ``cooler_failure``).
        failure_mode: The profile's failure mode of this data set.
        noise_sd: Extra noise per signal (default none).
    """

    cycles: Sequence[RigCycle]
    cycle_s: float
    failure_cooler_pct: float = 3.0
    fault_code: int = 11
    failure_mode: str = "cooler_failure"
    noise_sd: Mapping[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not any(c.cooler_pct == self.failure_cooler_pct for c in self.cycles):
            raise ValueError(
                f"cycles must reach the cooler condition {self.failure_cooler_pct:g} % "
                f"(the failure). Got {sorted({c.cooler_pct for c in self.cycles})!r} instead."
            )

    @property
    def failure_index(self) -> int:
        """The row at which the cooler fails: the first one at `failure_cooler_pct`."""
        return next(k for k, c in enumerate(self.cycles) if c.cooler_pct == self.failure_cooler_pct)

    @property
    def sample_s(self) -> float:
        return self.cycle_s

    @property
    def failure(self) -> Event:
        k = self.failure_index
        cycle = self.cycles[k]
        detail: dict[str, Value] = {
            "rig_cycle": cycle.rig_cycle,
            "cycle_count": k + 1,
            "cooler_pct": cycle.cooler_pct,
            "valve_pct": cycle.valve_pct,
            "pump_leakage": cycle.pump_leakage,
            "accumulator_bar": cycle.accumulator_bar,
            "stable": cycle.stable,
        }
        # When the cooler left full efficiency: a work order from then on is a warning, not early.
        first = self.cycles[0].cooler_pct
        reduced = next((j for j, c in enumerate(self.cycles) if c.cooler_pct != first), k)
        if reduced < k:
            detail["reduced_t_sim_s"] = reduced * self.cycle_s
            detail["reduced_cooler_pct"] = self.cycles[reduced].cooler_pct
        return Event(k * self.cycle_s, "failure", self.failure_mode, self.fault_code, detail)

    @property
    def events(self) -> tuple[Event, ...]:
        return (self.failure,)

    @property
    def noise(self) -> Mapping[str, float]:
        return self.noise_sd

    def index_at(self, t_s: float) -> int:
        """The row of `cycles` served at `t_s` (the last one after the replay ends)."""
        return min(_step(t_s, self.cycle_s), len(self.cycles) - 1)

    def values_at(self, t_s: float) -> dict[str, Value]:
        k = self.index_at(t_s)
        failed = t_s >= self.failure_index * self.cycle_s
        values: dict[str, Value] = dict(self.cycles[k].values)
        values["unit_state"] = 2 if failed else 1
        values["fault_code"] = self.fault_code if failed else 0
        values["cycle_count"] = k + 1
        return values
