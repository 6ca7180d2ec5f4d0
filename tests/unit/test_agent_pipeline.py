"""A device's `preprocess` section becomes pipeline steps; usage state is kept on disk safely."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from edge_agent._agent_pipeline import (
    Pipelines,
    SignalInfo,
    UsageStateStore,
    build_steps,
    write_atomically,
)
from edge_agent._config import PreprocessConfig, parse_config
from edge_agent._exceptions import ConfigError
from edge_agent._model import Reading
from edge_agent._preprocess import (
    AggregateConfig,
    DeadbandConfig,
    Pipeline,
    UsageConfig,
)

WHERE = 'edge.yaml: device "pump-7"'
SIGNALS = {
    "flow_m3_h": SignalInfo(deadband=0.5, interval_s=1.0),
    "motor_current_a": SignalInfo(deadband=0.1, interval_s=1.0),
    "running": SignalInfo(deadband=None, interval_s=2.0),
    "vibration_rms_mm_s": SignalInfo(deadband=None, interval_s=1.0),
}


def _preprocess(text: str) -> PreprocessConfig:
    config = parse_config(
        "site: s\ngateway: g\nstate_dir: state\ndevices:\n"
        "  - name: pump-7\n    asset: pump-07\n    profile: p\n"
        "    transport: {type: tcp, host: h}\n    preprocess:\n"
        + textwrap.indent(textwrap.dedent(text), "      "),
        source="edge.yaml",
    )
    return config.devices[0].preprocess


def test_by_default_every_signal_gets_the_profiles_deadband_and_a_heartbeat() -> None:
    """No section: one deadband step, the profile's bands, a 300 s heartbeat for everything."""
    (step,) = build_steps(PreprocessConfig(), signals=SIGNALS, where=WHERE)

    assert isinstance(step, DeadbandConfig)
    assert step.default.heartbeat_s == 300
    assert step.default.deadband_abs == 0
    assert step.signals["flow_m3_h"].deadband_abs == 0.5
    assert step.signals["flow_m3_h"].heartbeat_s == 300
    assert "running" not in step.signals  # no band: the default rule (changes, heartbeat)


def test_steps_come_in_pipeline_order_with_overrides_and_derived_gaps() -> None:
    """Usage, then aggregate, then deadband; `deadbands` replaces the profile's band."""
    preprocess = _preprocess(
        """\
        heartbeat_s: 60
        deadbands: {flow_m3_h: {deadband_pct: 2}, pump_hours: {deadband_abs: 0.1}}
        aggregate: {signals: [vibration_rms_mm_s], window_s: 10, counts: emit, raw: keep}
        operating_hours: [{signal: running, hours_name: pump_hours, starts_name: pump_starts}]
        usage:
          - {signal: flow_m3_h, name: pumped_m3, kind: rate, rate_unit_s: 3600}
          - {signal: motor_current_a, name: amp_count, kind: counter, counter_modulus: 65536}
        """
    )

    usage, aggregate, deadband = build_steps(preprocess, signals=SIGNALS, where=WHERE)

    assert isinstance(usage, UsageConfig)
    (hours,) = usage.operating_hours
    assert (hours.signal, hours.max_gap_s, hours.running_values) == ("running", 6.0, (True,))
    rate, counter = usage.counters
    assert (rate.max_gap_s, rate.rate_unit_s) == (3.0, 3600)  # 3 polls of 1 s
    assert (counter.max_gap_s, counter.counter_modulus) == (None, 65536)
    assert isinstance(aggregate, AggregateConfig)
    assert (aggregate.window_s, aggregate.emit_count, aggregate.keep_raw) == (10, True, True)
    assert isinstance(deadband, DeadbandConfig)
    assert deadband.signals["flow_m3_h"].deadband_pct == 2
    assert deadband.signals["flow_m3_h"].deadband_abs == 0
    assert deadband.signals["pump_hours"].deadband_abs == 0.1
    assert deadband.signals["pump_starts"].deadband_abs == 0.5  # reported on change
    assert deadband.default.heartbeat_s == 60


