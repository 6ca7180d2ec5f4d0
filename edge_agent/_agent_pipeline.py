"""A device's `preprocess` config mapped onto the pre-processing steps, and usage state on disk.

`build_steps` is pure: it turns a validated `PreprocessConfig` plus what the device's profile (or
line parser) says about each signal into the `_preprocess` step configs, in the order usage,
aggregate, deadband (usage counters need every raw reading; the deadband thins everything,
totals and aggregates included). `UsageStateStore` keeps every asset's usage counters in one
JSON file under `state_dir`, written atomically; `Pipelines` holds every device's pipeline and
saves their state there.

Rules:
1. With `deadband: profile`, a signal's band is its `deadbands` override, else the profile's
   `deadband`, else none (numbers every poll, booleans and strings on change); every signal
   gets the device's `heartbeat_s`. The published totals get a band too: `starts` on change,
   operating hours every 0.01 h (36 s), usage totals every change.
2. A usage rule's or operating-hours rule's omitted `max_gap_s` is 3 poll intervals of its
   signal: one missed poll still accrues, a device that is gone for longer does not.
3. Every signal a `preprocess` key names must be one the device publishes; the error names the
   file, the device, the key and the value.
4. The state file is replaced atomically (a temporary file in the same folder, fsync,
   `os.replace`), so a power cut leaves the old or the new file, never half of one. A state file
   that cannot be read stops the agent with its path: it is never silently reset to zero.
"""

from __future__ import annotations

import contextlib
import difflib
import itertools
import json
import os
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import structlog

from edge_agent._config import PreprocessConfig
from edge_agent._exceptions import ConfigError
from edge_agent._model import Reading
from edge_agent._preprocess import (
    AggregateConfig,
    DeadbandConfig,
    DeadbandRule,
    OperatingHoursRule,
    Pipeline,
    StepConfig,
    UsageConfig,
    UsageRule,
)

_log = structlog.get_logger("edge_agent.agent")

STATE_FILE = "usage.json"
"""The file under `state_dir` that holds every asset's usage counters."""
STATE_VERSION = 1
"""The `version` of the state file."""
GAP_INTERVALS = 3
"""An omitted `max_gap_s` is this many poll intervals of the rule's signal (Rule 2)."""
HOURS_BAND = 0.01
"""Operating hours are reported when they grew by this much (0.01 h = 36 s), or on heartbeat."""
_AGGREGATE_SUFFIXES = ("_min", "_mean", "_max", "_count", "_bad_count")


@dataclass(frozen=True, slots=True)
class SignalInfo:
    """What pre-processing needs to know about one signal of a device.

    Attributes:
        deadband: The profile's report-by-exception band, in the signal's unit; None for none.
        interval_s: The signal's effective poll interval, seconds.
    """

    deadband: float | None
    interval_s: float


def build_steps(
    preprocess: PreprocessConfig,
    *,
    signals: Mapping[str, SignalInfo],
    where: str,
    unknown: Literal["error", "ignore"] = "error",
    fallback_interval_s: float = 10.0,
) -> tuple[StepConfig, ...]:
    """The pipeline steps of one device (see the module docstring).

    Args:
        preprocess: The device's validated `preprocess` section.
        signals: The device's signals by name.
        where: `file: device "name"`, the start of every error line.
        unknown: `error` refuses a key naming a signal the device does not have (Rule 3);
            `ignore` accepts it (a device identified at run time whose profile lacks it: the rule
            never fires) and assumes `fallback_interval_s` for it.
        fallback_interval_s: The poll interval assumed for an unknown signal.

    Returns:
        The step configs, in pipeline order.

    Raises:
        ConfigError: a key names an unknown signal, or a rule is inconsistent.
    """
    if unknown == "error":
        check_signal_names(preprocess, known=signals, where=where)

    def interval(name: str) -> float:
        info = signals.get(name)
        return info.interval_s if info is not None else fallback_interval_s

    def gap(name: str, given: float | None) -> float:
        return given if given is not None else GAP_INTERVALS * interval(name)

    steps: list[StepConfig] = []
    try:
        if preprocess.has_usage:
            steps.append(
                UsageConfig(
                    operating_hours=[
                        OperatingHoursRule(
                            signal=rule.signal,
                            max_gap_s=gap(rule.signal, rule.max_gap_s),
                            running_above=rule.running_above,
                            stopped_below=rule.stopped_below,
                            running_values=tuple(rule.running_values or (True,)),
                            hours_name=rule.hours_name,
                            starts_name=rule.starts_name,
                        )
                        for rule in preprocess.operating_hours
                    ],
                    counters=[
                        UsageRule(
                            signal=rule.signal,
                            name=rule.name,
                            kind=rule.kind,
                            scale=rule.scale,
                            rate_unit_s=rule.rate_unit_s or 1.0,
                            max_gap_s=gap(rule.signal, rule.max_gap_s)
                            if rule.kind == "rate"
                            else None,
                            counter_modulus=rule.counter_modulus,
                        )
                        for rule in preprocess.usage
                    ],
                )
            )
        if (aggregate := preprocess.aggregate) is not None:
            steps.append(
                AggregateConfig(
                    signals=aggregate.signals,
                    window_s=aggregate.window_s,
                    emit_count=aggregate.counts == "emit",
                    keep_raw=aggregate.raw == "keep",
                    grace_s=aggregate.grace_s,
                )
            )
        if preprocess.deadband == "profile":
            steps.append(_deadband(preprocess, signals))
    except ValueError as exc:  # the step dataclasses' own rules, should pydantic's miss one
        raise ConfigError(f"{where}: preprocess {exc}", key="preprocess") from None
    return tuple(steps)


