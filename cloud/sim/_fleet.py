"""The fleet config (`config/sim.example.yaml`) and the builder of the fleet from it.

One typed model, validated at load, and a pure builder that turns it into `SimDevice`s with their
asset records.

Errors name the file, the key, the rule and the value (STYLE.md 4)::

    config/sim.yaml: engines.cycle_s must be greater than 0. Got -1 instead.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from cloud.sim._device import FaultSchedule, SimDevice
from cloud.sim._registers import RegisterImage
from cloud.sim._schedule import Window, periodic_windows, random_windows
from cloud.sim._trajectory import (
    Ai4iTrajectory,
    CmapssTrajectory,
    FilterWearTrajectory,
    HydraulicTrajectory,
    Trajectory,
    ai4i_failure_rows,
    ai4i_row_failed,
    read_ai4i,
    read_cmapss_units,
    read_hydraulic_replays,
)
from edge_agent._profile import Profile, load_profile

ROOT = Path(__file__).resolve().parents[2]
PROFILES_DIR = ROOT / "firmware_profiles"
DATASETS = ROOT.parent / "shared" / "datasets"
NAME = r"^[a-z0-9][a-z0-9_-]{0,63}$"
TURBOFAN_PROFILE = "turbomon_tm21_1.0"
MILL_PROFILE = "millrite_spx12_5.1"
COMPRESSOR_PROFILE = "airtek_sc75_4.2"
HYDRAULIC_PROFILE = "fluidsense_hcm10_1.0"

Name = Annotated[str, Field(pattern=NAME)]
Positive = Annotated[float, Field(gt=0, allow_inf_nan=False)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AssetDefaults(_Strict):
    """Asset-record fields every device of a group gets (DESIGN.md "Asset records")."""

    site: Name | None = Field(default=None, description="Site; omitted: the top-level `site`.")
    customer: str = Field(default="Prognos Demo Customer", min_length=1, max_length=200)
    tier: Literal["VIP", "Gold", "Regular"] = Field(default="Regular")
    criticality: Literal["low", "medium", "high", "critical"] = Field(default="medium")
    team: Name = Field(default="field-service", description="Maintenance team.")
    warranty_years: float = Field(default=2.0, ge=0, description="Warranty from commissioning.")


class EngineGroup(AssetDefaults):
    """C-MAPSS engines on the TurboMon TM-21 profile."""

    file: Path = Field(
        default=DATASETS / "cmapss" / "train_FD001.txt",
        description="Any C-MAPSS-format file; relative to the config file's folder.",
    )
    units: list[Annotated[int, Field(ge=1)]] = Field(
        default_factory=lambda: list(range(91, 101)),
        description="Unit (engine) numbers to replay; the models must not have seen them.",
    )
    cycle_s: Positive = Field(default=3600.0, description="Simulated seconds per cycle.")
    last_cycles: Annotated[int, Field(ge=1)] | None = Field(
        default=None, description="Replay only the last N cycles of each engine (None: all)."
    )
    customer: str = Field(default="Northwind Airlines", min_length=1, max_length=200)
    criticality: Literal["low", "medium", "high", "critical"] = "critical"
    tier: Literal["VIP", "Gold", "Regular"] = "VIP"
    team: Name = "engine-shop"


class MillGroup(AssetDefaults):
    """AI4I 2020 machines on the MillRite SPX-12 profile (tool wear as the consumable)."""

    file: Path = Field(default=DATASETS / "ai4i2020" / "ai4i2020.csv")
    count: int = Field(default=3, ge=0, le=100)
    row_s: Positive = Field(default=3600.0, description="Simulated seconds per AI4I row.")
    history_rows: int = Field(
        default=240,
        ge=1,
        description="Rows replayed before the failure, at most: the replay starts after the "
        "machine's previous failure.",
    )
    min_run_rows: int = Field(
        default=24,
        ge=1,
        description="Only failures at least this many rows after the previous one are replayed "
        "(a run to failure long enough to be warned of).",
    )
    first_failure: int = Field(
        default=0, ge=0, description="Mill i fails like the (first_failure + i)-th labelled one."
    )
    customer: str = Field(default="Ridgeway Precision Parts", min_length=1, max_length=200)
    tier: Literal["VIP", "Gold", "Regular"] = "Gold"
    criticality: Literal["low", "medium", "high", "critical"] = "high"
    team: Name = "machining"


class CompressorGroup(AssetDefaults):
    """AirTek SC-75 compressors whose air filter wears (and is replaced)."""

    count: int = Field(default=2, ge=0, le=100)
    sample_s: Positive = Field(default=3600.0, description="Simulated seconds per sample.")
    filter_life_h: Positive = Field(
        default=240.0, description="Hours from a new filter to the 0.05 bar threshold (+-20 %)."
    )
    fail_after_h: dict[Name, Positive] = Field(
        default_factory=dict,
        description="Compressors that overheat and trip, by asset id: hours from the start.",
    )
    customer: str = Field(default="Harbor Foods", min_length=1, max_length=200)
    team: Name = "utilities"


class HydraulicGroup(AssetDefaults):
    """UCI hydraulic rig cycles on the FluidSense HCM-10 profile: a cooler degrading to failure."""

    folder: Path = Field(
        default=DATASETS / "hydraulic",
        description="The UCI hydraulic data set's folder; relative to the config file's folder.",
    )
    count: int = Field(default=1, ge=0, le=100)
    cycle_s: Positive = Field(
        default=3600.0,
        description="Simulated seconds one recorded load cycle (60 s on the rig) stands for.",
    )
    cycles_per_stage: Annotated[int, Field(ge=1)] | None = Field(
        default=40,
        description="Held-out cycles replayed at full cooler efficiency, as many at reduced "
        "efficiency, then at close to total failure (the failure is the first of those); "
        "None: all held-out cycles (124 per stage).",
    )
    customer: str = Field(default="Ironbridge Pressworks", min_length=1, max_length=200)
    tier: Literal["VIP", "Gold", "Regular"] = "Gold"
    criticality: Literal["low", "medium", "high", "critical"] = "high"
    team: Name = "hydraulics"


class RandomWindows(_Strict):
    """Windows drawn at random: mean gap and mean length, in simulated hours."""

    mean_gap_h: Positive
    mean_length_h: Positive


class OfflineSection(_Strict):
    """Devices whose server stops listening now and then."""

    assets: list[Name] = Field(default_factory=list)
    every_h: Positive = Field(default=48.0)
    for_h: Positive = Field(default=4.0)


class FaultsSection(_Strict):
    """Sensor dropouts, Modbus exceptions and offline periods."""

    dropouts: RandomWindows | None = Field(
        default=RandomWindows(mean_gap_h=96, mean_length_h=3),
        description="Per device: one sensor at a time serves its invalid value.",
    )
    exceptions: RandomWindows | None = Field(
        default=RandomWindows(mean_gap_h=200, mean_length_h=2),
        description="Per device: every request is answered with Modbus exception 4.",
    )
    offline: OfflineSection = Field(default_factory=OfflineSection)


class SerialSection(_Strict):
    """The one device served as Modbus RTU on a socat pty pair."""

    asset: Name | None = Field(default=None, description="Its asset id (None: no serial device).")
    baudrate: int = Field(default=38400, gt=0)
    unit: int = Field(default=7, ge=1, le=247)


class FleetConfig(_Strict):
    """The whole fleet."""

    seed: int = Field(default=42, description="Seed of noise and fault schedules.")
    speed: Positive = Field(default=3600.0, description="Simulated seconds per wall second.")
    site: Name = "sim-plant"
    poll_interval_s: Positive = Field(
        default=0.5,
        description="Edge agent poll interval, wall seconds: at most half a sample step's wall "
        "duration, so that every cycle is read at least once despite poll jitter.",
    )
    horizon_h: Positive = Field(
        default=24 * 90.0, description="Fault schedules are drawn over this many simulated hours."
    )
    engines: EngineGroup | None = Field(default_factory=EngineGroup)
    mills: MillGroup | None = Field(default_factory=MillGroup)
    compressors: CompressorGroup | None = Field(default_factory=CompressorGroup)
    hydraulics: HydraulicGroup | None = Field(
        default=None,
        description="Hydraulic power units (absent or null: none, so that fleet files written "
        "before the group existed keep their devices).",
    )
    faults: FaultsSection = Field(default_factory=FaultsSection)
    serial: SerialSection = Field(default_factory=SerialSection)

    @model_validator(mode="after")
    def _resolve(self) -> FleetConfig:
        if self.engines is not None and len(set(self.engines.units)) != len(self.engines.units):
            raise ValueError("engines.units must not repeat a unit")
        return self


def default_fleet() -> FleetConfig:
    """The built-in fleet (`prognos sim plant` without ``--fleet``): config/sim.example.yaml."""
    return FleetConfig(hydraulics=HydraulicGroup())


class FleetConfigError(ValueError):
    """The fleet config is invalid; the message has one line per problem."""


def parse_fleet(text: str, *, source: str = "sim.yaml", base: Path | None = None) -> FleetConfig:
    """Validate fleet config text; data-set paths are resolved against `base`.

    Raises:
        FleetConfigError: Not YAML, or a rule broken (each line names file, key, rule, value).
    """
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise FleetConfigError(f"{source}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise FleetConfigError(f"{source}: the file must be a mapping. Got {data!r} instead.")
    try:
        config = FleetConfig.model_validate(data)
    except ValidationError as exc:
        raise FleetConfigError("\n".join(_line(e, source) for e in exc.errors())) from None
    if base is not None:
        update: dict[str, Any] = {}
        for key, path_key in (("engines", "file"), ("mills", "file"), ("hydraulics", "folder")):
            group = getattr(config, key)
            path = None if group is None else getattr(group, path_key)
            if path is not None and not path.is_absolute():
                update[key] = group.model_copy(update={path_key: (base / path).resolve()})
        config = config.model_copy(update=update)
    return config


def load_fleet(path: Path) -> FleetConfig:
    """Read and validate a fleet config file.

    Raises:
        FleetConfigError: Unreadable or invalid.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise FleetConfigError(f"{path}: cannot read the fleet config: {exc}") from None
    return parse_fleet(text, source=str(path), base=path.parent)


