"""The simulator's pure core: clock, schedules, trajectories, devices and register images."""

from __future__ import annotations

import functools
import itertools
import math
import random
import statistics
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from cloud._cmapss import SENSORS, SETTINGS
from cloud.sim import (
    Ai4iTrajectory,
    CmapssTrajectory,
    FaultSchedule,
    FilterWearTrajectory,
    HydraulicTrajectory,
    RegisterImage,
    RigCycle,
    SimClock,
    SimDevice,
    Tables,
    Trajectory,
    Window,
    active,
    hydraulic_replays,
    periodic_windows,
    random_windows,
    read_ai4i,
    read_cmapss_units,
)
from cloud.sim._trajectory import ai4i_failure_rows, ai4i_row_failed
from edge_agent._model import BlockResult, Quality
from edge_agent._planner import compile_plan
from edge_agent._profile import Profile, ProfileLibrary, Signal, load_profile
from models._hydraulic import SIGNALS, load_hydraulic

ROOT = Path(__file__).resolve().parents[2]
DATASETS = ROOT.parent / "shared" / "datasets"
CMAPSS = DATASETS / "cmapss" / "train_FD001.txt"
AI4I = DATASETS / "ai4i2020" / "ai4i2020.csv"
HYDRAULIC = DATASETS / "hydraulic"
Engines = dict[int, list[dict[str, float]]]
Rows = list[dict[str, str]]
PROFILES = ROOT / "firmware_profiles"
TURBOFAN = load_profile(PROFILES / "turbomon_tm21_1.0.yaml")
MILL = load_profile(PROFILES / "millrite_spx12_5.1.yaml")
COMPRESSOR = load_profile(PROFILES / "airtek_sc75_4.2.yaml")
HPU = load_profile(PROFILES / "fluidsense_hcm10_1.0.yaml")


@pytest.fixture(scope="module")
def engines() -> Engines:
    return read_cmapss_units(CMAPSS)


@pytest.fixture(scope="module")
def ai4i() -> Rows:
    return read_ai4i(AI4I)


@functools.cache
def rig() -> Any:
    """The UCI hydraulic rig's cycles (a DataFrame), loaded once: reading takes seconds."""
    return load_hydraulic(HYDRAULIC)


def decode_tables(profile: Profile, tables: Tables, *, unit: int = 1) -> dict[str, Any]:
    """Decode served tables with the edge agent's own planner: signal -> value or bad reason."""
    plan = compile_plan(profile, asset="sim", unit=unit)
    results = {}
    for request in plan.requests:
        span = range(request.address, request.address + request.count)
        if request.kind in ("coil", "discrete"):
            bits = tables.coil if request.kind == "coil" else tables.discrete
            results[request] = BlockResult(1, bits=[bits.get(a, False) for a in span])
        else:
            words = tables.holding if request.kind == "holding" else tables.input
            results[request] = BlockResult(1, words=[words.get(a, 0) for a in span])
    return {
        r.signal: r.value if r.quality is Quality.GOOD else ("bad", r.reason)
        for r in plan.decode(results)
    }


def matches(signal: Signal, served: object, decoded: object) -> bool:
    """Whether a decoded reading is the served engineering value within register precision."""
    if signal.enum is not None and signal.enum_value != "code":
        return decoded == signal.enum[int(served)]  # type: ignore[call-overload]
    if isinstance(served, (bool, str)):
        return decoded == served
    value = float(served)  # type: ignore[arg-type]
    if signal.clamp is not None:
        lo = -math.inf if signal.clamp.min is None else signal.clamp.min
        hi = math.inf if signal.clamp.max is None else signal.clamp.max
        value = min(hi, max(lo, value))
    if signal.type == "float32":
        return math.isclose(float(decoded), value, rel_tol=1e-6, abs_tol=1e-9)  # type: ignore[arg-type]
    return abs(float(decoded) - value) <= abs(signal.scale) / 2 + 1e-9  # type: ignore[arg-type]


# ---------------------------------------------------------------- clock


def test_clock_maps_wall_to_simulated_time_and_back() -> None:
    """At speed 3600 one wall second is one simulated hour; the mapping inverts exactly."""
    clock = SimClock(wall_start_ms=1_000_000, speed=3600)
    assert clock.sim_s(1_000_000) == 0
    assert clock.sim_s(1_001_000) == 3600
    assert clock.wall_ms(7200) == 1_002_000
    assert clock.sim_epoch_ms_at(3600) == 1_000_000 + 3_600_000
    assert SimClock(wall_start_ms=5, speed=2, sim_epoch_ms=0).sim_epoch_ms_at(1.5) == 1500


