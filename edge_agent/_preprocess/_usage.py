"""Operating hours, starts and usage totals per asset; the caller persists the state (Rules 8-9)."""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import combinations
from typing import Literal

from edge_agent._model import Quality, Reading, Value
from edge_agent._preprocess._common import (
    CompensatedSum,
    Key,
    checked,
    is_number,
    name_set,
    require_finite,
    require_positive,
    same_value,
    seconds_to_ms,
)

USAGE_STATE_VERSION = 1
"""The `version` of the dict `UsageCounters.to_state` writes; `from_state` reads only this one."""

UsageKind = Literal["rate", "counter"]
"""`rate`: integrate a rate signal over time; `counter`: add up a device counter's increments."""

_MS_PER_HOUR = 3_600_000


@dataclass(frozen=True, slots=True, kw_only=True)
class OperatingHoursRule:
    """When an asset runs, from one signal: accrues `operating_hours` and counts `starts`.

    Running is either a threshold on a number (`running_above`, with optional hysteresis down to
    `stopped_below`) or membership of the value in `running_values` (a bool, an enum code, a state
    string). Time accrues between two good samples no more than `max_gap_s` apart, at the state of
    the earlier sample (sample-and-hold); a start is a change from not running to running.

    Attributes:
        signal: The source signal, e.g. `motor_current_a` or `running`.
        max_gap_s: Longest time between two good samples, in seconds, over which running time
            still accrues; set it to a few poll intervals. A longer gap (device offline, agent
            stopped) accrues nothing.
        running_above: Running when the value is greater than this, in the signal's units;
            `None` to use `running_values`.
        stopped_below: Once running, stays running until the value falls below this (hysteresis,
            so a value hovering at the threshold does not count a start per poll); defaults to
            `running_above`, and must not exceed it.
        running_values: With no threshold, the values that mean running (default `(True,)`). A
            bool matches only a bool: `1` does not match `True`.
        hours_name: The signal to emit operating hours as (float hours).
        starts_name: The signal to emit the start count as (int).
        assets: The assets the rule applies to; empty for every asset that has `signal`.
    """

    signal: str
    max_gap_s: float
    running_above: float | None = None
    stopped_below: float | None = None
    running_values: Collection[Value] = (True,)
    hours_name: str = "operating_hours"
    starts_name: str = "starts"
    assets: Collection[str] = ()

    def __post_init__(self) -> None:
        seconds_to_ms("max_gap_s", self.max_gap_s)
        object.__setattr__(self, "assets", name_set("assets", self.assets))
        # A tuple, not a set: True and 1 hash alike and would collapse into one member.
        object.__setattr__(self, "running_values", tuple(self.running_values))
        if self.running_above is None:
            if self.stopped_below is not None:
                raise ValueError("stopped_below needs running_above. Got running_above=None.")
            if not self.running_values:
                raise ValueError("running_values must not be empty when running_above is None.")
        else:
            require_finite("running_above", self.running_above)
            if self.stopped_below is not None:
                require_finite("stopped_below", self.stopped_below)
                if self.stopped_below > self.running_above:
                    raise ValueError(
                        f"stopped_below must be at most running_above ({self.running_above!r})."
                        f" Got {self.stopped_below!r} instead."
                    )
        if self.hours_name == self.starts_name:
            raise ValueError(
                f"hours_name and starts_name must differ. Both are {self.hours_name!r}."
            )

    def is_running(self, value: Value, *, was_running: bool | None) -> bool | None:
        """Whether `value` means running, given the state before; `None` if it cannot tell."""
        if self.running_above is None:
            return any(same_value(value, running) for running in self.running_values)
        if not is_number(value):
            return None
        if was_running:
            low = self.running_above if self.stopped_below is None else self.stopped_below
            return value >= low
        return value > self.running_above


