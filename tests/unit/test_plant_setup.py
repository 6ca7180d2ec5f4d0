"""The main job's set-up: what it trains, and the scoring plans it writes for the simulator."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from cloud._plant_setup import scoring_config, training_plan
from cloud.scoring import parse_config
from cloud.sim import load_fleet

ROOT = Path(__file__).resolve().parents[2]
CMAPSS = ROOT.parent / "shared" / "datasets" / "cmapss" / "train_FD001.txt"


def test_the_plans_load_and_cover_every_profile_the_plant_simulates() -> None:
    """Every profile of config/plant.yaml's fleet has a plan; durations scale with the speed."""
    fleet = load_fleet(ROOT / "config" / "plant.yaml")
    assert fleet.hydraulics is not None
    config = parse_config(scoring_config(3600.0, 3600.0, fleet.hydraulics.cycle_s))
    assert set(config.profiles) == {
        "turbomon_tm21_1.0",
        "millrite_spx12_5.1",
        "airtek_sc75_4.2",
        "fluidsense_hcm10_1.0",
    }
    (cooler,) = config.profiles["fluidsense_hcm10_1.0"].models
    assert (cooler.kind, cooler.name, cooler.target) == (
        "failure",
        "hydraulic_cooler",
        "cooler_failure",
    )
    assert cooler.horizon == dt.timedelta(seconds=1)  # one load cycle = one wall second
    slower = parse_config(scoring_config(1800.0, 3600.0, 7200.0))
    assert slower.profiles["fluidsense_hcm10_1.0"].window == dt.timedelta(seconds=48)


def test_consumable_alerts_cool_down_shorter_than_failure_alerts() -> None:
    """A replaced item's next life must not wait out the failure alerts' 60 h cooldown."""
    config = parse_config(scoring_config(3600.0, 3600.0))
    assert config.alert_policy("air_filter").cooldown == dt.timedelta(seconds=12)
    assert config.alert_policy("cutting_tool").cooldown == dt.timedelta(seconds=12)
    assert config.alert_policy("hpc_degradation").cooldown == dt.timedelta(seconds=60)


def test_the_training_plan_holds_the_replayed_engines_out(tmp_path: Path) -> None:
    """The file's last units: --max-units; others: a filtered copy without them."""
    plan = {step.target: step.args for step in training_plan(CMAPSS, range(91, 101), tmp_path)}
    assert set(plan) == {
        "cmapss_rul",
        "cmapss_failure",
        "ai4i_horizon",
        "tool_wear",
        "hydraulic_cooler",
    }
    assert plan["cmapss_failure"] == ("--max-units", "90")
    plan = {step.target: step.args for step in training_plan(CMAPSS, [5, 7], tmp_path)}
    _, path = plan["cmapss_failure"]
    units = {int(line.split()[0]) for line in Path(path).read_text().splitlines()}
    assert units == set(range(1, 101)) - {5, 7}
