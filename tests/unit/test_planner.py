"""The read planner: fewest requests within the limits, a decoder per signal, bad hides no good."""

from __future__ import annotations

import math
import struct
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge_agent._exceptions import ConfigError
from edge_agent._model import BlockResult, PollPlan, Quality, Reading, ReadRequest
from edge_agent._planner import (
    CompiledPlan,
    PlanLimits,
    compile_plan,
    encode_write,
    shortest_float32,
    theoretical_min_requests,
)
from edge_agent._profile import Profile, load_profile

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = sorted((ROOT / "firmware_profiles").glob("*.yaml"))
TS = 1_763_805_599_000


def profile(*signals: dict[str, Any], **extra: Any) -> Profile:
    """A profile with these signals (name, kind and type filled in when absent)."""
    filled = []
    for index, signal in enumerate(signals):
        kind = signal.get("kind", "holding")
        default_type = "bool" if kind in {"coil", "discrete"} else "uint16"
        filled.append({"name": f"s{index}", "kind": kind, "type": default_type, **signal})
    return Profile.model_validate(
        {"vendor": "Acme", "model": "P-1", "firmware": "1", "signals": filled, **extra}
    )


def spans(plan: CompiledPlan) -> list[tuple[str, int, int]]:
    return [(r.kind, r.address, r.count) for r in plan.requests]


def answer_all(
    plan: CompiledPlan, words: dict[int, int], bits: dict[int, bool] | None = None
) -> dict[ReadRequest, BlockResult]:
    """Answer every request from one address -> word map (bits for bit tables); unknown reads 0."""
    results = {}
    for request in plan.requests:
        span = range(request.address, request.address + request.count)
        if request.kind in {"coil", "discrete"}:
            results[request] = BlockResult(TS, bits=[(bits or {}).get(a, False) for a in span])
        else:
            results[request] = BlockResult(TS, words=[words.get(a, 0) for a in span])
    return results


def by_signal(readings: list[Reading]) -> dict[str, Reading]:
    return {reading.signal: reading for reading in readings}


# ---------------------------------------------------------------- merging


def test_adjacent_signals_share_one_request() -> None:
    """Neighbouring registers of one table and interval are read by one request."""
    plan = compile_plan(
        profile(
            {"address": 0, "type": "float32"}, {"address": 2}, {"address": 3, "type": "uint32"}
        ),
        asset="a",
        unit=1,
    )
    assert spans(plan) == [("holding", 0, 5)]
    assert [(slot.signal.name, slot.offset) for slot in plan.slots] == [
        ("s0", 0),
        ("s1", 2),
        ("s2", 3),
    ]


@pytest.mark.parametrize(("gap", "requests"), [(0, 1), (3, 1), (4, 2), (100, 2)])
def test_signals_merge_across_gaps_up_to_max_gap(gap: int, requests: int) -> None:
    """A gap of at most max_gap unused registers is read through; a wider one splits."""
    plan = compile_plan(
        profile({"address": 10}, {"address": 11 + gap}),
        asset="a",
        unit=1,
        limits=PlanLimits(max_gap_registers=3),
    )
    assert len(plan.requests) == requests
    if requests == 1:
        assert spans(plan) == [("holding", 10, gap + 2)]


def test_max_gap_zero_reads_only_mapped_registers() -> None:
    """With max_gap 0 (a device that refuses unmapped addresses) nothing unused is ever read."""
    plan = compile_plan(
        profile({"address": 0}, {"address": 2}, {"address": 3}),
        asset="a",
        unit=1,
        limits=PlanLimits(max_gap_registers=0),
    )
    assert spans(plan) == [("holding", 0, 1), ("holding", 2, 2)]


def test_requests_never_exceed_max_registers_nor_split_a_value() -> None:
    """A 32-bit value that would cross the limit starts the next request instead."""
    plan = compile_plan(
        profile(
            {"address": 0}, {"address": 1, "type": "float32"}, {"address": 3, "type": "float32"}
        ),
        asset="a",
        unit=1,
        limits=PlanLimits(max_registers=4),
    )
    assert spans(plan) == [("holding", 0, 3), ("holding", 3, 2)]


