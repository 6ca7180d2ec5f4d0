"""The simulator's fleet config, fleet building and outputs (edge config, assets, ground truth)."""

from __future__ import annotations

import datetime as dt
import itertools
from pathlib import Path

import pytest
import yaml

from cloud.registry import parse_registry_yaml
from cloud.sim import (
    Endpoint,
    FleetConfig,
    FleetConfigError,
    Member,
    MqttTarget,
    SimClock,
    asset_records,
    build_fleet,
    default_fleet,
    edge_configs,
    event_record,
    events_between,
    load_fleet,
    parse_fleet,
    read_cmapss_units,
)
from edge_agent._config import parse_config
from edge_agent._profile import ProfileLibrary

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "config" / "sim.example.yaml"
START = dt.date(2026, 1, 1)


@pytest.fixture(scope="module")
def example_fleet() -> list[Member]:
    return build_fleet(load_fleet(EXAMPLE), start=START)


def test_the_example_fleet_has_engines_mills_compressors_a_hydraulic_unit_and_one_serial_device(
    example_fleet: list[Member],
) -> None:
    """config/sim.example.yaml: 10 engines, 3 mills, 2 compressors, 1 hydraulic unit; one RTU."""
    by_profile: dict[str, int] = {}
    for member in example_fleet:
        by_profile[member.device.profile_id] = by_profile.get(member.device.profile_id, 0) + 1
    assert by_profile == {
        "turbomon_tm21_1.0": 10,
        "millrite_spx12_5.1": 3,
        "airtek_sc75_4.2": 2,
        "fluidsense_hcm10_1.0": 1,
    }
    assert [m.device.asset for m in example_fleet if m.transport == "rtu"] == ["engine-100"]
    offline = [m.device.asset for m in example_fleet if m.device.faults.offline]
    assert offline == ["mill-02"]


def test_every_engine_fails_at_its_last_cycle_in_the_file(example_fleet: list[Member]) -> None:
    """Failure time = (last cycle - 1) cycles after the start: engines 91-100 of FD001."""
    units = read_cmapss_units(ROOT.parent / "shared" / "datasets" / "cmapss" / "train_FD001.txt")
    engines = [m for m in example_fleet if m.device.profile_id == "turbomon_tm21_1.0"]
    for member in engines:
        unit = int(member.device.asset.removeprefix("engine-"))
        failure = member.device.failure
        assert failure is not None
        assert failure.t_s == (len(units[unit]) - 1) * 3600


def test_the_hydraulic_unit_fails_after_two_stages_of_its_cooler(
    example_fleet: list[Member],
) -> None:
    """hpu-01: 40 cycles at full, 40 at reduced efficiency, then the cooler failure (80 h)."""
    (member,) = [m for m in example_fleet if m.device.profile_id == "fluidsense_hcm10_1.0"]
    assert (member.device.asset, member.asset_class) == ("hpu-01", "hydraulic_power_unit")
    failure = member.device.failure
    assert failure is not None
    assert (failure.t_s, failure.name, failure.fault_code) == (80 * 3600, "cooler_failure", 11)
    assert failure.detail["reduced_t_sim_s"] == 40 * 3600
    record = event_record(member, failure, SimClock(wall_start_ms=0, speed=3600))
    assert record["failure_mode"] == "cooler_failure"
    assert record["detail"] == dict(failure.detail)
    assert isinstance(record["detail"]["rig_cycle"], int)


def test_the_built_in_fleet_has_the_examples_hydraulic_unit_and_old_files_have_none() -> None:
    """Without --fleet there is one hydraulic unit; a file without the group (or null) has none."""
    example = load_fleet(EXAMPLE)
    assert default_fleet().hydraulics == example.hydraulics
    assert example.hydraulics is not None
    assert example.hydraulics.count == 1
    assert parse_fleet("seed: 1\n").hydraulics is None
    assert parse_fleet("hydraulics: null\n").hydraulics is None
    config = FleetConfig(engines=None, mills=None, compressors=None)
    assert build_fleet(config, start=START) == []


