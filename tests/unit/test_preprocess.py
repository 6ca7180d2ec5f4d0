"""Edge pre-processing: deadband, window aggregates, usage counters and the pipeline."""

from __future__ import annotations

import ast
import json
import math
import statistics
from collections import defaultdict
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge_agent._model import Quality, Reading, Value
from edge_agent._preprocess import (
    USAGE_STATE_VERSION,
    AggregateConfig,
    Aggregator,
    Deadband,
    DeadbandConfig,
    DeadbandRule,
    OperatingHoursRule,
    Pipeline,
    Step,
    UsageConfig,
    UsageCounters,
    UsageRule,
)

T0 = 1_763_805_600_000
"""A start time on a whole minute (epoch ms), so windows of 10 s and 60 s start at it."""
ASSET = "pump-07"


@dataclass(frozen=True)
class Bad:
    """A failed read, in the tables below."""

    reason: str


def at(t_s: float, value: Value | Bad, signal: str = "temp_c", asset: str = ASSET) -> Reading:
    """A reading `t_s` seconds after T0: good with `value`, or bad with its reason."""
    ts_ms = T0 + round(t_s * 1000)
    if isinstance(value, Bad):
        return Reading.bad(asset, signal, ts_ms, value.reason)
    return Reading(asset, signal, ts_ms, value)


def by_signal(readings: list[Reading]) -> dict[str, list[Reading]]:
    out: dict[str, list[Reading]] = defaultdict(list)
    for reading in readings:
        out[reading.signal].append(reading)
    return dict(out)


def values(readings: list[Reading], signal: str) -> list[Value | None]:
    return [r.value for r in readings if r.signal == signal]


# ---------------------------------------------------------------------------------------- deadband

DEADBAND_CASES = [
    pytest.param(
        DeadbandRule(deadband_abs=0.5),
        [(0, 20.0), (1, 20.5), (2, 20.51), (3, 20.2), (4, 20.0)],
        [0, 2, 4],
        id="abs: a change equal to the band is suppressed, one beyond it is reported",
    ),
    pytest.param(
        DeadbandRule(deadband_pct=10),
        [(0, 100.0), (1, 109.0), (2, 111.0), (3, 100.0)],
        [0, 2],
        id="pct: the band is a percent of the last reported value",
    ),
    pytest.param(
        DeadbandRule(deadband_abs=0.1, deadband_pct=10),
        [(0, 0.0), (1, 0.05), (2, -0.08), (3, 0.2), (4, 0.21)],
        [0, 3],
        id="abs and pct: the wider band applies, so abs is the floor near zero",
    ),
    pytest.param(
        DeadbandRule(deadband_pct=10),
        [(0, 0.0), (1, 0.0), (2, 1e-9)],
        [0, 2],
        id="pct alone at zero: any change is reported, no change is not",
    ),
    pytest.param(
        DeadbandRule(),
        [(0, 5.0), (1, 5.0), (2, 5.0)],
        [0, 1, 2],
        id="deadband 0: every reading is reported, even an unchanged one",
    ),
    pytest.param(
        DeadbandRule(deadband_abs=1),
        [(0, 10), (1, 11), (2, 12)],
        [0, 2],
        id="ints use the same band",
    ),
    pytest.param(
        DeadbandRule(deadband_abs=1, heartbeat_s=10),
        [(0, 1.0), (9.999, 1.0), (10, 1.0), (15, 1.0), (20, 1.0)],
        [0, 2, 4],
        id="heartbeat: a flat signal is reported every heartbeat_s since the last report",
    ),
    pytest.param(
        DeadbandRule(deadband_abs=5),
        [(0, True), (1, True), (2, False), (3, False), (4, True)],
        [0, 2, 4],
        id="bool: reported on change",
    ),
    pytest.param(
        DeadbandRule(),
        [(0, "auto"), (1, "auto"), (2, "manual"), (3, "manual")],
        [0, 2],
        id="string: reported on change, even with deadband 0",
    ),
    pytest.param(
        DeadbandRule(deadband_abs=5),
        [(0, 1), (1, True), (2, 1)],
        [0, 1, 2],
        id="a change of type is a change: True is not 1",
    ),
    pytest.param(
        DeadbandRule(deadband_abs=100),
        [
            (0, 1.0),
            (1, Bad("timeout")),
            (2, Bad("timeout")),
            (3, Bad("exception_code_2")),
            (4, 1.0),
        ],
        [0, 1, 3, 4],
        id="quality: good to bad, another reason, and bad to good are reported",
    ),
    pytest.param(
        DeadbandRule(heartbeat_s=5),
        [(0, Bad("timeout")), (4, Bad("timeout")), (5, Bad("timeout"))],
        [0, 2],
        id="the same bad reason is repeated only on the heartbeat",
    ),
    pytest.param(
        DeadbandRule(deadband_abs=100),
        [(10, 1.0), (5, 1.0), (6, 1.0)],
        [0, 1],
        id="a reading older than the last report (clock step) is reported",
    ),
]


@pytest.mark.parametrize(("rule", "inputs", "reported"), DEADBAND_CASES)
def test_deadband_reports_what_the_rule_says(
    rule: DeadbandRule, inputs: list[tuple[float, Value | Bad]], reported: list[int]
) -> None:
    """Each row's readings are reported at exactly the listed positions, unchanged."""
    readings = [at(t, v) for t, v in inputs]
    out = Deadband(config=DeadbandConfig(default=rule)).process(readings)
    assert out == [readings[i] for i in reported]