def test_clock_refuses_a_speed_that_is_not_positive() -> None:
    """A zero or negative speed is an error naming the value."""
    with pytest.raises(ValueError, match=r"speed must be greater than 0\. Got 0"):
        SimClock(wall_start_ms=0, speed=0)


# ---------------------------------------------------------------- schedules


def test_random_windows_are_sorted_disjoint_and_reproducible() -> None:
    """The same seed draws the same windows; they never overlap and start inside the horizon."""

    def draw(seed: int) -> tuple[Window, ...]:
        return random_windows(random.Random(seed), horizon_s=1e6, mean_gap_s=5e4, mean_length_s=3e3)

    windows = draw(1)
    assert windows == draw(1)
    assert windows != draw(2)
    assert len(windows) > 5
    assert all(w.start_s < 1e6 for w in windows)
    assert all(a.end_s <= b.start_s for a, b in itertools.pairwise(windows))


def test_active_finds_the_window_containing_a_time() -> None:
    """A time inside a window finds it (start included, end excluded); a gap finds none."""
    windows = (Window(10, 20), Window(30, 31), Window(50, 100))
    assert active(windows, 10) == Window(10, 20)
    assert active(windows, 19.9) == Window(10, 20)
    assert active(windows, 20) is None
    assert active(windows, 30.5) == Window(30, 31)
    assert active(windows, 99) == Window(50, 100)
    assert active(windows, 5) is None
    assert active(windows, 100) is None
    assert active((), 1) is None


def test_periodic_windows_repeat_until_the_horizon() -> None:
    """Offline periods come back every `every_s` for `length_s`."""
    windows = periodic_windows(horizon_s=100, every_s=30, length_s=5, first_s=10)
    assert windows == (Window(10, 15), Window(40, 45), Window(70, 75))


# ---------------------------------------------------------------- trajectories


def test_cmapss_engine_serves_its_rows_cycle_by_cycle(engines: Engines) -> None:
    """Cycle k of the file is served during simulated [(k-1), k) * cycle_s, with its number."""
    rows = engines[3]
    engine = CmapssTrajectory(rows, cycle_s=3600)
    for cycle in (1, 2, 50, len(rows) - 1):
        t = (cycle - 1) * 3600 + 1800
        values = engine.values_at(t)
        assert {k: values[k] for k in SETTINGS + SENSORS} == rows[cycle - 1]
        assert values["cycle_count"] == cycle
        assert (values["engine_state"], values["fault_code"]) == (1, 0)


def test_cmapss_engine_fails_at_its_last_cycle_and_stays_failed(engines: Engines) -> None:
    """The failure is the last cycle (RUL 0); from then on the fault code is latched."""
    rows = engines[1]
    engine = CmapssTrajectory(rows, cycle_s=10)
    assert engine.failure.t_s == (len(rows) - 1) * 10
    assert (engine.failure.name, engine.failure.fault_code) == ("hpc_degradation", 11)
    before = engine.values_at(engine.failure.t_s - 0.001)
    assert (before["engine_state"], before["fault_code"]) == (1, 0)
    for later in (engine.failure.t_s, engine.failure.t_s + 5, 1e9):
        values = engine.values_at(later)
        assert (values["engine_state"], values["fault_code"]) == (2, 11)
        assert values["cycle_count"] == len(rows)


def test_cmapss_engine_can_start_late_in_its_life(engines: Engines) -> None:
    """With first_cycle, time 0 serves that cycle and the failure comes sooner."""
    rows = engines[2]
    engine = CmapssTrajectory(rows, cycle_s=60, first_cycle=len(rows) - 29)
    assert engine.cycles == 30
    assert engine.values_at(0)["cycle_count"] == len(rows) - 29
    assert engine.failure.t_s == 29 * 60
    with pytest.raises(ValueError, match="first_cycle must be"):
        CmapssTrajectory(rows, cycle_s=60, first_cycle=len(rows) + 1)


def test_cmapss_reader_refuses_cycles_out_of_order(tmp_path: Path) -> None:
    """A unit whose cycles skip one is an error naming the file and the unit."""
    line = " ".join(["1", "{c}"] + ["0.5"] * 24)
    path = tmp_path / "bad.txt"
    path.write_text(line.format(c=1) + "\n" + line.format(c=3) + "\n")
    with pytest.raises(ValueError, match=r"bad\.txt: unit 1 cycle 3 must follow cycle 1"):
        read_cmapss_units(path)