def _line(error: Any, source: str) -> str:  # noqa: ANN401 - pydantic's ErrorDetails
    key = ".".join(str(p) for p in error["loc"])
    message = str(error["msg"]).removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        message = "is not a known key"
    head = f"{source}: {key} {message}" if key else f"{source}: {message}"
    if error["type"] == "missing" or isinstance(error.get("input"), dict):
        return f"{head}."
    return f"{head}. Got {error.get('input')!r} instead."


# ---------------------------------------------------------------- building the fleet


@dataclass(frozen=True, slots=True)
class Member:
    """A device of the fleet with its asset record fields and how it is served."""

    device: SimDevice
    transport: Literal["tcp", "rtu"]
    group: AssetDefaults
    asset_class: str
    site: str
    commissioned: dt.date


def _runs_to_failure(rows: Sequence[dict[str, str]], mills: MillGroup) -> list[int]:
    """Labelled AI4I failures at least `min_run_rows` rows after the previous failure."""
    failed = [i for i, row in enumerate(rows) if ai4i_row_failed(row)]
    previous = dict(zip(failed[1:], failed, strict=False))
    failures = [
        f for f in ai4i_failure_rows(rows) if f - previous.get(f, -1) - 1 >= mills.min_run_rows
    ]
    if not failures:
        raise FleetConfigError(
            f"mills.min_run_rows: no labelled failure of {mills.file} comes "
            f"{mills.min_run_rows} rows after the previous one. Got {mills.min_run_rows}."
        )
    return failures