def test_125_registers_is_one_request_and_126_are_two() -> None:
    """The protocol's 125-register limit is the default."""
    exactly = compile_plan(
        profile({"address": 0}, {"address": 124}),
        asset="a",
        unit=1,
        limits=PlanLimits(max_gap_registers=200),
    )
    over = compile_plan(
        profile({"address": 0}, {"address": 125}),
        asset="a",
        unit=1,
        limits=PlanLimits(max_gap_registers=200),
    )
    assert spans(exactly) == [("holding", 0, 125)]
    assert spans(over) == [("holding", 0, 1), ("holding", 125, 1)]


def test_bits_merge_up_to_max_bits() -> None:
    """Coils and discrete inputs pack by bits: 2000 per request, gaps in bits."""
    signals = [{"kind": "coil", "address": a} for a in (0, 100, 1999, 2000, 2300, 2600)]
    plan = compile_plan(profile(*signals), asset="a", unit=1, limits=PlanLimits(max_gap_bits=2000))
    assert spans(plan) == [("coil", 0, 2000), ("coil", 2000, 601)]
    default = compile_plan(profile(*signals), asset="a", unit=1)
    assert spans(default) == [
        ("coil", 0, 101),
        ("coil", 1999, 2),
        ("coil", 2300, 1),
        ("coil", 2600, 1),
    ]


def test_shared_registers_are_read_once() -> None:
    """Bit fields of one status word, and overlapping values, share the registers they cover."""
    plan = compile_plan(
        profile(
            {"address": 8, "type": "bool", "bit": 0},
            {"address": 8, "type": "bool", "bit": 3},
            {"address": 8, "type": "bits", "bit_range": [8, 9]},
            {"address": 8, "type": "uint32"},
        ),
        asset="a",
        unit=1,
    )
    assert spans(plan) == [("holding", 8, 2)]


def test_tables_and_units_are_never_mixed() -> None:
    """Holding, input, coil and discrete signals at the same address make four requests."""
    plan = compile_plan(
        profile(
            {"kind": "holding", "address": 0},
            {"kind": "input", "address": 0},
            {"kind": "coil", "address": 0},
            {"kind": "discrete", "address": 0},
        ),
        asset="a",
        unit=7,
    )
    assert spans(plan) == [("holding", 0, 1), ("input", 0, 1), ("coil", 0, 1), ("discrete", 0, 1)]
    assert {request.unit for request in plan.requests} == {7}


# ---------------------------------------------------------------- groups


def test_signals_are_grouped_by_interval_fastest_first() -> None:
    """Signals polled at different rates never share a request; groups come fastest first."""
    plan = compile_plan(
        profile(
            {"address": 0, "interval_s": 60},
            {"address": 1, "interval_s": 1},
            {"address": 2, "interval_s": 60},
            {"address": 3, "interval_s": 1},
        ),
        asset="a",
        unit=1,
    )
    assert [group.interval_s for group in plan.groups] == [1.0, 60.0]
    assert [[(r.address, r.count) for r in g.requests] for g in plan.groups] == [[(1, 3)], [(0, 3)]]


def test_a_slower_signal_rides_along_with_an_identical_faster_request() -> None:
    """Bits of one status word polled at two rates make one request, in the faster group."""
    plan = compile_plan(
        profile(
            {"address": 8, "type": "bool", "bit": 0, "interval_s": 1},
            {"address": 8, "type": "bits", "bit_range": [8, 9], "interval_s": 60},
            {"address": 40, "interval_s": 60},
        ),
        asset="a",
        unit=1,
    )
    assert [(g.interval_s, [(r.address, r.count) for r in g.requests]) for g in plan.groups] == [
        (1.0, [(8, 1)]),
        (60.0, [(40, 1)]),
    ]
    assert [(slot.signal.name, slot.interval_s) for slot in plan.slots] == [
        ("s0", 1.0),
        ("s1", 1.0),
        ("s2", 60.0),
    ]
    fast = {request: BlockResult(TS, words=[0x0201]) for request in plan.groups[0].requests}
    assert [(r.signal, r.value) for r in plan.decode(fast)] == [("s0", True), ("s1", 2)]