def test_deadband_off_reports_every_reading() -> None:
    """`deadband: off` (unquoted YAML `off` included) builds no deadband step at all."""
    preprocess = _preprocess("deadband: off\n")
    assert preprocess.deadband == "off"
    steps = build_steps(preprocess, signals=SIGNALS, where=WHERE)
    assert steps == ()
    pipeline = Pipeline(steps=steps)
    same = [Reading("a", "running", 1, value=True), Reading("a", "running", 2, value=True)]
    assert pipeline.process(same) == same


def test_unknown_signals_are_named_with_a_suggestion() -> None:
    """Every key naming a signal the device lacks is one line: file, device, key, value."""
    preprocess = _preprocess(
        """\
        aggregate: {signals: [vibration_rms], window_s: 10}
        usage: [{signal: flow, name: pumped_m3, kind: counter}]
        """
    )

    with pytest.raises(ConfigError) as info:
        build_steps(preprocess, signals=SIGNALS, where=WHERE)

    assert str(info.value).splitlines() == [
        (
            f"{WHERE}: preprocess.aggregate.signals[0] must name a signal of the device (did "
            "you mean 'vibration_rms_mm_s'?). Got 'vibration_rms' instead."
        ),
        (
            f"{WHERE}: preprocess.usage[0].signal must name a signal of the device (did you "
            "mean 'flow_m3_h'?). Got 'flow' instead."
        ),
    ]
    # A device identified at run time accepts them: the rules simply never fire.
    assert build_steps(preprocess, signals=SIGNALS, where=WHERE, unknown="ignore")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "operating_hours: [{signal: running, stopped_below: 1}]",
            "preprocess.operating_hours[0] stopped_below needs running_above.",
        ),
        (
            "usage: [{signal: flow_m3_h, name: x, kind: counter, max_gap_s: 3}]",
            "preprocess.usage[0] max_gap_s must be omitted for kind 'counter'.",
        ),
        (
            "deadband: off\ndeadbands: {flow_m3_h: {deadband_abs: 1}}",
            "preprocess deadbands needs deadband: profile (it is 'off').",
        ),
        (
            (
                "usage: [{signal: flow_m3_h, name: starts, kind: counter}]\n"
                "operating_hours: [{signal: running}]"
            ),
            "preprocess operating_hours and usage must publish distinct names; ['starts'] repeat.",
        ),
    ],
)
def test_inconsistent_rules_are_config_errors(text: str, expected: str) -> None:
    """Rules across keys of the section fail at load, naming the device and the key."""
    with pytest.raises(ConfigError) as info:
        _preprocess(text)
    assert str(info.value) == f'edge.yaml: device "pump-7": {expected}'


def test_usage_rules_need_a_state_dir() -> None:
    """Accrued hours must survive a restart: usage rules without `state_dir` fail at load."""
    text = (
        "site: s\ngateway: g\ndevices:\n  - name: pump-7\n    asset: pump-07\n    profile: p\n"
        "    transport: {type: tcp, host: h}\n"
        "    preprocess: {operating_hours: [{signal: running}]}\n"
    )
    with pytest.raises(ConfigError, match=r'device "pump-7": preprocess has usage rules, so '):
        parse_config(text, source="edge.yaml")


# ---------------------------------------------------------------- the state file


def test_state_round_trips_and_keeps_assets_no_longer_configured(tmp_path: Path) -> None:
    """What was saved loads back; an asset the agent no longer runs is kept, not erased."""
    store = UsageStateStore(state_dir=tmp_path / "state")
    assert store.load() == {}
    store.save({"old": {"version": 1, "steps": {"usage": {}}}}, now_ms=1)

    again = UsageStateStore(state_dir=tmp_path / "state")
    loaded = again.load()
    again.save({"pump-07": {"version": 1, "steps": {}}}, now_ms=2)

    assert loaded == {"old": {"version": 1, "steps": {"usage": {}}}}
    data = json.loads((tmp_path / "state" / "usage.json").read_text())
    assert data["version"] == 1
    assert data["saved_ms"] == 2
    assert sorted(data["assets"]) == ["old", "pump-07"]
    assert [p.name for p in (tmp_path / "state").iterdir()] == ["usage.json"]


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("{not json", "is not valid JSON"),
        ('{"version": 7, "assets": {}}', "must have version 1. Got 7 instead"),
        ('{"version": 1, "assets": []}', "assets must be an object of objects"),
    ],
)
def test_an_unreadable_state_file_is_an_error_naming_it(
    tmp_path: Path, text: str, problem: str
) -> None:
    """A damaged file stops the agent with its path; it is never treated as empty."""
    (tmp_path / "usage.json").write_text(text)
    with pytest.raises(ConfigError) as info:
        UsageStateStore(state_dir=tmp_path).load()
    message = str(info.value)
    assert message.startswith(f"{tmp_path / 'usage.json'}: usage state {problem}")
    assert "Move the file aside" in message
    assert info.value.path == str(tmp_path / "usage.json")


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    """An atomic write that cannot complete keeps what was there."""
    target = tmp_path / "usage.json"
    write_atomically(target, "old")
    blocker = tmp_path / "blocked"
    blocker.mkdir()
    (blocker / "inside").write_text("x")  # a non-empty folder cannot be replaced by a file

    with pytest.raises(OSError, match="blocked"):
        write_atomically(blocker, "new")

    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["blocked", "usage.json"]