def test_hydraulics_config_errors_name_the_file_key_and_value() -> None:
    """Bad hydraulics keys fail at load with the file, the key and the value."""
    with pytest.raises(FleetConfigError) as info:
        parse_fleet(
            "hydraulics: {count: -1, cycle_s: 0, cycles_per_stage: 0, folderz: x}\n",
            source="sim.yaml",
        )
    message = str(info.value)
    assert (
        "sim.yaml: hydraulics.count Input should be greater than or equal to 0. Got -1" in message
    )
    assert "sim.yaml: hydraulics.cycle_s Input should be greater than 0. Got 0 instead." in message
    assert (
        "sim.yaml: hydraulics.cycles_per_stage Input should be greater than or equal to 1. Got 0"
        in message
    )
    assert "sim.yaml: hydraulics.folderz is not a known key. Got 'x' instead." in message


def test_a_hydraulic_data_folder_is_relative_to_the_config_and_must_hold_the_data(
    tmp_path: Path,
) -> None:
    """A relative folder is resolved against the config's folder; a missing file is named."""
    config = parse_fleet(
        "engines: null\nmills: null\ncompressors: null\nhydraulics: {folder: rig}\n",
        base=tmp_path,
    )
    assert config.hydraulics is not None
    assert config.hydraulics.folder == tmp_path / "rig"
    with pytest.raises(FleetConfigError, match=r"^hydraulics\.folder: .*rig/profile\.txt: missing"):
        build_fleet(config, start=START)


def test_the_same_seed_builds_the_same_fleet() -> None:
    """Fault schedules and noise come from the seed: equal seeds, equal plants."""
    config = FleetConfig(engines=None, mills=None)
    a, b = (build_fleet(config, start=START) for _ in range(2))
    assert [m.device.faults for m in a] == [m.device.faults for m in b]
    c = build_fleet(config.model_copy(update={"seed": 1}), start=START)
    assert [m.device.faults for m in a] != [m.device.faults for m in c]


def test_a_fleet_config_error_names_the_file_key_and_value() -> None:
    """Typos and bad values fail at load with the file, the key and the value."""
    with pytest.raises(FleetConfigError) as info:
        parse_fleet("speed: -2\nengines: {cycle_s: 0, unitz: [1]}\n", source="sim.yaml")
    message = str(info.value)
    assert "sim.yaml: speed Input should be greater than 0. Got -2 instead." in message
    assert "sim.yaml: engines.cycle_s Input should be greater than 0. Got 0 instead." in message
    assert "sim.yaml: engines.unitz is not a known key. Got [1] instead." in message


def test_an_engine_unit_missing_from_the_file_is_an_error() -> None:
    """Asking for engine 500 of FD001 (100 engines) says which units exist."""
    config = FleetConfig(
        engines={"units": [500]},  # type: ignore[arg-type]
        mills=None,
        compressors=None,
    )
    with pytest.raises(FleetConfigError, match=r"unit 500 is not in .*train_FD001.txt"):
        build_fleet(config, start=START)


def test_data_set_paths_are_relative_to_the_config_file(tmp_path: Path) -> None:
    """A relative `file` is resolved against the fleet config's folder."""
    config = parse_fleet("engines: {file: data/x.txt}\n", base=tmp_path)
    assert config.engines is not None
    assert config.engines.file == tmp_path / "data" / "x.txt"


def endpoints_for(members: list[Member]) -> dict[str, Endpoint]:
    return {
        m.device.name: Endpoint("rtu", serial_port="/dev/pts/9", unit=m.device.unit)
        if m.transport == "rtu"
        else Endpoint("tcp", port=15000 + i)
        for i, m in enumerate(members)
    }