@dataclass(frozen=True, slots=True)
class _Planned:
    """A device a group asks for, before it gets its fault schedule and asset record."""

    asset: str
    profile: str
    trajectory: Trajectory
    group: AssetDefaults
    asset_class: str


def build_fleet(config: FleetConfig, *, start: dt.date) -> list[Member]:
    """The fleet's devices, pure apart from reading the data sets named in the config.

    Args:
        config: The validated fleet config.
        start: The simulated start date (commissioning dates are drawn before it).

    Raises:
        FleetConfigError: A unit not in the file, too few labelled AI4I failures, or the
            hydraulic data set missing or malformed.
    """
    horizon_s = config.horizon_h * 3600
    profiles = {
        p: load_profile(PROFILES_DIR / f"{p}.yaml")
        for p in (TURBOFAN_PROFILE, MILL_PROFILE, COMPRESSOR_PROFILE, HYDRAULIC_PROFILE)
    }
    images = {p: RegisterImage(profile) for p, profile in profiles.items()}
    planned = [
        *_engines(config.engines),
        *_mills(config.mills, profiles[MILL_PROFILE]),
        *_compressors(config, profiles[COMPRESSOR_PROFILE]),
        *_hydraulics(config.hydraulics, profiles[HYDRAULIC_PROFILE]),
    ]
    members: list[Member] = []
    for plan in planned:
        asset, image = plan.asset, images[plan.profile]
        rng = random.Random(f"{config.seed}|asset|{asset}")  # noqa: S311 - simulation
        device = SimDevice(
            name=asset,
            asset=asset,
            profile_id=plan.profile,
            image=image,
            trajectory=plan.trajectory,
            faults=_faults(config, asset, image, plan.trajectory, horizon_s),
            seed=config.seed,
            unit=config.serial.unit if asset == config.serial.asset else 1,
        )
        members.append(
            Member(
                device=device,
                transport="rtu" if asset == config.serial.asset else "tcp",
                group=plan.group,
                asset_class=plan.asset_class,
                site=plan.group.site or config.site,
                commissioned=start - dt.timedelta(days=rng.randint(200, 1500)),
            )
        )
    return members