def test_ai4i_mill_replays_rows_and_fails_like_its_labelled_row(ai4i: Rows) -> None:
    """The last row replayed is the labelled failure, with the profile's mode and fault code."""
    failure_row = next(
        i
        for i in ai4i_failure_rows(ai4i)
        if ai4i[i]["TWF"] == "1"
        and i > 300
        and not any(ai4i_row_failed(r) for r in ai4i[i - 100 : i])
    )
    mill = Ai4iTrajectory(ai4i, failure_row, history_rows=100, row_s=60)
    assert mill.failure.t_s == 100 * 60
    assert (mill.failure.name, mill.failure.fault_code) == ("tool_wear_failure", 1)
    row = ai4i[failure_row - 100 + 7]
    values = mill.values_at(7 * 60 + 30)
    assert values["tool_wear_min"] == int(row["Tool wear [min]"])
    assert values["spindle_speed_rpm"] == int(row["Rotational speed [rpm]"])
    assert values["air_temp_k"] == float(row["Air temperature [K]"])
    assert values["fault_code"] == 0
    failed = mill.values_at(mill.failure.t_s)
    assert (failed["fault_code"], failed["spindle_running"], failed["spindle_speed_rpm"]) == (
        1,
        False,
        0,
    )


def _longest_run(ai4i: Rows) -> int:
    """The labelled failure with the most failure-free rows before it (238, with tool changes)."""
    return max(
        ai4i_failure_rows(ai4i),
        key=lambda f: (
            Ai4iTrajectory(ai4i, f, history_rows=1000, row_s=1).failure_row
            - Ai4iTrajectory(ai4i, f, history_rows=1000, row_s=1).start_row
        ),
    )


def test_ai4i_tool_changes_are_consumable_replacements(ai4i: Rows) -> None:
    """Wherever tool wear drops from one row to the next, a cutting_tool replacement happens."""
    failure_row = _longest_run(ai4i)
    mill = Ai4iTrajectory(ai4i, failure_row, history_rows=400, row_s=1)
    replaced = [e for e in mill.events if e.kind == "consumable_replaced"]
    start = mill.start_row
    drops = [
        i - start
        for i in range(start + 1, failure_row + 1)
        if int(ai4i[i]["Tool wear [min]"]) < int(ai4i[i - 1]["Tool wear [min]"])
    ]
    assert drops
    assert [e.t_s for e in replaced] == drops
    assert {e.name for e in replaced} == {"cutting_tool"}
    assert mill.events[-1] == mill.failure


def test_compressor_filter_wears_past_its_threshold_and_is_replaced() -> None:
    """The pressure drop rises to the threshold, is replaced just past it, and starts again."""
    filt = FilterWearTrajectory(sample_s=3600, threshold_bar=0.05, life_s=100 * 3600)
    replacements = filt.replacements_until(1000 * 3600)
    assert len(replacements) >= 5
    first = replacements[0].t_s
    assert filt.filter_dp_bar(0) == pytest.approx(0.015)
    assert filt.filter_dp_bar(100 * 3600) == pytest.approx(0.05)
    rising = [filt.filter_dp_bar(t) for t in range(0, int(first), 3600)]
    assert rising == sorted(rising)
    assert rising[-1] >= 0.05
    assert float(replacements[0].detail["dp_before_bar"]) >= 0.05
    limit = float(replacements[0].detail["limit_t_sim_s"])
    assert filt.filter_dp_bar(limit) >= 0.05 > filt.filter_dp_bar(limit - 3600)
    assert limit < first
    second = float(replacements[1].detail["limit_t_sim_s"])
    assert first < second < replacements[1].t_s
    assert filt.filter_dp_bar(first) < 0.02
    assert filt.values_at(first - 3600)["air_filter_warning"] is True
    assert filt.values_at(first)["air_filter_warning"] is False


def test_compressor_overheats_before_it_trips_and_stays_tripped() -> None:
    """The element temperature climbs during the ramp; from the failure on it is tripped (101)."""
    filt = FilterWearTrajectory(
        sample_s=60, threshold_bar=0.05, life_s=1e6, failure_at_s=10_000, failure_ramp_s=5_000
    )
    assert filt.failure is not None
    assert (filt.failure.t_s, filt.failure.name, filt.failure.fault_code) == (
        10_000,
        "element_overheating",
        101,
    )
    temps = [float(filt.values_at(t)["element_outlet_temp_c"]) for t in (0, 5_000, 7_500, 9_999)]
    assert temps == sorted(temps)
    assert float(temps[-1]) > 110
    assert filt.values_at(10_000)["fault_code"] == 101
    assert filt.values_at(1e8)["compressor_state"] == 5