def test_pipelines_route_readings_by_asset_and_persist_only_counting_ones(tmp_path: Path) -> None:
    """Each asset's readings pass its own pipeline; state is saved for those that count."""
    pipelines = Pipelines(state_dir=tmp_path)
    pipelines.load()
    hours = _preprocess('deadband: "off"\noperating_hours: [{signal: running}]\n')
    pipelines.add("pump-07", build_steps(hours, signals=SIGNALS, where=WHERE))
    pipelines.add("fan-1", build_steps(PreprocessConfig(), signals=SIGNALS, where=WHERE))
    pipelines.add("raw-1", ())

    out = pipelines.process(
        [
            Reading("pump-07", "running", 1_000, value=True),
            Reading("fan-1", "running", 1_000, value=True),
            Reading("fan-1", "running", 2_000, value=True),  # unchanged: the deadband drops it
            Reading("raw-1", "running", 1_000, value=True),
            Reading("pump-07", "running", 3_000, value=True),
        ]
    )
    pipelines.save(now_ms=5_000)

    assert [(r.asset, r.signal, r.ts_ms) for r in out] == [
        ("pump-07", "running", 1_000),
        ("pump-07", "operating_hours", 1_000),
        ("pump-07", "starts", 1_000),
        ("fan-1", "running", 1_000),
        ("raw-1", "running", 1_000),
        ("pump-07", "running", 3_000),
        ("pump-07", "operating_hours", 3_000),
        ("pump-07", "starts", 3_000),
    ]
    saved = json.loads((tmp_path / "usage.json").read_text())["assets"]
    assert list(saved) == ["pump-07"]
    assert saved["pump-07"]["steps"]["usage"]["operating_hours"][0]["running_ms"] == 2_000


def test_a_state_file_that_cannot_be_written_is_logged_once_and_counting_goes_on(
    tmp_path: Path,
) -> None:
    """A failing save logs one error and one recovery, never one line per save."""
    state_dir = tmp_path / "state"
    pipelines = Pipelines(state_dir=state_dir)
    pipelines.load()
    hours = _preprocess('deadband: "off"\noperating_hours: [{signal: running}]\n')
    pipelines.add("pump-07", build_steps(hours, signals=SIGNALS, where=WHERE))
    pipelines.process([Reading("pump-07", "running", 1_000, value=True)])
    (state_dir / "usage.json").mkdir(parents=True)  # a folder where the file should be

    with capture_logs() as logs:
        pipelines.save(now_ms=1)
        pipelines.save(now_ms=2)
        (state_dir / "usage.json").rmdir()
        pipelines.save(now_ms=3)

    assert [e["event"] for e in logs] == ["usage_state_not_saved", "usage_state_saved_again"]
    assert (state_dir / "usage.json").is_file()


def test_nothing_is_saved_before_the_state_was_read(tmp_path: Path) -> None:
    """A start that failed before reading the state never overwrites the file."""
    (tmp_path / "usage.json").write_text("{damaged")
    pipelines = Pipelines(state_dir=tmp_path)
    with pytest.raises(ConfigError):
        pipelines.load()

    pipelines.save(now_ms=1)

    assert (tmp_path / "usage.json").read_text() == "{damaged"