def test_the_edge_config_passes_the_agents_own_validation(example_fleet: list[Member]) -> None:
    """Generated configs load with edge_agent's loader, with every device and its profile."""
    configs = edge_configs(
        example_fleet,
        endpoints_for(example_fleet),
        profiles_dir=str(ROOT / "firmware_profiles"),
        state_root="/var/lib/prognos-sim",
        poll_interval_s=1,
        mqtt=MqttTarget("127.0.0.1", 1883),
    )
    assert list(configs) == ["gw-sim-plant"]
    config = parse_config(yaml.safe_dump(configs["gw-sim-plant"]), source="edge.yaml")
    assert len(config.devices) == 16
    assert "hpu-01" in {d.asset for d in config.devices}
    assert config.mqtt is not None
    assert config.mqtt.port == 1883
    rtu = [d for d in config.devices if d.transport.type == "rtu"]
    assert [d.asset for d in rtu] == ["engine-100"]
    assert config.buses["sim-rs485"].port == "/dev/pts/9"
    assert all(d.preprocess.deadband == "off" for d in config.devices)
    assert {d.profile for d in config.devices} <= {
        p.profile_id for p in ProfileLibrary.load(ROOT / "firmware_profiles").profiles
    }


def test_the_asset_file_passes_the_registrys_own_validation(example_fleet: list[Member]) -> None:
    """The asset records load in cloud.registry, with profiles that cover model and firmware."""
    firmware = {
        m.device.profile_id: (m.device.image.profile.model, m.device.image.firmware)
        for m in example_fleet
    }
    text = yaml.safe_dump({"assets": asset_records(example_fleet, firmware=firmware)})
    library = ProfileLibrary.load(ROOT / "firmware_profiles")
    registry = parse_registry_yaml(text, source="assets.yaml", library=library)
    assert len(list(registry)) == 16
    hpu = registry.get("hpu-01")
    assert hpu is not None
    assert (hpu.model, hpu.firmware, hpu.profile, hpu.asset_class) == (
        "HCM-10",
        "1.0",
        "fluidsense_hcm10_1.0",
        "hydraulic_power_unit",
    )
    assert (hpu.customer, hpu.tier.value, hpu.team) == (
        "Ironbridge Pressworks",
        "Gold",
        "hydraulics",
    )
    engine = registry.get("engine-091")
    assert engine is not None
    assert (engine.tier.value, engine.criticality.value, engine.gateway) == (
        "VIP",
        "critical",
        "gw-sim-plant",
    )


def test_ground_truth_records_carry_simulated_and_wall_time(example_fleet: list[Member]) -> None:
    """A failure record names asset, mode, fault code, and both clocks consistently."""
    clock = SimClock(wall_start_ms=1_800_000_000_000, speed=3600)
    member = example_fleet[0]
    failure = member.device.failure
    assert failure is not None
    record = event_record(member, failure, clock)
    assert record["event"] == "failure"
    assert record["asset"] == "engine-091"
    assert record["failure_mode"] == "hpc_degradation"
    assert record["fault_code"] == 11
    assert record["wall_ms"] == 1_800_000_000_000 + round(failure.t_s / 3600 * 1000)
    assert record["sim_ms"] == 1_800_000_000_000 + round(failure.t_s * 1000)


def test_events_between_returns_each_event_once_in_time_order(example_fleet: list[Member]) -> None:
    """Consecutive supervision passes see every event exactly once."""
    horizon = 400 * 3600.0
    cuts = [-1.0, 0.0, 1234.0, 50 * 3600.0, 133 * 3600.0 + 1, horizon]
    seen = [e for a, b in itertools.pairwise(cuts) for e in events_between(example_fleet, a, b)]
    whole = events_between(example_fleet, -1.0, horizon)
    assert [(m.device.asset, e) for m, e in seen] == [(m.device.asset, e) for m, e in whole]
    assert [e.t_s for _, e in whole] == sorted(e.t_s for _, e in whole)
    kinds = {e.kind for _, e in whole}
    assert kinds == {"failure", "consumable_replaced"}