@dataclass(frozen=True, slots=True, kw_only=True)
class UsageRule:
    """A usage total from one signal: the integral of a rate, or a device counter's increments.

    Totals never decrease: a negative rate (noise around zero, reverse flow) counts as zero, and
    a counter's decrease is a wrap-around or a reset, never negative usage.

    A `counter` decrease is a wrap-around when `counter_modulus` is set and the wrapped increment
    (`value - last + counter_modulus`) is at most half the modulus (otherwise the counter would
    have advanced more than half its range between two polls); any other decrease is a reset
    (device restart, counter cleared), and the new value is taken as counted since zero.

    Attributes:
        signal: The source signal.
        name: The signal to emit the total as (float, in output units).
        kind: `rate` or `counter`.
        scale: Output units per unit of the integral (rate) or per count (counter), > 0;
            e.g. 0.001 for a counter of litres totalled in m³.
        rate_unit_s: `rate` only: the seconds in the rate's time unit, e.g. 3600 for m³/h,
            60 for strokes/min, 1 for a per-second rate.
        max_gap_s: `rate` only (and required for it): longest time between two good samples, in
            seconds, over which the rate is integrated (trapezoids); a longer gap adds nothing.
            A counter has none: the device kept counting while the gateway could not read it.
        counter_modulus: `counter` only: the value at which the counter wraps to 0, in the
            signal's units, e.g. 65536 (2**16) or 4294967296 (2**32) for a raw 16/32-bit
            register; `None` if it never wraps.
        assets: The assets the rule applies to; empty for every asset that has `signal`.
    """

    signal: str
    name: str
    kind: UsageKind
    scale: float = 1.0
    rate_unit_s: float = 1.0
    max_gap_s: float | None = None
    counter_modulus: float | None = None
    assets: Collection[str] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "assets", name_set("assets", self.assets))
        require_positive("scale", self.scale)
        require_positive("rate_unit_s", self.rate_unit_s)
        if self.kind == "rate":
            if self.max_gap_s is None:
                raise ValueError("max_gap_s is required for kind 'rate'.")
            seconds_to_ms("max_gap_s", self.max_gap_s)
            if self.counter_modulus is not None:
                raise ValueError("counter_modulus applies to kind 'counter' only.")
        elif self.kind == "counter":
            if self.rate_unit_s != 1:
                raise ValueError("rate_unit_s applies to kind 'rate' only.")
            if self.max_gap_s is not None:
                raise ValueError(
                    "max_gap_s applies to kind 'rate' only: a device counter keeps counting while "
                    "the gateway cannot read it."
                )
            if self.counter_modulus is not None:
                require_positive("counter_modulus", self.counter_modulus)
        else:
            raise ValueError(f"kind must be one of 'rate', 'counter'. Got {self.kind!r} instead.")


@dataclass(frozen=True, slots=True, kw_only=True)
class UsageConfig:
    """The usage step: operating-hours rules and usage-counter rules.

    Two rules may emit the same name only for disjoint sets of assets (e.g. one threshold per
    motor size), since the name keys the persisted total.

    Attributes:
        operating_hours: Operating-hours and starts rules.
        counters: Usage-counter rules.
        name: The step's name in a pipeline, unique among its steps; keys its persisted state.
    """

    operating_hours: Sequence[OperatingHoursRule] = ()
    counters: Sequence[UsageRule] = ()
    name: str = "usage"

    def __post_init__(self) -> None:
        object.__setattr__(self, "operating_hours", tuple(self.operating_hours))
        object.__setattr__(self, "counters", tuple(self.counters))
        outputs: list[tuple[str, frozenset[str]]] = []
        for hours in self.operating_hours:
            assets = frozenset(hours.assets)
            outputs += [(hours.hours_name, assets), (hours.starts_name, assets)]
        outputs += [(rule.name, frozenset(rule.assets)) for rule in self.counters]
        for (name_a, assets_a), (name_b, assets_b) in combinations(outputs, 2):
            if name_a == name_b and (not assets_a or not assets_b or assets_a & assets_b):
                raise ValueError(
                    f"two usage rules emit {name_a!r} for the same assets; give them different "
                    "names or disjoint assets."
                )


@dataclass(slots=True)
class _Hours:
    running_ms: int = 0
    starts: int = 0
    last_ts_ms: int | None = None
    running: bool | None = None


@dataclass(slots=True)
class _Usage:
    kind: UsageKind
    total: CompensatedSum = field(default_factory=CompensatedSum)
    last_ts_ms: int | None = None
    last_value: int | float | None = None


def counter_increment(last: float, value: float, modulus: float | None) -> float:
    """How far a device counter advanced from `last` to `value` (see `UsageRule`); never < 0."""
    delta = value - last
    if delta >= 0:
        return delta
    if modulus is not None and 0 <= delta + modulus <= modulus / 2:
        return delta + modulus
    return max(value, 0)