def test_hydraulic_unit_replays_full_then_reduced_then_failing_cooler_cycle_by_cycle() -> None:
    """Row k is served during [k, k+1) * cycle_s with cycle_count k+1; the stages come in order."""
    (cycles,) = hydraulic_replays(rig(), 40, units=1)
    assert [c.cooler_pct for c in cycles] == [100.0] * 40 + [20.0] * 40 + [3.0] * 40
    unit = HydraulicTrajectory(cycles, cycle_s=3600)
    frame = rig()
    for k in (0, 1, 39, 40, 79):
        values = unit.values_at(k * 3600 + 1800)
        assert values == unit.values_at(k * 3600)
        assert {name: values[name] for name in SIGNALS.values()} == dict(cycles[k].values)
        row = frame.loc[cycles[k].rig_cycle]
        assert cycles[k].values == {name: float(row[name]) for name in SIGNALS.values()}
        assert (cycles[k].valve_pct, cycles[k].pump_leakage) == (
            row["valve_pct"],
            row["pump_leakage"],
        )
        assert values["cycle_count"] == k + 1
        assert (values["unit_state"], values["fault_code"]) == (1, 0)
    efficiency = [
        statistics.mean(c.values["cooling_efficiency_pct"] for c in cycles[a : a + 40])
        for a in (0, 40, 80)
    ]
    assert efficiency[0] > efficiency[1] + 10 > efficiency[2] + 10  # about 47, 27 and 19.6 %


def test_hydraulic_cooler_fails_at_the_first_cycle_close_to_total_failure_and_stays_failed() -> (
    None
):
    """The failure is the start of the first 3 % row; its rows go on, then the last one stays."""
    (cycles,) = hydraulic_replays(rig(), 40, units=1)
    unit = HydraulicTrajectory(cycles, cycle_s=60)
    failure = unit.failure
    assert failure.t_s == 80 * 60
    assert (failure.kind, failure.name, failure.fault_code) == ("failure", "cooler_failure", 11)
    assert failure.detail["rig_cycle"] == cycles[80].rig_cycle
    assert failure.detail["cycle_count"] == 81
    assert (failure.detail["cooler_pct"], failure.detail["valve_pct"]) == (
        3.0,
        cycles[80].valve_pct,
    )
    assert failure.detail["reduced_t_sim_s"] == 40 * 60
    assert unit.events == (failure,)
    before = unit.values_at(failure.t_s - 0.001)
    assert (before["unit_state"], before["fault_code"], before["cycle_count"]) == (1, 0, 80)
    for k in (80, 81, 119):
        values = unit.values_at(k * 60 + 30)
        assert (values["unit_state"], values["fault_code"], values["cycle_count"]) == (2, 11, k + 1)
        assert values["cooling_efficiency_pct"] == cycles[k].values["cooling_efficiency_pct"]
    for later in (120 * 60, 1e9):
        values = unit.values_at(later)
        assert (values["unit_state"], values["fault_code"], values["cycle_count"]) == (2, 11, 120)
        assert values["temp_ts1_c"] == cycles[-1].values["temp_ts1_c"]


def test_hydraulic_units_replay_only_held_out_rig_cycles_each_their_own() -> None:
    """No replayed cycle was available to the trainers; two units replay different cycles."""
    frame = rig()
    first, second = hydraulic_replays(frame, 40, units=2)
    (everything,) = hydraulic_replays(frame, None, units=1)
    for cycles in (first, second, everything):
        assert all(bool(frame.loc[c.rig_cycle, "holdout"]) for c in cycles)
    assert not {c.rig_cycle for c in first} & {c.rig_cycle for c in second}
    held_out = frame[frame["holdout"]]
    assert len(everything) == len(held_out) > 3 * 40
    assert [c.cooler_pct for c in everything] == sorted(
        (c.cooler_pct for c in everything), reverse=True
    )


def test_a_hydraulic_replay_without_a_failing_cooler_is_refused() -> None:
    """Rows that never reach the failure condition are an error naming what they reach."""
    healthy = RigCycle(0, {"temp_ts1_c": 35.0}, 100.0, 100.0, 0, 130.0, stable=True)
    with pytest.raises(ValueError, match=r"must reach the cooler condition 3 %.*Got \[100\.0\]"):
        HydraulicTrajectory([healthy], cycle_s=60)