def test_deadband_rules_are_per_signal_and_series_are_per_asset() -> None:
    """A signal's own rule overrides the default, and each asset's series is judged on its own."""
    config = DeadbandConfig(
        default=DeadbandRule(deadband_abs=10), signals={"flow": DeadbandRule(deadband_abs=0.1)}
    )
    readings = [
        at(0, 1.0, "temp_c"),
        at(0, 1.0, "flow"),
        at(0, 1.0, "temp_c", asset="pump-08"),
        at(1, 2.0, "temp_c"),
        at(1, 2.0, "flow"),
        at(1, 1.0, "temp_c", asset="pump-08"),
    ]
    out = Deadband(config=config).process(readings)
    assert out == [readings[0], readings[1], readings[2], readings[4]]


def test_deadband_without_config_passes_every_number() -> None:
    """A deadband step built without config passes every numeric reading on."""
    readings = [at(t, 1.0) for t in range(5)]
    assert Deadband().process(readings) == readings


def test_deadband_flush_emits_nothing() -> None:
    """A deadband holds nothing back, so flushing it returns nothing."""
    deadband = Deadband(config=DeadbandConfig(default=DeadbandRule(deadband_abs=1)))
    deadband.process([at(0, 1.0), at(1, 1.5)])
    assert deadband.flush(T0 + 10_000_000) == []


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (math.nan, "non_finite"),
        (math.inf, "non_finite"),
        (2**63, "out_of_range"),
        (None, "no_value"),
    ],
)
def test_a_value_the_contract_cannot_carry_is_reported_as_bad(value: Value, reason: str) -> None:
    """A good reading with NaN, infinity, an int beyond int64 or no value leaves as bad."""
    out = Deadband().process([at(0, 1.0), Reading(ASSET, "temp_c", T0 + 1000, value)])
    assert out[1] == Reading.bad(ASSET, "temp_c", T0 + 1000, reason)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"deadband_abs": -1.0},
        {"deadband_pct": math.nan},
        {"heartbeat_s": 0},
        {"heartbeat_s": 0.0001},
    ],
)
def test_a_deadband_rule_refuses_nonsense(kwargs: dict[str, float]) -> None:
    """A negative or NaN deadband, and a heartbeat under 1 ms, are refused at load."""
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        DeadbandRule(**kwargs)


def test_deadband_config_is_a_read_only_copy() -> None:
    """Changing the mapping a config was built from does not change the config."""
    signals = {"flow": DeadbandRule(deadband_abs=1)}
    config = DeadbandConfig(signals=signals)
    signals["temp_c"] = DeadbandRule()
    assert set(config.signals) == {"flow"}
    with pytest.raises(TypeError):
        config.signals["x"] = DeadbandRule()  # type: ignore[index]


@settings(max_examples=200)
@given(
    deadband_abs=st.floats(0.001, 100),
    deadband_pct=st.floats(0, 50),
    heartbeat_s=st.none() | st.floats(0.5, 30),
    steps=st.lists(
        st.tuples(st.integers(1, 5_000), st.floats(-1e6, 1e6)), min_size=1, max_size=100
    ),
)
def test_every_suppressed_value_is_within_the_band_of_the_last_reported_one(
    deadband_abs: float,
    deadband_pct: float,
    heartbeat_s: float | None,
    steps: list[tuple[int, float]],
) -> None:
    """Each suppressed value is within the band, and a heartbeat, of the last reported one.

    The first reading is reported, and the output is a subsequence of the input.
    """
    rule = DeadbandRule(
        deadband_abs=deadband_abs, deadband_pct=deadband_pct, heartbeat_s=heartbeat_s
    )
    readings, ts = [], T0
    for dt_ms, value in steps:
        ts += dt_ms
        readings.append(Reading(ASSET, "temp_c", ts, value))
    out = Deadband(config=DeadbandConfig(default=rule)).process(readings)
    assert 1 <= len(out) <= len(readings)
    assert out[0] is readings[0]
    reported = iter(out)
    last = next(reported)
    pending = next(reported, None)
    for reading in readings[1:]:
        if reading is pending:
            last, pending = pending, next(reported, None)
            continue
        assert isinstance(reading.value, float)
        assert isinstance(last.value, float)
        band = max(deadband_abs, deadband_pct / 100 * abs(last.value))
        assert abs(reading.value - last.value) <= band
        if heartbeat_s is not None:
            assert reading.ts_ms - last.ts_ms < heartbeat_s * 1000
    assert pending is None  # Every output is one of the inputs, in order.


@given(
    items=st.lists(
        st.one_of(
            st.floats(-10, 10),
            st.sampled_from([Bad("timeout"), Bad("no_response"), Bad("exception_code_2")]),
        ),
        min_size=2,
        max_size=60,
    ),
    deadband_abs=st.floats(0, 100),
)
def test_a_quality_change_is_never_suppressed(
    items: list[float | Bad], deadband_abs: float
) -> None:
    """A reading whose quality or bad reason differs from the previous one is always reported."""
    readings = [at(i, item) for i, item in enumerate(items)]
    out = Deadband(config=DeadbandConfig(default=DeadbandRule(deadband_abs=deadband_abs))).process(
        readings
    )
    reported = {id(r) for r in out}
    for previous, reading in pairwise(readings):
        if (previous.quality, previous.reason) != (reading.quality, reading.reason):
            assert id(reading) in reported


