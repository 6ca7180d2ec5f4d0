"""The simulated plant: a fleet of devices served over real Modbus from real run-to-failure data.

A pure core (`SimClock`, trajectories, `SimDevice`, fault schedules, `RegisterImage`) says what
every device serves at simulated time t; a thin I/O shell (`DeviceServer`, `Plant`) serves it as
pymodbus servers and writes what the rest of the pipeline needs (edge configs, asset registry,
ground truth, served counts). `prognos sim plant` runs it; docs/simulator.md explains it.
"""

from cloud.sim._clock import SimClock
from cloud.sim._device import DeviceState, FaultSchedule, SimDevice
from cloud.sim._fleet import (
    FleetConfig,
    FleetConfigError,
    HydraulicGroup,
    Member,
    build_fleet,
    default_fleet,
    load_fleet,
    parse_fleet,
)
from cloud.sim._outputs import Endpoint, MqttTarget, asset_records, edge_configs, event_record
from cloud.sim._plant import Plant, PlantStatus, events_between, run_plant
from cloud.sim._registers import RegisterImage, Tables
from cloud.sim._schedule import Window, active, periodic_windows, random_windows
from cloud.sim._server import DeviceServer, ServedCounts
from cloud.sim._trajectory import (
    Ai4iTrajectory,
    CmapssTrajectory,
    Event,
    FilterWearTrajectory,
    HydraulicTrajectory,
    RigCycle,
    Trajectory,
    hydraulic_replays,
    read_ai4i,
    read_cmapss_units,
    read_hydraulic_replays,
)

__all__ = [  # noqa: RUF022 - sorted with key=str.casefold, the project rule (STYLE.md 1)
    "active",
    "Ai4iTrajectory",
    "asset_records",
    "build_fleet",
    "CmapssTrajectory",
    "default_fleet",
    "DeviceServer",
    "DeviceState",
    "edge_configs",
    "Endpoint",
    "Event",
    "event_record",
    "events_between",
    "FaultSchedule",
    "FilterWearTrajectory",
    "FleetConfig",
    "FleetConfigError",
    "hydraulic_replays",
    "HydraulicGroup",
    "HydraulicTrajectory",
    "load_fleet",
    "Member",
    "MqttTarget",
    "parse_fleet",
    "periodic_windows",
    "Plant",
    "PlantStatus",
    "random_windows",
    "read_ai4i",
    "read_cmapss_units",
    "read_hydraulic_replays",
    "RegisterImage",
    "RigCycle",
    "run_plant",
    "ServedCounts",
    "SimClock",
    "SimDevice",
    "Tables",
    "Trajectory",
    "Window",
]