def test_interval_overrides_and_signal_subsets() -> None:
    """A device configuration may poll a subset, and change a signal's interval."""
    source = profile({"address": 0}, {"address": 1}, {"address": 2}, defaults={"interval_s": 5})
    plan = compile_plan(source, asset="a", unit=1, signals=["s0", "s2"], intervals_s={"s2": 0.5})
    assert [(g.interval_s, [(r.address, r.count) for r in g.requests]) for g in plan.groups] == [
        (0.5, [(2, 1)]),
        (5.0, [(0, 1)]),
    ]
    assert {slot.signal.name: slot.interval_s for slot in plan.slots} == {"s0": 5.0, "s2": 0.5}


def test_decoding_one_group_yields_only_its_signals() -> None:
    """A poll of the fast group decodes the fast signals; the slow ones wait for their turn."""
    plan = compile_plan(
        profile({"address": 0, "interval_s": 1}, {"address": 1, "interval_s": 60}),
        asset="a",
        unit=1,
    )
    fast = plan.groups[0]
    results = {request: BlockResult(TS, words=[5]) for request in fast.requests}
    assert [(r.signal, r.value) for r in plan.decode(results)] == [("s0", 5)]


# ---------------------------------------------------------------- limits


def test_profile_request_limits_narrow_the_device_limits() -> None:
    """A device model that reads at most 4 registers per request gets at most 4."""
    source = profile(*({"address": a} for a in range(10)), request_limits={"max_registers": 4})
    plan = compile_plan(source, asset="a", unit=1)
    assert spans(plan) == [("holding", 0, 4), ("holding", 4, 4), ("holding", 8, 2)]
    assert plan.limits.max_registers == 4
    assert plan.limits.max_bits == 2000


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_registers": 126}, "max_registers must be between 1 and 125. Got 126 instead."),
        ({"max_registers": 0}, "max_registers must be between 1 and 125. Got 0 instead."),
        ({"max_bits": 2001}, "max_bits must be between 1 and 2000. Got 2001 instead."),
        ({"max_gap_registers": -1}, "max_gap_registers must be >= 0. Got -1 instead."),
        ({"max_gap_bits": 1.5}, "max_gap_bits must be an integer. Got 1.5 instead."),
    ],
)
def test_plan_limits_are_validated(kwargs: dict[str, Any], message: str) -> None:
    """Limits outside the protocol are configuration errors naming the key."""
    with pytest.raises(ConfigError) as caught:
        PlanLimits(**kwargs)
    assert str(caught.value) == message
    assert caught.value.key == next(iter(kwargs))


def test_configuration_mistakes_are_config_errors() -> None:
    """Unknown signals, bad intervals and units, and too-wide values stop startup clearly."""
    source = profile(
        {"name": "flow_m3_h", "address": 0, "type": "float32"},
        {"name": "serial", "address": 10, "type": "string", "length_words": 60},
    )
    with pytest.raises(
        ConfigError,
        match=r"signals: 'flow_m3' is not a signal of profile .* \(did you mean 'flow_m3_h'\?\)",
    ):
        compile_plan(source, asset="a", unit=1, signals=["flow_m3"])
    with pytest.raises(
        ConfigError, match=r"intervals_s.flow_m3_h must be a number > 0. Got 0 instead."
    ):
        compile_plan(source, asset="a", unit=1, intervals_s={"flow_m3_h": 0})
    with pytest.raises(ConfigError, match=r"unit must be a Modbus unit id 0\.\.255\. Got 256"):
        compile_plan(source, asset="a", unit=256)
    with pytest.raises(ConfigError, match="selects no signal"):
        compile_plan(source, asset="a", unit=1, signals=[])
    with pytest.raises(ConfigError, match="'serial' spans 60 registers, more than the 50"):
        compile_plan(source, asset="a", unit=1, limits=PlanLimits(max_registers=50))


# ---------------------------------------------------------------- optimality