# -------------------------------------------------------------------------------------- aggregator


def aggregator(**kwargs: object) -> Aggregator:
    params: dict[str, object] = {"signals": ["vib"], "window_s": 10} | kwargs
    return Aggregator(config=AggregateConfig(**params))  # type: ignore[arg-type]


def test_a_reading_in_the_next_window_emits_min_mean_max_at_the_window_end() -> None:
    """A reading in a later window emits the open window's min, mean and max at its end.

    The aggregates are floats, and the raw readings do not leave.
    """
    end = T0 + 10_000
    agg = aggregator()
    assert agg.process([at(0, 1, "vib"), at(1, 2.0, "vib"), at(9.999, 6.0, "vib")]) == []
    out = agg.process([at(10, 100.0, "vib")])
    assert out == [
        Reading(ASSET, "vib_min", end, 1.0),
        Reading(ASSET, "vib_mean", end, 3.0),
        Reading(ASSET, "vib_max", end, 6.0),
    ]
    assert all(isinstance(r.value, float) for r in out)


def test_windows_are_aligned_on_multiples_of_their_length_since_the_epoch() -> None:
    """A 60 s window holds [hh:mm:00, hh:mm+1:00) wherever the first reading falls in it."""
    agg = aggregator(window_s=60)
    assert agg.window_start(T0 + 59_999) == T0
    assert agg.window_start(T0 + 60_000) == T0 + 60_000
    assert agg.window_start(T0 + 30_000) == T0
    agg.process([at(30, 1.0, "vib"), at(59.999, 3.0, "vib")])
    out = agg.process([at(60, 5.0, "vib")])
    assert {r.ts_ms for r in out} == {T0 + 60_000}
    assert values(out, "vib_mean") == [2.0]


def test_flush_closes_only_windows_that_have_ended_and_only_once() -> None:
    """flush(now_ms) emits the windows ended by now_ms, oldest first, and never emits one twice."""
    agg = aggregator()
    agg.process([at(5, 1.0, "vib"), at(5, 7.0, "vib", asset="pump-01")])
    assert agg.flush(T0 + 9_999) == []
    out = agg.flush(T0 + 10_000)
    assert [(r.asset, r.signal) for r in out] == [
        (ASSET, "vib_min"),
        (ASSET, "vib_mean"),
        (ASSET, "vib_max"),
        ("pump-01", "vib_min"),
        ("pump-01", "vib_mean"),
        ("pump-01", "vib_max"),
    ]
    assert agg.flush(T0 + 100_000) == []
    agg.process([at(25, 2.0, "vib"), at(12, 3.0, "vib", asset="pump-01")])
    assert [r.ts_ms for r in agg.flush(T0 + 60_000)] == [T0 + 20_000] * 3 + [T0 + 30_000] * 3


def test_grace_keeps_a_window_open_after_its_end() -> None:
    """With grace_s, flush leaves a window open until grace_s after its end, for late readings."""
    agg = aggregator(grace_s=2)
    agg.process([at(5, 1.0, "vib")])
    assert agg.flush(T0 + 11_999) == []
    agg.process([at(9.5, 3.0, "vib")])
    assert values(agg.flush(T0 + 12_000), "vib_mean") == [2.0]


def test_bad_readings_are_counted_but_never_enter_the_statistics() -> None:
    """Bad readings, NaN and non-numbers change neither min, mean nor max; they are counted."""
    agg = aggregator(emit_count=True)
    agg.process(
        [
            at(0, 1.0, "vib"),
            at(1, Bad("timeout"), "vib"),
            at(2, math.nan, "vib"),
            at(3, "oops", "vib"),
            at(4, 3.0, "vib"),
        ]
    )
    out = by_signal(agg.flush(T0 + 10_000))
    assert [out[s][0].value for s in ("vib_min", "vib_mean", "vib_max")] == [1.0, 2.0, 3.0]
    assert out["vib_count"][0].value == 2
    assert out["vib_bad_count"][0].value == 3
    assert all(r.quality is Quality.GOOD for rs in out.values() for r in rs)


def test_a_window_of_only_bad_readings_yields_bad_aggregates_with_the_reason() -> None:
    """A window without a good number yields bad min, mean and max with the last bad reason.

    Its counts are still good numbers.
    """
    agg = aggregator(emit_count=True)
    agg.process([at(0, Bad("timeout"), "vib"), at(1, Bad("exception_code_4"), "vib")])
    out = agg.flush(T0 + 10_000)
    end = T0 + 10_000
    assert out == [
        Reading.bad(ASSET, "vib_min", end, "exception_code_4"),
        Reading.bad(ASSET, "vib_mean", end, "exception_code_4"),
        Reading.bad(ASSET, "vib_max", end, "exception_code_4"),
        Reading(ASSET, "vib_count", end, 0),
        Reading(ASSET, "vib_bad_count", end, 2),
    ]


def test_a_window_of_only_strings_is_bad_as_not_numeric() -> None:
    """A window whose only readings are not numbers yields bad aggregates, reason not_numeric."""
    agg = aggregator()
    agg.process([at(0, "high", "vib")])
    assert {r.reason for r in agg.flush(T0 + 10_000)} == {"not_numeric"}