# ---------------------------------------------------------------- devices


def make_engine(engines: Engines, **kwargs: Any) -> SimDevice:
    engine = CmapssTrajectory(engines[5], cycle_s=100, noise_sd={"t30_r": 0.5, "t50_r": 0.5})
    return SimDevice(
        name="e5",
        asset="engine-005",
        profile_id="turbomon_tm21_1.0",
        image=RegisterImage(TURBOFAN),
        trajectory=engine,
        **kwargs,
    )


def test_device_state_is_a_pure_function_of_seed_and_time(engines: Engines) -> None:
    """Whatever was asked before, the same seed and time give the same values (noise included)."""
    device = make_engine(engines, seed=7)
    times = [0, 150, 1234.5, 999, 150]
    first = [device.state_at(t).values for t in times]
    again = [device.state_at(t).values for t in reversed(times)][::-1]
    assert first == again
    other = make_engine(engines, seed=8)
    assert other.state_at(150).values["t30_r"] != device.state_at(150).values["t30_r"]
    assert other.state_at(150).values["t2_r"] == device.state_at(150).values["t2_r"]


def test_noise_is_constant_within_a_sample_step(engines: Engines) -> None:
    """Within one cycle the device serves one value; the next cycle draws anew."""
    device = make_engine(engines, seed=1)
    assert device.state_at(100).values == device.state_at(199.9).values
    assert device.state_at(100).values["t30_r"] != device.state_at(200).values["t30_r"]
    assert device.state_at(100).values["t30_r"] != engines[5][1]["t30_r"]


def test_dropouts_exceptions_and_offline_follow_their_windows(engines: Engines) -> None:
    """A dropped signal is None inside its window only; exceptions and offline likewise."""
    faults = FaultSchedule(
        dropouts={"t24_r": (Window(100, 300),)},
        exceptions=(Window(500, 600),),
        offline=(Window(700, 800),),
    )
    device = make_engine(engines, faults=faults)
    assert device.state_at(99).values["t24_r"] is not None
    assert device.state_at(100).values["t24_r"] is None
    assert device.state_at(250).values["t30_r"] is not None
    assert device.state_at(300).values["t24_r"] is not None
    assert device.state_at(550).exception_code == 4
    assert device.state_at(600).exception_code is None
    assert [device.state_at(t).online for t in (699, 700, 799, 800)] == [True, False, False, True]


def test_a_failed_device_stays_failed(engines: Engines) -> None:
    """From its failure time on, the state says failed, whatever the time."""
    device = make_engine(engines)
    failure = device.failure
    assert failure is not None
    assert not device.state_at(failure.t_s - 1).failed
    assert all(device.state_at(failure.t_s + dt).failed for dt in (0, 1, 1e3, 1e7))


# ---------------------------------------------------------------- register images


def turbofan_run() -> Trajectory:
    return CmapssTrajectory(read_cmapss_units(CMAPSS)[7], cycle_s=60)


def mill_run() -> Trajectory:
    return Ai4iTrajectory(read_ai4i(AI4I), 3000, 200, 60)


def compressor_run() -> Trajectory:
    return FilterWearTrajectory(60, 0.05, 6000, failure_at_s=9000)


def hydraulic_run() -> Trajectory:
    return HydraulicTrajectory(hydraulic_replays(rig(), 40, units=1)[0], cycle_s=60)


@pytest.mark.parametrize(
    ("profile", "make"),
    [
        (TURBOFAN, turbofan_run),
        (MILL, mill_run),
        (COMPRESSOR, compressor_run),
        (HPU, hydraulic_run),
    ],
    ids=["turbofan", "mill", "compressor", "hydraulic"],
)
def test_served_registers_decode_to_the_trajectory_values(
    profile: Profile, make: Callable[[], Trajectory]
) -> None:
    """The edge agent's own decoder reads back every served value within register precision."""
    trajectory = make()
    image = RegisterImage(profile)
    by_name = {s.name: s for s in profile.signals}
    for t in (0.0, 3100.0, 1e7):
        values = trajectory.values_at(t)
        decoded = decode_tables(profile, image.encode(values))
        assert set(decoded) == set(by_name)
        for name, value in values.items():
            assert matches(by_name[name], value, decoded[name]), (t, name, value, decoded[name])