class UsageCounters:
    """Per-asset operating hours, starts and usage totals (Rules 8-9).

    Passes every reading on unchanged and, after each good reading of a source signal, adds the
    asset's updated totals at that reading's `ts_ms`: for an operating-hours rule `hours_name`
    and `starts_name`, for a usage rule its `name`. A bad source reading, or one whose value the
    rule cannot judge (e.g. a string for a threshold), changes and emits nothing; the gap it
    leaves is judged by `max_gap_s`. Chain a `Deadband` after this step to thin the totals.

    The totals live only in memory: the caller saves `to_state()` (a JSON-serialisable dict)
    and restores it with `from_state` across restarts.

    Args:
        config: The rules.
    """

    def __init__(self, *, config: UsageConfig) -> None:
        self.config = config
        self._hours: dict[Key, _Hours] = {}
        self._usage: dict[Key, _Usage] = {}
        self._hours_rules: dict[str, list[OperatingHoursRule]] = {}
        self._usage_rules: dict[str, list[UsageRule]] = {}
        for hours_rule in config.operating_hours:
            self._hours_rules.setdefault(hours_rule.signal, []).append(hours_rule)
        for usage_rule in config.counters:
            self._usage_rules.setdefault(usage_rule.signal, []).append(usage_rule)

    def process(self, readings: Sequence[Reading]) -> list[Reading]:
        """Return the readings, each followed by the totals it updated."""
        out: list[Reading] = []
        for raw in readings:
            out.append(raw)
            reading = checked(raw)
            if reading.quality is not Quality.GOOD or reading.value is None:
                continue
            asset, ts_ms, value = reading.asset, reading.ts_ms, reading.value
            for hours_rule in self._hours_rules.get(reading.signal, ()):
                if not hours_rule.assets or asset in hours_rule.assets:
                    out += self._update_hours(hours_rule, asset, ts_ms, value)
            for usage_rule in self._usage_rules.get(reading.signal, ()):
                if not usage_rule.assets or asset in usage_rule.assets:
                    out += self._update_usage(usage_rule, asset, ts_ms, value)
        return out

    def flush(self, now_ms: int) -> list[Reading]:  # noqa: ARG002 - the step protocol's signature
        """Return nothing: totals are emitted as readings update them."""
        return []

    def _update_hours(
        self, rule: OperatingHoursRule, asset: str, ts_ms: int, value: Value
    ) -> list[Reading]:
        key = (asset, rule.hours_name)
        state = self._hours.get(key) or _Hours()
        running = rule.is_running(value, was_running=state.running)
        if running is None:
            return []
        self._hours[key] = state
        if state.last_ts_ms is not None and state.running is not None:
            gap_ms = ts_ms - state.last_ts_ms
            if state.running and 0 < gap_ms <= round(rule.max_gap_s * 1000):
                state.running_ms += gap_ms
            if running and not state.running:
                state.starts += 1
        # An earlier ts (the clock stepped back) becomes the new baseline: nothing accrues twice.
        state.last_ts_ms, state.running = ts_ms, running
        return [
            Reading(asset, rule.hours_name, ts_ms, state.running_ms / _MS_PER_HOUR),
            Reading(asset, rule.starts_name, ts_ms, state.starts),
        ]

    def _update_usage(self, rule: UsageRule, asset: str, ts_ms: int, value: Value) -> list[Reading]:
        if not is_number(value):
            return []
        state = self._usage.setdefault((asset, rule.name), _Usage(rule.kind))
        if state.kind != rule.kind:  # The config changed the rule's kind: keep the total only.
            state.kind, state.last_ts_ms, state.last_value = rule.kind, None, None
        last, last_ts = state.last_value, state.last_ts_ms
        if last is not None and last_ts is not None:
            if rule.kind == "counter":
                state.total.add(counter_increment(last, value, rule.counter_modulus) * rule.scale)
            elif 0 < ts_ms - last_ts <= round((rule.max_gap_s or 0) * 1000):
                mean_rate = (max(last, 0) + max(value, 0)) / 2
                seconds = (ts_ms - last_ts) / 1000
                state.total.add(mean_rate * seconds / rule.rate_unit_s * rule.scale)
        state.last_ts_ms, state.last_value = ts_ms, value
        return [Reading(asset, rule.name, ts_ms, state.total.value)]

    def to_state(self) -> dict[str, object]:
        """The totals and what they continue from, as a JSON-serialisable dict.

        Returns:
            `{"version": USAGE_STATE_VERSION, "operating_hours": [...], "usage": [...]}`, one
            entry per (asset, emitted name), including entries no rule of the current config
            names any more (a config edit never erases accrued hours).
        """
        return {
            "version": USAGE_STATE_VERSION,
            "operating_hours": [
                {
                    "asset": asset,
                    "name": name,
                    "running_ms": hours.running_ms,
                    "starts": hours.starts,
                    "last_ts_ms": hours.last_ts_ms,
                    "running": hours.running,
                }
                for (asset, name), hours in self._hours.items()
            ],
            "usage": [
                {
                    "asset": asset,
                    "name": name,
                    "kind": usage.kind,
                    "total": usage.total.total,
                    "compensation": usage.total.compensation,
                    "last_ts_ms": usage.last_ts_ms,
                    "last_value": usage.last_value,
                }
                for (asset, name), usage in self._usage.items()
            ],
        }

    @classmethod
    def from_state(cls, state: Mapping[str, object], *, config: UsageConfig) -> UsageCounters:
        """Counters with `config`, continuing from a dict that `to_state` returned.

        Args:
            state: The saved dict (e.g. after `json.loads`).
            config: The rules, which may differ from those the state was saved with.

        Returns:
            The restored counters.

        Raises:
            ValueError: `state` has another version or is malformed; the message names the entry
                and the key.
        """
        version = state.get("version")
        if version != USAGE_STATE_VERSION:
            raise ValueError(
                f"usage state: version must be {USAGE_STATE_VERSION}. Got {version!r} instead."
            )
        counters = cls(config=config)
        for where, entry in _entries(state, "operating_hours"):
            key = (_str(entry, "asset", where), _str(entry, "name", where))
            if key in counters._hours:
                raise ValueError(f"usage state: {where} repeats {key!r}.")
            counters._hours[key] = _Hours(
                running_ms=_int(entry, "running_ms", where),
                starts=_int(entry, "starts", where),
                last_ts_ms=_optional_int(entry, "last_ts_ms", where),
                running=_optional_bool(entry, "running", where),
            )
        for where, entry in _entries(state, "usage"):
            key = (_str(entry, "asset", where), _str(entry, "name", where))
            if key in counters._usage:
                raise ValueError(f"usage state: {where} repeats {key!r}.")
            kind = _str(entry, "kind", where)
            if kind not in {"rate", "counter"}:
                raise ValueError(f"usage state: {where}.kind must be 'rate' or 'counter'.")
            counters._usage[key] = _Usage(
                kind="rate" if kind == "rate" else "counter",
                total=CompensatedSum(
                    _float(entry, "total", where), _float(entry, "compensation", where)
                ),
                last_ts_ms=_optional_int(entry, "last_ts_ms", where),
                last_value=_optional_number(entry, "last_value", where),
            )
        return counters