def test_other_signals_pass_through_in_order_and_keep_raw_keeps_the_raw_readings() -> None:
    """Other signals pass through in order; keep_raw also passes the aggregated raw readings.

    A closed window's aggregates come before the reading that closed it.
    """
    readings = [at(0, 1.0, "vib"), at(0, 5.0, "temp_c"), at(10, 2.0, "vib"), at(10, 6.0, "temp_c")]
    out = aggregator().process(readings)
    assert [r.signal for r in out] == ["temp_c", "vib_min", "vib_mean", "vib_max", "temp_c"]
    assert out[0] is readings[1]
    assert out[4] is readings[3]
    out = aggregator(keep_raw=True).process(readings)
    assert [r.signal for r in out] == [
        "vib",
        "temp_c",
        "vib_min",
        "vib_mean",
        "vib_max",
        "vib",
        "temp_c",
    ]


def test_a_reading_from_an_earlier_window_closes_the_open_one_and_loses_nothing() -> None:
    """When the clock steps back, the open window is emitted, and the earlier one opens again."""
    agg = aggregator(emit_count=True)
    out = agg.process([at(25, 1.0, "vib"), at(26, 2.0, "vib"), at(3, 3.0, "vib")])
    assert values(out, "vib_count") == [2]
    assert {r.ts_ms for r in out} == {T0 + 30_000}
    assert values(agg.flush(T0 + 10_000), "vib_count") == [1]


def test_ints_are_aggregated_as_floats() -> None:
    """Int readings give float aggregates, so each aggregate field keeps one type."""
    agg = aggregator()
    agg.process([at(0, 1, "vib"), at(1, 2, "vib")])
    out = agg.flush(T0 + 10_000)
    assert [type(r.value) for r in out] == [float, float, float]
    assert values(out, "vib_mean") == [1.5]


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"signals": "vib"}, TypeError, "signals"),
        ({"window_s": 0}, ValueError, "window_s"),
        ({"window_s": 0.0001}, ValueError, "window_s"),
        ({"grace_s": -1}, ValueError, "grace_s"),
        ({"signals": ["x" * 120]}, ValueError, "longer than"),
    ],
)
def test_an_aggregate_config_refuses_nonsense(
    kwargs: dict[str, object], error: type[Exception], match: str
) -> None:
    """An aggregate config refuses a bad signal list, window, grace or name length at load."""
    params: dict[str, object] = {"signals": ["vib"], "window_s": 10} | kwargs
    with pytest.raises(error, match=match):
        AggregateConfig(**params)  # type: ignore[arg-type]


@settings(max_examples=150)
@given(
    window_s=st.sampled_from([0.5, 1, 7, 10, 60]),
    samples=st.lists(
        st.tuples(
            st.integers(0, 3_000),
            st.one_of(st.floats(-1e6, 1e6), st.just(Bad("timeout"))),
        ),
        min_size=1,
        max_size=120,
    ),
)
def test_aggregates_match_a_reference_computation(
    window_s: float, samples: list[tuple[int, float | Bad]]
) -> None:
    """Aggregates over random readings and windows match a reference computation.

    Every window is emitted once, min and max are exact, the mean matches statistics.fmean,
    min <= mean <= max, and the counts add up to the input.
    """
    window_ms = round(window_s * 1000)
    readings, ts = [], T0 + 123
    for dt_ms, item in samples:
        ts += dt_ms
        readings.append(at((ts - T0) / 1000, item, "vib"))
    agg = aggregator(window_s=window_s, emit_count=True)
    out = agg.process(readings) + agg.flush(ts + window_ms)

    expected: dict[int, list[Reading]] = defaultdict(list)
    for r in readings:
        expected[r.ts_ms - r.ts_ms % window_ms + window_ms].append(r)
    got: dict[int, dict[str, Reading]] = defaultdict(dict)
    for r in out:
        assert r.signal not in got[r.ts_ms]
        got[r.ts_ms][r.signal] = r
    assert set(got) == set(expected)
    for end, window in expected.items():
        stats = got[end]
        good = [r.value for r in window if r.quality is Quality.GOOD]
        assert stats["vib_count"].value == len(good)
        assert stats["vib_bad_count"].value == len(window) - len(good)
        if not good:
            assert {stats[s].reason for s in ("vib_min", "vib_mean", "vib_max")} == {"timeout"}
            continue
        floats = [float(v) for v in good if isinstance(v, float)]
        low, mean, high = (stats[s].value for s in ("vib_min", "vib_mean", "vib_max"))
        assert isinstance(mean, float)
        assert low == min(floats)
        assert high == max(floats)
        assert low <= mean <= high
        assert math.isclose(mean, statistics.fmean(floats), rel_tol=1e-12, abs_tol=1e-9)


@given(st.lists(st.floats(allow_nan=False, allow_infinity=False), min_size=1, max_size=50))
def test_the_mean_of_extreme_floats_is_finite_and_between_min_and_max(xs: list[float]) -> None:
    """Even for values near the largest float, the mean neither overflows nor leaves [min, max]."""
    agg = aggregator()
    agg.process([at(i / 100, x, "vib") for i, x in enumerate(xs)])
    out = by_signal(agg.flush(T0 + 10_000))
    mean = out["vib_mean"][0].value
    assert isinstance(mean, float)
    assert math.isfinite(mean)
    assert min(xs) <= mean <= max(xs)


# ---------------------------------------------------------------------------------- usage counters