def test_a_dropped_out_signal_decodes_as_bad() -> None:
    """None serves NaN for a float32 (bad: not_finite) and the sentinel for a scaled integer."""
    turbofan = RegisterImage(TURBOFAN)
    decoded = decode_tables(TURBOFAN, turbofan.encode({"t30_r": None, "t50_r": 1400.5}))
    assert decoded["t30_r"] == ("bad", "not_finite")
    assert decoded["t50_r"] == 1400.5
    compressor = RegisterImage(COMPRESSOR)
    decoded = decode_tables(COMPRESSOR, compressor.encode({"air_filter_dp_bar": None}))
    assert decoded["air_filter_dp_bar"] == ("bad", "sentinel")
    assert compressor.can_drop_out("air_filter_dp_bar")
    assert not compressor.can_drop_out("run_hours_h")
    hpu = RegisterImage(HPU)
    decoded = decode_tables(HPU, hpu.encode({"cooling_efficiency_pct": None, "temp_ts1_c": 44.5}))
    assert decoded["cooling_efficiency_pct"] == ("bad", "not_finite")
    assert decoded["temp_ts1_c"] == 44.5


def test_the_hydraulic_monitor_serves_every_value_little_endian() -> None:
    """The HCM-10 is DCBA throughout: 16-bit codes byte-swapped, 32-bit values low word first."""
    tables = RegisterImage(HPU).encode(
        {"temp_ts1_c": 1.0, "unit_state": 2, "fault_code": 11, "cycle_count": 0x00020005}
    )
    assert (tables.input[0], tables.input[1]) == (0x0000, 0x803F)  # 1.0 is 0x3F800000
    assert (tables.input[20], tables.input[21]) == (0x0200, 0x0B00)
    assert (tables.input[22], tables.input[23]) == (0x0500, 0x0200)
    assert (tables.input[1000], tables.input[1001]) == (0x4843, 100)  # identification: big-endian


def test_identification_registers_select_the_profile() -> None:
    """The served model code and firmware version make the agent pick the profile."""
    library = ProfileLibrary.load(PROFILES)
    for profile in (TURBOFAN, MILL, COMPRESSOR, HPU):
        tables = RegisterImage(profile).encode({})
        results = {}
        for request in library.identification_requests(unit=1):
            span = range(request.address, request.address + request.count)
            words = tables.holding if request.kind == "holding" else tables.input
            results[request] = BlockResult(1, words=[words.get(a, 0) for a in span])
        selection = library.select(results, unit=1)
        assert selection.profile is not None, selection.reason
        assert selection.profile.profile_id == profile.profile_id


def test_signals_in_names_the_values_a_request_covers() -> None:
    """Counting served values: only signals wholly inside the request count."""
    image = RegisterImage(TURBOFAN)
    assert image.signals_in("input", 0, 6) == ["altitude_kft", "mach", "throttle_resolver_angle"]
    assert image.signals_in("input", 1, 4) == ["mach"]
    assert image.signals_in("holding", 0, 100) == []


def test_an_ai4i_replay_starts_after_the_machines_previous_failure(ai4i: Rows) -> None:
    """No failure of any kind is served as a normal row before the one that ends the replay."""
    failures = ai4i_failure_rows(ai4i)
    row = next(f for f in failures[1:] if any(ai4i_row_failed(r) for r in ai4i[f - 50 : f]))
    mill = Ai4iTrajectory(ai4i, row, history_rows=50, row_s=60)
    assert mill.start_row > row - 50
    assert ai4i_row_failed(ai4i[mill.start_row - 1])
    assert not any(ai4i_row_failed(r) for r in ai4i[mill.start_row : row])


def test_a_tool_change_says_when_its_tool_reached_the_wear_limit(ai4i: Rows) -> None:
    """``limit_t_sim_s`` is the first row of that tool's life at or past the limit."""
    failure_row = _longest_run(ai4i)
    mill = Ai4iTrajectory(ai4i, failure_row, history_rows=400, row_s=1, tool_limit_min=200)
    changes = [e for e in mill.events if e.kind == "consumable_replaced"]
    with_limit = [e for e in changes if "limit_t_sim_s" in e.detail]
    assert with_limit
    for event in with_limit:
        reached = mill.start_row + int(float(event.detail["limit_t_sim_s"]))
        assert int(ai4i[reached]["Tool wear [min]"]) >= 200
        assert int(ai4i[reached - 1]["Tool wear [min]"]) < 200
    for event in changes:
        if "limit_t_sim_s" not in event.detail:
            assert int(event.detail["wear_before_min"]) < 200