def _deadband(preprocess: PreprocessConfig, signals: Mapping[str, SignalInfo]) -> DeadbandConfig:
    heartbeat_s = preprocess.heartbeat_s
    rules: dict[str, DeadbandRule] = {
        name: DeadbandRule(deadband_abs=info.deadband, heartbeat_s=heartbeat_s)
        for name, info in signals.items()
        if info.deadband is not None
    }
    for rule in preprocess.operating_hours:
        rules[rule.hours_name] = DeadbandRule(deadband_abs=HOURS_BAND, heartbeat_s=heartbeat_s)
        rules[rule.starts_name] = DeadbandRule(deadband_abs=0.5, heartbeat_s=heartbeat_s)
    for name, band in preprocess.deadbands.items():
        rules[name] = DeadbandRule(
            deadband_abs=band.deadband_abs,
            deadband_pct=band.deadband_pct,
            heartbeat_s=heartbeat_s,
        )
    return DeadbandConfig(default=DeadbandRule(heartbeat_s=heartbeat_s), signals=rules)


def published_names(preprocess: PreprocessConfig, signals: Collection[str]) -> set[str]:
    """Every name the device publishes: its signals, aggregates, hours, starts and totals."""
    names = set(signals)
    if preprocess.aggregate is not None:
        aggregated = preprocess.aggregate.signals
        names |= {f"{signal}{suffix}" for signal in aggregated for suffix in _AGGREGATE_SUFFIXES}
    for rule in preprocess.operating_hours:
        names |= {rule.hours_name, rule.starts_name}
    names |= {rule.name for rule in preprocess.usage}
    return names