def hours_counters(**kwargs: object) -> UsageCounters:
    params: dict[str, object] = {"signal": "running", "max_gap_s": 30} | kwargs
    rule = OperatingHoursRule(**params)  # type: ignore[arg-type]
    return UsageCounters(config=UsageConfig(operating_hours=[rule]))


def last_value(readings: list[Reading], signal: str) -> Value | None:
    found = values(readings, signal)
    return found[-1] if found else None


def run(
    counters: UsageCounters, inputs: list[tuple[float, Value | Bad]], signal: str
) -> list[Reading]:
    return counters.process([at(t, v, signal) for t, v in inputs])


def test_an_hour_of_running_is_one_operating_hour() -> None:
    """Running for an hour, sampled every 10 s, accrues exactly 1.0 h."""
    out = run(hours_counters(), [(t, True) for t in range(0, 3601, 10)], "running")
    assert last_value(out, "operating_hours") == 1.0
    assert last_value(out, "starts") == 0


def test_operating_hours_do_not_accrue_over_a_gap_longer_than_max_gap() -> None:
    """A gap longer than max_gap_s accrues nothing, though the asset ran on both sides of it."""
    inputs: list[tuple[float, Value | Bad]] = [(t, True) for t in range(0, 61, 10)]
    inputs += [(t, True) for t in range(660, 721, 10)]
    out = run(hours_counters(), inputs, "running")
    assert last_value(out, "operating_hours") == 120 / 3600


def test_a_bad_reading_between_two_close_good_ones_loses_no_time() -> None:
    """A failed read between two good samples within max_gap_s does not stop the clock."""
    out = run(hours_counters(), [(0, True), (10, Bad("timeout")), (20, True)], "running")
    assert last_value(out, "operating_hours") == 20 / 3600
    assert values(out, "operating_hours") == [0.0, 20 / 3600]  # Nothing emitted for the bad one.


def test_time_accrues_at_the_earlier_samples_state() -> None:
    """Between two samples the earlier one's state holds: running then stopped counts."""
    out = run(hours_counters(), [(0, True), (10, False), (20, True), (30, True)], "running")
    assert last_value(out, "operating_hours") == 20 / 3600


def test_starts_count_rising_edges_and_not_the_first_sample() -> None:
    """A start is a stopped-to-running change, across a gap too; a first sample is none."""
    inputs: list[tuple[float, Value | Bad]] = [
        (0, True),
        (10, True),
        (20, False),
        (30, True),
        (40, False),
        (1000, True),
        (1010, True),
    ]
    out = run(hours_counters(), inputs, "running")
    assert values(out, "starts") == [0, 0, 0, 1, 1, 2, 2]


@pytest.mark.parametrize(
    ("stopped_below", "starts"), [(None, 2), (3.0, 1)], ids=["no hysteresis", "hysteresis"]
)
def test_hysteresis_stops_a_hovering_value_from_counting_starts(
    stopped_below: float | None, starts: int
) -> None:
    """With stopped_below, a running asset stays running until the value falls below it."""
    counters = hours_counters(signal="current_a", running_above=5.0, stopped_below=stopped_below)
    out = run(counters, [(0, 6.0), (10, 4.0), (20, 6.0), (30, 2.0), (40, 6.0)], "current_a")
    assert last_value(out, "starts") == starts


def test_running_values_match_states_and_a_bool_never_matches_an_int() -> None:
    """Running may be a set of state values; True does not match a state code of 1."""
    counters = hours_counters(signal="mode", running_values=("run", 3))
    out = run(counters, [(0, "run"), (10, 3), (20, 3.0), (30, "stop"), (40, True)], "mode")
    assert last_value(out, "operating_hours") == 30 / 3600
    counters = hours_counters()
    out = run(counters, [(0, 1), (10, 1)], "running")
    assert last_value(out, "operating_hours") == 0.0


def test_a_threshold_ignores_values_it_cannot_compare() -> None:
    """A string on a threshold signal changes and emits nothing."""
    counters = hours_counters(signal="current_a", running_above=5.0)
    out = run(counters, [(0, 6.0), (10, "n/a"), (20, 6.0)], "current_a")
    assert values(out, "operating_hours") == [0.0, 20 / 3600]


def counter_rule(**kwargs: object) -> UsageCounters:
    params: dict[str, object] = {"signal": "strokes", "name": "strokes_total", "kind": "counter"}
    rule = UsageRule(**(params | kwargs))  # type: ignore[arg-type]
    return UsageCounters(config=UsageConfig(counters=[rule]))


@pytest.mark.parametrize(
    ("kwargs", "series", "total"),
    [
        pytest.param({}, [100, 150, 200], 100, id="increments add up"),
        pytest.param({"scale": 0.5}, [100, 150, 200], 50, id="scale converts counts"),
        pytest.param(
            {"counter_modulus": 2**16}, [65_000, 65_500, 100], 500 + 136, id="16-bit wrap-around"
        ),
        pytest.param(
            {"counter_modulus": 2**32}, [2**32 - 10, 5, 25], 15 + 20, id="32-bit wrap-around"
        ),
        pytest.param({}, [1000, 5, 7], 7, id="a decrease without modulus is a reset from zero"),
        pytest.param(
            {"counter_modulus": 2**16},
            [20_000, 5],
            5,
            id="a decrease beyond half the modulus is a reset, not a wrap",
        ),
        pytest.param({}, [10, 10, 10], 0, id="an unchanged counter adds nothing"),
    ],
)
def test_a_device_counter_adds_its_increments(
    kwargs: dict[str, object], series: list[int], total: float
) -> None:
    """A counter total adds increments, detects wrap-around at the modulus and resets."""
    out = run(counter_rule(**kwargs), [(i, v) for i, v in enumerate(series)], "strokes")
    assert last_value(out, "strokes_total") == total