@st.composite
def layouts(draw: st.DrawFn) -> list[dict[str, Any]]:
    """Random register maps: mixed widths, tables, intervals, overlaps and gaps."""
    count = draw(st.integers(1, 25))
    signals = []
    for _ in range(count):
        kind = draw(st.sampled_from(["holding", "input", "coil"]))
        signal: dict[str, Any] = {"kind": kind, "address": draw(st.integers(0, 600))}
        if kind != "coil":
            signal["type"] = draw(st.sampled_from(["uint16", "float32", "int64"]))
        signal["interval_s"] = draw(st.sampled_from([1, 5]))
        signals.append(signal)
    return signals


@settings(max_examples=150, deadline=None)
@given(
    signals=layouts(),
    max_registers=st.integers(4, 125),
    max_bits=st.integers(1, 2000),
    max_gap=st.integers(0, 40),
)
def test_plans_respect_every_rule(
    signals: list[dict[str, Any]], max_registers: int, max_bits: int, max_gap: int
) -> None:
    """Every signal lies inside one request of its group, and no request is too big.

    Plans reach the theoretical minimum when gaps are unlimited and never beat it otherwise.
    """
    source = profile(*signals)
    limits = PlanLimits(
        max_registers=max_registers,
        max_bits=max_bits,
        max_gap_registers=max_gap,
        max_gap_bits=max_gap,
    )
    plan = compile_plan(source, asset="a", unit=1, limits=limits)

    assert sorted(slot.signal.name for slot in plan.slots) == sorted(s.name for s in source.signals)
    for group in plan.groups:
        for request in group.requests:
            assert request.count <= (max_bits if request.kind == "coil" else max_registers)
    for slot in plan.slots:
        assert slot.request.kind == slot.signal.kind
        assert slot.request.address + slot.offset == slot.signal.address
        assert slot.offset >= 0
        assert slot.end <= slot.request.count
        [group] = [g for g in plan.groups if slot.request in g.requests]
        assert group.interval_s == slot.interval_s <= slot.signal.interval_s
    assert len(plan.requests) == len(set(plan.requests))

    minimum = theoretical_min_requests(source, limits)
    assert len(plan.requests) >= minimum
    unlimited = PlanLimits(
        max_registers=max_registers, max_bits=max_bits, max_gap_registers=70000, max_gap_bits=70000
    )
    assert len(compile_plan(source, asset="a", unit=1, limits=unlimited).requests) == minimum


@pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_shipped_profiles_reach_the_theoretical_minimum(path: Path) -> None:
    """With the default limits, every shipped profile is read in the fewest possible requests."""
    source = load_profile(path)
    plan = compile_plan(source, asset="a", unit=1)
    assert len(plan.requests) == theoretical_min_requests(source)


def test_the_minimum_counts_groups_separately() -> None:
    """Signals at different intervals need their own requests even when adjacent."""
    source = profile(
        {"address": 0, "interval_s": 1},
        {"address": 1, "interval_s": 2},
        {"address": 2, "interval_s": 1},
    )
    assert theoretical_min_requests(source) == 2
    assert theoretical_min_requests(source, intervals_s={"s1": 1}) == 1


# ---------------------------------------------------------------- decoding


def test_a_failed_block_makes_its_signals_bad_and_leaves_the_others() -> None:
    """One request's timeout makes exactly its signals bad, with its reason; others decode."""
    source = profile({"address": 0}, {"address": 1}, {"address": 100})
    plan = compile_plan(source, asset="pump-07", unit=1)
    first, second = plan.requests
    readings = plan.decode(
        {
            first: BlockResult(TS, error="timeout"),
            second: BlockResult(TS + 5, words=[42]),
        }
    )
    assert readings == [
        Reading.bad("pump-07", "s0", TS, "timeout"),
        Reading.bad("pump-07", "s1", TS, "timeout"),
        Reading("pump-07", "s2", TS + 5, 42),
    ]


def test_short_answers_make_the_uncovered_signals_bad() -> None:
    """A response shorter than asked: what it covers decodes, the rest is short_response."""
    plan = compile_plan(
        profile({"address": 0}, {"address": 1, "type": "uint32"}), asset="a", unit=1
    )
    [request] = plan.requests
    readings = by_signal(plan.decode({request: BlockResult(TS, words=[7, 1])}))
    assert readings["s0"].value == 7
    assert (readings["s1"].quality, readings["s1"].reason) == (Quality.BAD, "short_response")
    missing = by_signal(plan.decode({request: BlockResult(TS, bits=[True])}))
    assert missing["s0"].reason == "short_response"