def _engines(engines: EngineGroup | None) -> list[_Planned]:
    if engines is None:
        return []
    try:
        units = read_cmapss_units(engines.file)
    except (OSError, ValueError) as exc:
        raise FleetConfigError(f"engines.file: {exc}") from None
    planned = []
    for unit in engines.units:
        if unit not in units:
            raise FleetConfigError(
                f"engines.units: unit {unit} is not in {engines.file} (it has 1..{max(units)})"
            )
        rows = units[unit]
        first = 1 if engines.last_cycles is None else max(1, len(rows) - engines.last_cycles + 1)
        trajectory = CmapssTrajectory(rows, engines.cycle_s, first_cycle=first)
        planned.append(
            _Planned(f"engine-{unit:03d}", TURBOFAN_PROFILE, trajectory, engines, "turbofan")
        )
    return planned


def _mills(mills: MillGroup | None, profile: Profile) -> list[_Planned]:
    if mills is None or not mills.count:
        return []
    rows_ai4i = read_ai4i(mills.file)
    failures = _runs_to_failure(rows_ai4i, mills)
    tool_limit = next(
        (
            c.threshold
            for c in profile.consumables
            if c.name == "cutting_tool" and c.threshold is not None
        ),
        None,
    )
    # Spread the mills over the file: each takes a labelled failure far from the others'.
    stride = max(1, len(failures) // max(1, mills.count))
    picks = [
        failures[(mills.first_failure + i * stride) % len(failures)] for i in range(mills.count)
    ]
    return [
        _Planned(
            f"mill-{i:02d}",
            MILL_PROFILE,
            Ai4iTrajectory(
                rows_ai4i,
                row,
                mills.history_rows,
                mills.row_s,
                noise_sd={"air_temp_k": 0.05, "process_temp_k": 0.05},
                tool_limit_min=tool_limit,
            ),
            mills,
            "spindle",
        )
        for i, row in enumerate(picks, 1)
    ]


def _compressors(config: FleetConfig, profile: Profile) -> list[_Planned]:
    comps = config.compressors
    if comps is None:
        return []
    threshold = next(
        c.threshold
        for c in profile.consumables
        if c.name == "air_filter" and c.threshold is not None
    )
    planned = []
    for i in range(1, comps.count + 1):
        asset = f"compressor-{i:02d}"
        rng = random.Random(f"{config.seed}|filter|{asset}")  # noqa: S311 - simulation
        fail_h = comps.fail_after_h.get(asset)
        trajectory = FilterWearTrajectory(
            sample_s=comps.sample_s,
            threshold_bar=threshold,
            life_s=comps.filter_life_h * 3600 * rng.uniform(0.8, 1.2),
            failure_at_s=None if fail_h is None else fail_h * 3600,
            failure_ramp_s=48 * 3600,
            noise_sd={"air_filter_dp_bar": 0.0008, "element_outlet_temp_c": 0.3},
        )
        planned.append(_Planned(asset, COMPRESSOR_PROFILE, trajectory, comps, "compressor"))
    return planned


def _hydraulics(hyd: HydraulicGroup | None, profile: Profile) -> list[_Planned]:
    if hyd is None or not hyd.count:
        return []
    try:
        replays = read_hydraulic_replays(hyd.folder, hyd.cycles_per_stage, units=hyd.count)
    except (OSError, ValueError) as exc:
        raise FleetConfigError(f"hydraulics.folder: {exc}") from None
    cooler = next(fm for fm in profile.failure_modes if fm.name == "cooler_failure")
    return [
        _Planned(
            f"hpu-{i:02d}",
            HYDRAULIC_PROFILE,
            HydraulicTrajectory(
                cycles, hyd.cycle_s, fault_code=cooler.fault_codes[0], failure_mode=cooler.name
            ),
            hyd,
            "hydraulic_power_unit",
        )
        for i, cycles in enumerate(replays, 1)
    ]


def _faults(
    config: FleetConfig,
    asset: str,
    image: RegisterImage,
    trajectory: Trajectory,
    horizon_s: float,
) -> FaultSchedule:
    rng = random.Random(f"{config.seed}|faults|{asset}")  # noqa: S311 - simulation
    faults = config.faults
    dropouts: dict[str, list[Window]] = {}
    if faults.dropouts is not None:
        present = trajectory.values_at(0.0)
        # State and fault codes stay readable: a dropout is a sensor, not the controller.
        candidates = [
            s
            for s in image.signals
            if s in present and image.can_drop_out(s) and not s.endswith(("_state", "fault_code"))
        ]
        if candidates:
            for window in random_windows(
                rng,
                horizon_s=horizon_s,
                mean_gap_s=faults.dropouts.mean_gap_h * 3600,
                mean_length_s=faults.dropouts.mean_length_h * 3600,
            ):
                dropouts.setdefault(rng.choice(candidates), []).append(window)
    exceptions: Sequence[Window] = ()
    if faults.exceptions is not None:
        exceptions = random_windows(
            rng,
            horizon_s=horizon_s,
            mean_gap_s=faults.exceptions.mean_gap_h * 3600,
            mean_length_s=faults.exceptions.mean_length_h * 3600,
        )
    offline: Sequence[Window] = ()
    if asset in faults.offline.assets:
        every = faults.offline.every_h * 3600
        offline = periodic_windows(
            horizon_s=horizon_s,
            every_s=every,
            length_s=faults.offline.for_h * 3600,
            first_s=every * rng.uniform(0.3, 1.0),
        )
    return FaultSchedule(
        dropouts={k: tuple(v) for k, v in dropouts.items()},
        exceptions=tuple(exceptions),
        offline=tuple(offline),
    )