def test_a_device_counter_counts_across_an_offline_gap() -> None:
    """The device kept counting while the gateway could not read it: the increment is added."""
    out = run(counter_rule(), [(0, 100), (1, Bad("timeout")), (86_400, 900)], "strokes")
    assert last_value(out, "strokes_total") == 800


def rate_rule(**kwargs: object) -> UsageCounters:
    params: dict[str, object] = {"signal": "flow", "name": "pumped_m3", "kind": "rate"}
    rule = UsageRule(**(params | {"max_gap_s": 30} | kwargs))  # type: ignore[arg-type]
    return UsageCounters(config=UsageConfig(counters=[rule]))


def test_a_rate_is_integrated_with_trapezoids_in_its_time_unit() -> None:
    """A flow of 3600 m³/h for 10 s is 10 m³; a ramp from 0 to 10 per second over 10 s is 50."""
    out = run(rate_rule(rate_unit_s=3600), [(t, 3600.0) for t in range(11)], "flow")
    assert last_value(out, "pumped_m3") == pytest.approx(10.0)
    out = run(rate_rule(), [(0, 0.0), (10, 10.0)], "flow")
    assert last_value(out, "pumped_m3") == 50.0


def test_a_rate_is_not_integrated_over_a_gap_and_never_negative() -> None:
    """A gap longer than max_gap_s adds nothing, and a negative rate counts as zero."""
    out = run(rate_rule(), [(0, 1.0), (10, 1.0), (100, 1.0), (110, -5.0), (120, -5.0)], "flow")
    assert last_value(out, "pumped_m3") == 10.0 + 5.0
    totals = values(out, "pumped_m3")
    assert totals == sorted(totals)  # type: ignore[type-var]


def test_usage_passes_readings_through_and_follows_each_with_its_totals() -> None:
    """Every reading passes unchanged, each good source reading followed by its asset's totals."""
    counters = hours_counters(assets=["pump-07"])
    readings = [
        at(0, signal="running", value=True),
        at(0, 1.0, "temp_c"),
        at(0, signal="running", value=True, asset="pump-08"),
    ]
    out = counters.process(readings)
    assert out == [
        readings[0],
        Reading(ASSET, "operating_hours", T0, 0.0),
        Reading(ASSET, "starts", T0, 0),
        readings[1],
        readings[2],
    ]
    assert counters.flush(T0 + 10**9) == []


def full_usage_config() -> UsageConfig:
    return UsageConfig(
        operating_hours=[OperatingHoursRule(signal="current_a", running_above=2.0, max_gap_s=15)],
        counters=[
            UsageRule(
                signal="strokes", name="strokes_total", kind="counter", counter_modulus=2**16
            ),
            UsageRule(signal="flow", name="pumped_m3", kind="rate", rate_unit_s=3600, max_gap_s=15),
        ],
    )


usage_readings = st.lists(
    st.tuples(
        st.integers(0, 30_000),
        st.sampled_from(["pump-07", "pump-08"]),
        st.one_of(
            st.tuples(st.just("current_a"), st.floats(0, 10) | st.just(Bad("timeout"))),
            st.tuples(st.just("strokes"), st.integers(0, 2**16 - 1)),
            st.tuples(st.just("flow"), st.floats(-1, 500)),
        ),
    ),
    max_size=60,
)


@given(samples=usage_readings, split=st.integers(0, 60))
def test_counters_continue_exactly_from_state_saved_as_json(
    samples: list[tuple[int, str, tuple[str, float | Bad]]], split: int
) -> None:
    """State saved through JSON at any point and restored continues exactly like a nonstop run."""
    readings, ts = [], T0
    for dt_ms, asset, (signal, value) in samples:
        ts += dt_ms
        readings.append(at((ts - T0) / 1000, value, signal, asset))
    before, after = readings[:split], readings[split:]
    config = full_usage_config()
    nonstop = UsageCounters(config=config)
    nonstop.process(before)
    expected = nonstop.process(after)

    first = UsageCounters(config=config)
    first.process(before)
    saved = json.loads(json.dumps(first.to_state()))
    restored = UsageCounters.from_state(saved, config=config)
    assert restored.process(after) == expected
    assert restored.to_state() == nonstop.to_state()


def test_state_has_a_version_and_another_version_is_refused() -> None:
    """The state carries its schema version; a state of another version is refused by name."""
    state = counter_rule().to_state()
    assert state["version"] == USAGE_STATE_VERSION
    with pytest.raises(ValueError, match=r"version must be 1\. Got 2"):
        UsageCounters.from_state(state | {"version": 2}, config=UsageConfig())