def test_garbage_words_are_a_decode_error_not_a_crash() -> None:
    """A source bug (a word above 0xFFFF) makes that signal bad; decode never raises."""
    plan = compile_plan(profile({"address": 0}, {"address": 1}), asset="a", unit=1)
    [request] = plan.requests
    readings = by_signal(plan.decode({request: BlockResult(TS, words=[70000, 3])}))
    assert readings["s0"].reason == "decode_error"
    assert readings["s1"].value == 3


def test_sentinels_are_bad_readings() -> None:
    """nan_value raw patterns mean "invalid": bad with reason sentinel, in every spelling."""
    source = profile(
        {"address": 0, "type": "int16", "scale": 0.1, "nan_value": 0x8000},
        {"address": 1, "type": "int16", "nan_value": [-32768, 0x7FFF]},
        {"address": 2, "type": "uint16", "nan_value": 0xFFFF},
        {"address": 3, "type": "float32", "nan_value": 3.4028235e38},
        {"address": 5, "type": "int32", "nan_value": 0x80000000},
        {"address": 7, "type": "int16", "scale": 0.1, "nan_value": 0x8000},
    )
    plan = compile_plan(source, asset="a", unit=1)
    words = {0: 0x8000, 1: 0x7FFF, 2: 0xFFFF, 3: 0x7F7F, 4: 0xFFFF, 5: 0x8000, 6: 0, 7: 0xFF38}
    readings = by_signal(plan.decode(answer_all(plan, words)))
    assert {name: r.reason for name, r in readings.items()} == {
        "s0": "sentinel",
        "s1": "sentinel",
        "s2": "sentinel",
        "s3": "sentinel",
        "s4": "sentinel",
        "s5": None,
    }
    assert readings["s5"].value == -20.0


@pytest.mark.parametrize("words", [[0x7FC0, 0x0000], [0x7F80, 0x0000], [0xFF80, 0x0000]])
def test_nan_and_infinity_are_never_published(words: list[int]) -> None:
    """A NaN or infinite float is bad with reason not_finite (the contract forbids NaN)."""
    plan = compile_plan(profile({"address": 0, "type": "float32"}), asset="a", unit=1)
    [reading] = plan.decode(answer_all(plan, dict(enumerate(words))))
    assert (reading.value, reading.reason) == (None, "not_finite")


def test_integers_beyond_int64_are_bad_not_published() -> None:
    """A uint64 above 2**63 - 1 cannot travel in contract v1: bad with reason out_of_range."""
    plan = compile_plan(profile({"address": 0, "type": "uint64"}), asset="a", unit=1)
    [top] = plan.decode(answer_all(plan, {0: 0x7FFF, 1: 0xFFFF, 2: 0xFFFF, 3: 0xFFFF}))
    [over] = plan.decode(answer_all(plan, {0: 0x8000}))
    assert (top.value, over.value, over.reason) == (2**63 - 1, None, "out_of_range")


def test_scaled_values_are_rounded_to_their_resolution() -> None:
    """Raw * scale + offset, rounded to the decimals of scale and offset, always a float."""
    source = profile(
        {"address": 0, "type": "int16", "scale": 0.01},
        {"address": 1, "type": "uint16", "scale": 0.1, "offset": -273.15},
        {"address": 2, "type": "uint16", "scale": 10},
        {"address": 3, "type": "float32", "scale": 2},
    )
    plan = compile_plan(source, asset="a", unit=1)
    words = {
        0: 437,
        1: 2981,
        2: 7,
        **dict(zip((3, 4), struct.unpack(">2H", struct.pack(">f", 1.25)), strict=True)),
    }
    readings = by_signal(plan.decode(answer_all(plan, words)))
    assert [readings[name].value for name in ("s0", "s1", "s2", "s3")] == [4.37, 24.95, 70.0, 2.5]
    assert all(type(readings[name].value) is float for name in ("s0", "s1", "s2", "s3"))