def check_signal_names(
    preprocess: PreprocessConfig, *, known: Collection[str], where: str, what: str = "device"
) -> None:
    """Raise one `ConfigError` for every `preprocess` key naming a signal not in `known`.

    `deadbands` may also name what the device publishes beyond its signals (aggregates, hours,
    starts, usage totals).

    Raises:
        ConfigError: one line per unknown name: file, device, key, rule, value.
    """
    outputs = published_names(preprocess, known)
    lines: list[str] = []
    for key, name in preprocess.signals_named():
        allowed = outputs if key.startswith("preprocess.deadbands.") else set(known)
        if name in allowed:
            continue
        close = difflib.get_close_matches(name, sorted(allowed), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        lines.append(
            f"{where}: {key} must name a signal of the {what}{hint}. Got {name!r} instead."
        )
    if lines:
        raise ConfigError("\n".join(lines), key="preprocess")


class UsageStateStore:
    """Every asset's pipeline state (usage counters) in `state_dir/usage.json` (Rule 4).

    File format: `{"version": 1, "saved_ms": ..., "assets": {asset: Pipeline.to_state()}}`.
    Entries of assets the current config no longer has are kept, so that a config edit never
    erases accrued hours.

    Args:
        state_dir: The folder; created on the first save.
    """

    def __init__(self, *, state_dir: Path) -> None:
        self.path = state_dir / STATE_FILE
        self._kept: dict[str, object] = {}

    def load(self) -> dict[str, Mapping[str, object]]:
        """Read the file; an absent file is an empty state.

        Returns:
            Pipeline state by asset.

        Raises:
            ConfigError: the file exists but cannot be read or is malformed (the message names
                it and says what to do).
        """
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {}
        except (OSError, UnicodeDecodeError) as exc:
            raise self._corrupt(f"cannot be read ({exc})") from None
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise self._corrupt(f"is not valid JSON ({exc})") from None
        if not isinstance(data, dict) or data.get("version") != STATE_VERSION:
            version = data.get("version") if isinstance(data, dict) else None
            raise self._corrupt(f"must have version {STATE_VERSION}. Got {version!r} instead")
        assets = data.get("assets")
        if not isinstance(assets, dict) or not all(isinstance(v, dict) for v in assets.values()):
            raise self._corrupt("assets must be an object of objects")
        self._kept = dict(assets)
        return {str(asset): state for asset, state in assets.items()}

    def save(self, states: Mapping[str, Mapping[str, object]], *, now_ms: int) -> None:
        """Write every asset's state (and the kept ones) atomically.

        Args:
            states: Pipeline state by asset, of the assets the agent runs now.
            now_ms: Epoch ms, recorded as `saved_ms`.

        Raises:
            OSError: the folder or file cannot be written.
        """
        assets = {**self._kept, **states}
        text = json.dumps(
            {"version": STATE_VERSION, "saved_ms": now_ms, "assets": assets},
            indent=1,
            sort_keys=True,
        )
        write_atomically(self.path, text)

    def _corrupt(self, problem: str) -> ConfigError:
        return ConfigError(
            f"{self.path}: usage state {problem}. Move the file aside to start the counters "
            "from zero, or restore it from a backup.",
            path=str(self.path),
        )


def write_atomically(path: Path, text: str) -> None:
    """Replace `path` with `text`: a temporary file in the same folder, fsync, `os.replace`.

    Raises:
        OSError: the folder or file cannot be written (the temporary file is removed).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with tmp.open("w", encoding="utf-8") as file:
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        tmp.replace(path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    # Make the rename itself durable (POSIX: fsync the folder); not possible everywhere.
    with contextlib.suppress(OSError):
        fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


class Pipelines:
    """Every device's pipeline, by asset, with the usage state they continue from and save to.

    Call order: `load()` once, then `add()` per device (also later, for a device identified at
    run time), `process()`/`flush()` from the agent's tasks, `save()` on a timer and at stop.

    Args:
        state_dir: Where `usage.json` lives; None: usage is not persisted (the config requires
            a `state_dir` when a device has usage rules).
    """

    def __init__(self, *, state_dir: Path | None) -> None:
        self._store = UsageStateStore(state_dir=state_dir) if state_dir is not None else None
        self._saved: dict[str, Mapping[str, object]] = {}
        self._loaded = False
        self._save_failing = False
        self._pipelines: dict[str, Pipeline] = {}

    def load(self) -> None:
        """Read the state file (see `UsageStateStore.load`).

        Raises:
            ConfigError: the file exists but cannot be read.
        """
        if self._store is not None:
            self._saved = self._store.load()
        self._loaded = True

    def add(self, asset: str, steps: Sequence[StepConfig]) -> None:
        """Build an asset's pipeline, continuing from its saved usage state (no steps: none).

        Raises:
            ConfigError: the saved state of this asset is malformed (naming the file).
        """
        if not steps:
            return
        saved = self._saved.get(asset)
        try:
            pipeline = (
                Pipeline.from_state(saved, steps=steps)
                if saved is not None
                else Pipeline(steps=steps)
            )
        except ValueError as exc:
            path = self._store.path if self._store is not None else "usage state"
            raise ConfigError(
                f"{path}: asset {asset!r}: {exc} Move the file aside to start the counters from "
                "zero, or restore it from a backup.",
                path=str(path),
            ) from None
        self._pipelines[asset] = pipeline

    def process(self, readings: Sequence[Reading]) -> list[Reading]:
        """Run readings through their asset's pipeline; other assets' readings pass as they are."""
        out: list[Reading] = []
        for asset, group in itertools.groupby(readings, key=lambda reading: reading.asset):
            batch = list(group)
            pipeline = self._pipelines.get(asset)
            out.extend(pipeline.process(batch) if pipeline is not None else batch)
        return out

    def flush(self, now_ms: int) -> list[Reading]:
        """What every pipeline has due by `now_ms` (closed aggregation windows)."""
        return [reading for p in self._pipelines.values() for reading in p.flush(now_ms)]

    def to_state(self) -> dict[str, Mapping[str, object]]:
        """The state of every pipeline that counts something, by asset."""
        states: dict[str, Mapping[str, object]] = {}
        for asset, pipeline in self._pipelines.items():
            state = pipeline.to_state()
            if state.get("steps"):
                states[asset] = state
        return states

    def save(self, *, now_ms: int) -> None:
        """Write the state file; a failure is logged once (not raised: counting goes on).

        Never before `load()` succeeded: a start that failed on a damaged file must not
        overwrite it (Rule 4).
        """
        if self._store is None or not self._loaded:
            return
        path = str(self._store.path)
        try:
            self._store.save(self.to_state(), now_ms=now_ms)
        except OSError as exc:
            if not self._save_failing:
                _log.error("usage_state_not_saved", path=path, error=str(exc))
            self._save_failing = True
            return
        if self._save_failing:
            _log.info("usage_state_saved_again", path=path)
        self._save_failing = False