@pytest.mark.parametrize(
    ("state", "match"),
    [
        ({"version": 1, "usage": []}, "operating_hours must be a list"),
        ({"version": 1, "operating_hours": [1], "usage": []}, r"operating_hours\[0\] must be an"),
        (
            {"version": 1, "operating_hours": [{"asset": "a", "name": "h"}], "usage": []},
            r"operating_hours\[0\] has no 'running_ms'",
        ),
        (
            {
                "version": 1,
                "operating_hours": [
                    {
                        "asset": "a",
                        "name": "h",
                        "running_ms": True,
                        "starts": 0,
                        "last_ts_ms": None,
                        "running": None,
                    }
                ],
                "usage": [],
            },
            r"operating_hours\[0\].running_ms must be an integer",
        ),
        (
            {
                "version": 1,
                "operating_hours": [],
                "usage": [
                    {
                        "asset": "a",
                        "name": "u",
                        "kind": "rate",
                        "total": "1",
                        "compensation": 0.0,
                        "last_ts_ms": None,
                        "last_value": None,
                    }
                ],
            },
            r"usage\[0\].total must be a finite number",
        ),
        (
            {
                "version": 1,
                "operating_hours": [],
                "usage": [
                    {
                        "asset": "a",
                        "name": "u",
                        "kind": "gauge",
                        "total": 1.0,
                        "compensation": 0.0,
                        "last_ts_ms": None,
                        "last_value": None,
                    }
                ],
            },
            r"usage\[0\].kind must be",
        ),
    ],
)
def test_a_malformed_state_is_refused_naming_the_entry_and_key(
    state: dict[str, object], match: str
) -> None:
    """A state with a missing part or a value of the wrong type is refused, naming where."""
    with pytest.raises(ValueError, match=match):
        UsageCounters.from_state(state, config=UsageConfig())


def test_a_repeated_state_entry_is_refused() -> None:
    """Two entries for the same asset and name are refused rather than one silently winning."""
    counters = hours_counters()
    counters.process([at(0, signal="running", value=True)])
    state = counters.to_state()
    entries = state["operating_hours"]
    assert isinstance(entries, list)
    with pytest.raises(ValueError, match="repeats"):
        UsageCounters.from_state(state | {"operating_hours": entries * 2}, config=UsageConfig())


def test_state_the_config_no_longer_names_is_kept() -> None:
    """Restoring with a config that dropped a rule keeps that rule's totals in the next state."""
    counters = hours_counters()
    run(counters, [(0, True), (10, True)], "running")
    state = json.loads(json.dumps(counters.to_state()))
    restored = UsageCounters.from_state(state, config=UsageConfig())
    assert restored.to_state() == state


def test_a_rule_that_changes_kind_keeps_its_total_and_starts_a_new_baseline() -> None:
    """A rule changed from counter to rate keeps its total; the first rate sample is a baseline."""
    counters = counter_rule(name="usage")
    run(counters, [(0, 100), (1, 160)], "strokes")
    state = json.loads(json.dumps(counters.to_state()))
    rate = UsageRule(signal="strokes", name="usage", kind="rate", max_gap_s=30)
    restored = UsageCounters.from_state(state, config=UsageConfig(counters=[rate]))
    out = run(restored, [(2, 1000.0), (3, 1000.0)], "strokes")
    assert values(out, "usage") == [60.0, 1060.0]


@pytest.mark.parametrize(
    ("build", "error", "match"),
    [
        (lambda: OperatingHoursRule(signal="s", max_gap_s=0), ValueError, "max_gap_s"),
        (
            lambda: OperatingHoursRule(signal="s", max_gap_s=9, running_above=1, stopped_below=2),
            ValueError,
            "stopped_below must be at most",
        ),
        (lambda: OperatingHoursRule(signal="s", max_gap_s=9, stopped_below=2), ValueError, "needs"),
        (
            lambda: OperatingHoursRule(signal="s", max_gap_s=9, running_values=()),
            ValueError,
            "running_values",
        ),
        (
            lambda: OperatingHoursRule(signal="s", max_gap_s=9, starts_name="operating_hours"),
            ValueError,
            "must differ",
        ),
        (lambda: OperatingHoursRule(signal="s", max_gap_s=9, assets="p1"), TypeError, "assets"),
        (lambda: UsageRule(signal="s", name="n", kind="rate"), ValueError, "max_gap_s is required"),
        (
            lambda: UsageRule(signal="s", name="n", kind="counter", max_gap_s=5),
            ValueError,
            "keeps counting",
        ),
        (
            lambda: UsageRule(signal="s", name="n", kind="rate", max_gap_s=5, counter_modulus=9),
            ValueError,
            "counter_modulus",
        ),
        (lambda: UsageRule(signal="s", name="n", kind="gauge"), ValueError, "kind"),  # type: ignore[arg-type]
        (lambda: UsageRule(signal="s", name="n", kind="counter", scale=0), ValueError, "scale"),
        (
            lambda: UsageRule(signal="s", name="n", kind="counter", rate_unit_s=60),
            ValueError,
            "rate_unit_s applies",
        ),
        (
            lambda: UsageConfig(
                operating_hours=[OperatingHoursRule(signal="a", max_gap_s=9)],
                counters=[UsageRule(signal="b", name="starts", kind="counter")],
            ),
            ValueError,
            "'starts' for the same assets",
        ),
    ],
)
def test_usage_rules_refuse_nonsense(build: object, error: type[Exception], match: str) -> None:
    """Usage rules refuse impossible or misplaced settings and clashing names at load."""
    assert callable(build)
    with pytest.raises(error, match=match):
        build()