def test_float32_values_are_published_as_their_shortest_decimal() -> None:
    """123.456 as float32 is published as 123.456, not 123.45600128173828."""
    plan = compile_plan(
        profile({"address": 0, "type": "float32", "byte_order": "CDAB"}), asset="a", unit=1
    )
    [reading] = plan.decode(answer_all(plan, {0: 0xE979, 1: 0x42F6}))
    assert reading.value == 123.456
    assert shortest_float32(struct.unpack(">f", struct.pack(">f", 0.1))[0]) == 0.1
    assert math.isinf(shortest_float32(math.inf))


@given(value=st.floats(width=32, allow_nan=False, allow_infinity=False))
def test_shortest_float32_reads_back_as_the_same_float32(value: float) -> None:
    """The published decimal is the same float32, and never longer than the double's repr."""
    short = shortest_float32(value)
    assert struct.pack(">f", short) == struct.pack(">f", value)
    assert len(repr(short)) <= len(repr(value))


def test_clamp_saturates_and_keeps_the_type() -> None:
    """Values beyond the clamp bounds are reported as the bound, in the signal's type."""
    source = profile(
        {"address": 0, "type": "uint16", "scale": 0.1, "clamp": {"max": 200}},
        {"address": 1, "type": "int16", "clamp": {"min": 0, "max": 100}},
        {"address": 2, "type": "int16", "clamp": {"min": 0}},
    )
    plan = compile_plan(source, asset="a", unit=1)
    readings = by_signal(plan.decode(answer_all(plan, {0: 2150, 1: 0xFFFF, 2: 5})))
    assert [(readings[n].value, type(readings[n].value)) for n in ("s0", "s1", "s2")] == [
        (200.0, float),
        (0, int),
        (5, int),
    ]


def test_enums_publish_labels_or_codes() -> None:
    """Labels by default, unknown codes as unknown_<code>; enum_value: code publishes integers."""
    enum = {0: "none", 8: "high_vibration"}
    source = profile(
        {"address": 0, "enum": enum},
        {"address": 1, "enum": enum},
        {"address": 2, "enum": enum, "enum_value": "code"},
        {"address": 3, "type": "bits", "bit_range": [8, 9], "enum": {2: "auto"}},
    )
    plan = compile_plan(source, asset="a", unit=1)
    readings = by_signal(plan.decode(answer_all(plan, {0: 8, 1: 17, 2: 8, 3: 0x0209})))
    assert [readings[n].value for n in ("s0", "s1", "s2", "s3")] == [
        "high_vibration",
        "unknown_17",
        8,
        "auto",
    ]


def test_bits_strings_and_bools_decode() -> None:
    """Coils are booleans, register bits too, text is text."""
    source = profile(
        {"kind": "coil", "address": 0},
        {"kind": "coil", "address": 3},
        {"address": 0, "type": "bool", "bit": 15},
        {
            "address": 1,
            "type": "string",
            "length_words": 2,
            "byte_order": "BADC",
            "padding": "space",
        },
    )
    plan = compile_plan(source, asset="a", unit=1)
    readings = by_signal(
        plan.decode(answer_all(plan, {0: 0x8000, 1: 0x4B4F, 2: 0x2020}, {3: True}))
    )
    assert [readings[n].value for n in ("s0", "s1", "s2", "s3")] == [False, True, True, "OK"]


def test_readings_carry_the_asset_and_the_results_time() -> None:
    """ts_ms is when the carrying request was answered (Rule 2 of the value types)."""
    plan = compile_plan(
        profile({"address": 0}, {"kind": "coil", "address": 0}), asset="pump-07", unit=1
    )
    hold, coil = plan.requests
    readings = plan.decode(
        {hold: BlockResult(111, words=[1]), coil: BlockResult(222, bits=[True] * 8)}
    )
    assert [(r.asset, r.signal, r.ts_ms) for r in readings] == [
        ("pump-07", "s0", 111),
        ("pump-07", "s1", 222),
    ]


def test_compiled_plan_is_a_poll_plan() -> None:
    """CompiledPlan implements the PollPlan protocol of edge_agent._model."""
    plan: PollPlan = compile_plan(profile({"address": 0}), asset="a", unit=1)
    assert plan.decode({}) == []
    assert len(plan.groups) == 1


# ---------------------------------------------------------------- describe