def _entries(state: Mapping[str, object], section: str) -> list[tuple[str, Mapping[str, object]]]:
    entries = state.get(section)
    if not isinstance(entries, list):
        # ValueError, not TypeError: any malformed state raises the one documented exception.
        raise ValueError(f"usage state: {section} must be a list. Got {entries!r} instead.")  # noqa: TRY004
    out: list[tuple[str, Mapping[str, object]]] = []
    for index, entry in enumerate(entries):
        where = f"{section}[{index}]"
        if not isinstance(entry, Mapping):
            raise ValueError(f"usage state: {where} must be an object. Got {entry!r} instead.")  # noqa: TRY004
        out.append((where, entry))
    return out


def _field(entry: Mapping[str, object], key: str, where: str) -> object:
    if key not in entry:
        raise ValueError(f"usage state: {where} has no {key!r}.")
    return entry[key]


def _wrong(where: str, key: str, what: str, value: object) -> ValueError:
    return ValueError(f"usage state: {where}.{key} must be {what}. Got {value!r} instead.")


def _str(entry: Mapping[str, object], key: str, where: str) -> str:
    value = _field(entry, key, where)
    if not isinstance(value, str):
        raise _wrong(where, key, "a string", value)
    return value


def _int(entry: Mapping[str, object], key: str, where: str) -> int:
    value = _field(entry, key, where)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise _wrong(where, key, "an integer >= 0", value)
    return value


def _optional_int(entry: Mapping[str, object], key: str, where: str) -> int | None:
    if _field(entry, key, where) is None:
        return None
    return _int(entry, key, where)


def _optional_bool(entry: Mapping[str, object], key: str, where: str) -> bool | None:
    value = _field(entry, key, where)
    if value is not None and not isinstance(value, bool):
        raise _wrong(where, key, "true, false or null", value)
    return value


def _optional_number(entry: Mapping[str, object], key: str, where: str) -> int | float | None:
    value = _field(entry, key, where)
    if value is None:
        return None
    if not is_number(value) or not math.isfinite(value):
        raise _wrong(where, key, "a finite number or null", value)
    return value


def _float(entry: Mapping[str, object], key: str, where: str) -> float:
    value = _optional_number(entry, key, where)
    if value is None:
        raise _wrong(where, key, "a finite number", value)
    return float(value)