def test_rules_may_share_a_name_for_disjoint_assets() -> None:
    """Two rules may emit operating_hours for different assets, each with its own threshold."""
    config = UsageConfig(
        operating_hours=[
            OperatingHoursRule(signal="current_a", running_above=5, max_gap_s=30, assets=["p1"]),
            OperatingHoursRule(signal="current_a", running_above=50, max_gap_s=30, assets=["p2"]),
        ]
    )
    out = UsageCounters(config=config).process(
        [
            at(0, 10.0, "current_a", "p1"),
            at(0, 10.0, "current_a", "p2"),
            at(10, 10.0, "current_a", "p1"),
            at(10, 10.0, "current_a", "p2"),
        ]
    )
    hours = {(r.asset, r.ts_ms): r.value for r in out if r.signal == "operating_hours"}
    assert hours[("p1", T0 + 10_000)] == 10 / 3600
    assert hours[("p2", T0 + 10_000)] == 0.0


# ---------------------------------------------------------------------------------------- pipeline


def pipeline_steps() -> list[DeadbandConfig | AggregateConfig | UsageConfig]:
    return [
        UsageConfig(operating_hours=[OperatingHoursRule(signal="running", max_gap_s=30)]),
        AggregateConfig(signals=["vib"], window_s=10),
        DeadbandConfig(
            default=DeadbandRule(deadband_abs=0.5, heartbeat_s=600),
            signals={"operating_hours": DeadbandRule(deadband_abs=0.1, heartbeat_s=3600)},
        ),
    ]


def test_the_pipeline_chains_steps_in_order() -> None:
    """Steps run in order: usage sees raw readings, then aggregation, then the deadband.

    The deadband thins everything that leaves, totals and aggregates included.
    """
    pipeline = Pipeline(steps=pipeline_steps())
    out = pipeline.process(
        [at(t, signal="running", value=True) for t in range(0, 120, 10)]
        + [at(t / 10, 3.0, "vib") for t in range(150)]
    )
    signals = by_signal(out)
    assert [r.value for r in signals["operating_hours"]] == [0.0]  # 110 s is within its 0.1 h band.
    assert [r.value for r in signals["running"]] == [True]
    assert [r.value for r in signals["starts"]] == [0]
    assert [r.ts_ms for r in signals["vib_mean"]] == [T0 + 10_000]
    assert "vib" not in signals


def test_a_flush_flows_through_the_later_steps() -> None:
    """What a step flushes passes the steps after it: the deadband thins flushed aggregates."""
    pipeline = Pipeline(steps=pipeline_steps())
    pipeline.process([at(1, 3.0, "vib")])
    first = pipeline.flush(T0 + 10_000)
    assert {r.signal for r in first} == {"vib_min", "vib_mean", "vib_max"}
    pipeline.process([at(11, 3.2, "vib")])
    assert pipeline.flush(T0 + 20_000) == []
    pipeline.process([at(21, 4.0, "vib")])
    assert {r.signal for r in pipeline.flush(T0 + 30_000)} == {"vib_min", "vib_mean", "vib_max"}


def test_the_pipeline_state_round_trips_through_json_and_keeps_unknown_steps() -> None:
    """A pipeline restored from JSON continues its counters and keeps unknown steps' state."""
    pipeline = Pipeline(steps=pipeline_steps())
    pipeline.process([at(t, signal="running", value=True) for t in range(0, 3600, 10)])
    saved = json.loads(json.dumps(pipeline.to_state()))
    saved["steps"]["old_usage"] = {"version": 1, "operating_hours": [], "usage": []}
    restored = Pipeline.from_state(saved, steps=pipeline_steps())
    out = restored.process([at(3600, signal="running", value=True)])
    assert values(out, "operating_hours") == [1.0]
    assert restored.to_state()["steps"] == json.loads(json.dumps(restored.to_state()))["steps"]
    steps = restored.to_state()["steps"]
    assert isinstance(steps, dict)
    assert set(steps) == {"usage", "old_usage"}


@pytest.mark.parametrize(
    ("state", "match"),
    [({"version": 9, "steps": {}}, "version must be 1"), ({"version": 1}, "steps must be")],
)
def test_a_pipeline_refuses_a_state_of_another_version_or_shape(
    state: dict[str, object], match: str
) -> None:
    """Restoring refuses a state of another version or without its steps."""
    with pytest.raises(ValueError, match=match):
        Pipeline.from_state(state, steps=[])


def test_pipeline_steps_need_unique_names() -> None:
    """Two steps with one name are refused, since the name keys the saved state."""
    with pytest.raises(ValueError, match="'usage' is used more than once"):
        Pipeline(steps=[UsageConfig(), UsageConfig()])
    Pipeline(steps=[UsageConfig(), UsageConfig(name="usage_2")])


def test_every_step_is_a_processor() -> None:
    """Each step offers the Step protocol's process and flush."""
    steps: list[Step] = list(Pipeline(steps=pipeline_steps()).steps)
    assert [type(s) for s in steps] == [UsageCounters, Aggregator, Deadband]


def test_preprocessing_is_pure() -> None:
    """No pre-processing module imports a clock, I/O, logging or concurrency."""
    impure = {"time", "datetime", "asyncio", "socket", "os", "pathlib", "logging", "structlog"}
    impure |= {"random", "threading", "subprocess", "io", "sqlite3"}
    package = Path(__file__).resolve().parents[2] / "edge_agent" / "_preprocess"
    for path in sorted(package.glob("*.py")):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            assert not {name.split(".")[0] for name in names} & impure, path.name