def test_describe_prints_the_plan_as_a_table() -> None:
    """The plan table lists each request with its interval, table, range, count and signals."""
    source = load_profile(ROOT / "firmware_profiles" / "airtek_sc75_4.2.yaml")
    text = compile_plan(source, asset="comp-02", unit=2).describe()
    assert text.splitlines() == [
        "airtek_sc75_4.2 (AirTek SC-75, firmware '~=4.2') as asset 'comp-02', unit 2",
        "5 requests in 3 groups, theoretical minimum 5",
        (
            "limits: 125 registers or 2000 bits per request, "
            "gaps of at most 16 registers or 256 bits"
        ),
        "  #  every  table     unit  addresses  count  unused  signals",
        (
            "  1  1 s    holding      2  0-5            6       0  discharge_pressure_bar, "
            "motor_current_a, compressor_state, fault_code, air_filter_warning, "
            "separator_warning, service_due"
        ),
        (
            "  2  1 s    discrete     2  0-1            2       0  emergency_stop_ok, "
            "motor_overload_ok"
        ),
        (
            "  3  5 s    holding      2  10-16          7       0  element_outlet_temp_c, "
            "oil_temp_c, ambient_temp_c, air_filter_dp_bar, separator_dp_bar, oil_filter_dp_bar"
        ),
        (
            "  4  60 s   holding      2  20-27          8       0  run_hours_h, load_hours_h, "
            "motor_starts, service_hours_remaining_h"
        ),
        (
            "  5  60 s   holding      2  200-201        2       0  unload_pressure_bar, "
            "load_pressure_bar"
        ),
    ]


def test_describe_counts_unused_registers() -> None:
    """Registers read only to bridge a gap show in the unused column."""
    text = compile_plan(
        profile({"address": 0}, {"address": 5, "type": "uint32"}), asset="a", unit=1
    ).describe()
    assert text.splitlines()[-1].split() == [
        "1",
        "10",
        "s",
        "holding",
        "1",
        "0-6",
        "7",
        "4",
        "s0,",
        "s1",
    ]


# ---------------------------------------------------------------- writes


def test_encode_write_inverts_decoding() -> None:
    """Writable values encode back to the registers the decoder reads them from."""
    pump = load_profile(ROOT / "firmware_profiles" / "aquaflo_cpv150_2.x.yaml")
    assert encode_write(pump.signal("speed_setpoint_rpm"), 2900) == [2900]
    assert encode_write(pump.signal("ramp_up_s"), 5.0) == [50]
    assert encode_write(pump.signal("run_command"), value=True) == [True]
    spindle = load_profile(ROOT / "firmware_profiles" / "millrite_spx12_5.1.yaml")
    assert encode_write(spindle.signal("product_quality"), "H") == [2]
    assert encode_write(spindle.signal("product_quality"), 1) == [1]


@pytest.mark.parametrize(
    ("signal", "value", "message"),
    [
        ("flow_m3_h", 1.0, "'flow_m3_h' is read-only"),
        ("speed_setpoint_rpm", 3000, r"must be within \[0.0, 2960.0\]. Got 3000 instead."),
        ("speed_setpoint_rpm", "fast", "takes a number"),
        ("run_command", 1, "takes true or false"),
    ],
)
def test_encode_write_refuses_what_the_device_must_not_get(
    signal: str, value: Any, message: str
) -> None:
    """Read-only signals, values outside the clamp and wrong types are refused before the wire."""
    pump = load_profile(ROOT / "firmware_profiles" / "aquaflo_cpv150_2.x.yaml")
    with pytest.raises(ValueError, match=message):
        encode_write(pump.signal(signal), value)


def test_encode_write_refuses_unknown_enum_labels() -> None:
    """An enum takes one of its labels."""
    spindle = load_profile(ROOT / "firmware_profiles" / "millrite_spx12_5.1.yaml")
    with pytest.raises(ValueError, match=r"takes one of \['H', 'L', 'M'\]. Got 'X' instead."):
        encode_write(spindle.signal("product_quality"), "X")
    with pytest.raises(ValueError, match=r"takes one of \[0, 1, 2\]. Got 7 instead."):
        encode_write(spindle.signal("product_quality"), 7)
