"""Report by exception: a deadband per signal, with a heartbeat (Rules 1-3)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType

from edge_agent._model import Quality, Reading, Value
from edge_agent._preprocess._common import (
    Key,
    checked,
    is_number,
    require_finite,
    same_value,
    seconds_to_ms,
)


@dataclass(frozen=True, slots=True, kw_only=True)
class DeadbandRule:
    """How one signal is thinned.

    A good number is reported when it leaves the band around the last reported value; the band's
    half-width is the wider of `deadband_abs` and `deadband_pct` percent of that value. The
    absolute band is therefore a floor for the percent band near zero, where a percent of a tiny
    value would report every flicker of noise. Both 0 (the default) reports every reading.
    Booleans and strings are reported on change. Every signal, good or bad, is reported at least
    every `heartbeat_s`, so that a flat signal still proves it is alive.

    Attributes:
        deadband_abs: Absolute deadband, in the signal's own units (>= 0).
        deadband_pct: Deadband in percent of the magnitude of the last reported value (>= 0;
            `1.0` means 1 %).
        heartbeat_s: Longest time between two reports of the signal, in seconds, measured on the
            readings' `ts_ms`; `None` for no heartbeat.
    """

    deadband_abs: float = 0.0
    deadband_pct: float = 0.0
    heartbeat_s: float | None = None

    def __post_init__(self) -> None:
        require_finite("deadband_abs", self.deadband_abs, minimum=0)
        require_finite("deadband_pct", self.deadband_pct, minimum=0)
        if self.heartbeat_s is not None:
            seconds_to_ms("heartbeat_s", self.heartbeat_s)


@dataclass(frozen=True, slots=True, kw_only=True)
class DeadbandConfig:
    """The deadband step: a rule per signal name, and one for the others.

    Attributes:
        default: The rule for signals not in `signals`; the default reports every number and
            every change of a boolean or string.
        signals: Signal name to its rule, e.g.
            `{"bearing_temp_c": DeadbandRule(deadband_abs=0.5)}`; kept as a read-only copy.
        name: The step's name in a pipeline, unique among its steps.
    """

    default: DeadbandRule = DeadbandRule()
    signals: Mapping[str, DeadbandRule] = field(default_factory=dict)
    name: str = "deadband"

    def __post_init__(self) -> None:
        object.__setattr__(self, "signals", MappingProxyType(dict(self.signals)))


def _changed(rule: DeadbandRule, last: Value | None, value: Value | None) -> bool:
    """Whether a good value differs from the last reported good one by more than the rule allows."""
    if value is None or last is None:  # pragma: no cover - `checked` good readings have values
        return True
    if is_number(value) and is_number(last):
        if rule.deadband_abs == 0 and rule.deadband_pct == 0:
            return True
        band = max(rule.deadband_abs, rule.deadband_pct / 100 * abs(last))
        return abs(value - last) > band
    return not same_value(value, last)


def should_report(rule: DeadbandRule, last: Reading | None, reading: Reading) -> bool:
    """Whether `reading` is reported, given the last reported reading of its series.

    Args:
        rule: The signal's rule.
        last: The last reported reading of the same (asset, signal), or `None` if there is none.
        reading: The new reading, already `checked`.

    Returns:
        True if the reading must be reported (Rules 1-3).
    """
    if last is None or reading.ts_ms < last.ts_ms:
        return True  # Rule 2: the first one, or the clock stepped back.
    quality_changed = (reading.quality, reading.reason) != (last.quality, last.reason)
    heartbeat_due = rule.heartbeat_s is not None and reading.ts_ms - last.ts_ms >= round(
        rule.heartbeat_s * 1000
    )
    if quality_changed or heartbeat_due or reading.quality is not Quality.GOOD:
        return quality_changed or heartbeat_due
    return _changed(rule, last.value, reading.value)


class Deadband:
    """Report by exception: passes a reading on only when it says something new (Rules 1-3).

    Remembers, per (asset, signal), the last reading it reported, and nothing else. `flush` has
    nothing to emit: a suppressed value is within the band of one already reported, so a reader of
    the output may hold each reported value until the next one (sample-and-hold).

    Args:
        config: The step's rules; `None` reports every number and every change.
    """

    def __init__(self, *, config: DeadbandConfig | None = None) -> None:
        self.config = config if config is not None else DeadbandConfig()
        self._last: dict[Key, Reading] = {}

    def process(self, readings: Sequence[Reading]) -> list[Reading]:
        """Return the readings to report, in their input order.

        Readings of one (asset, signal) must come in the order they were read; a reading older
        than the last report is taken as a clock step and reported (Rule 2).
        """
        out: list[Reading] = []
        for raw in readings:
            reading = checked(raw)
            key = (reading.asset, reading.signal)
            rule = self.config.signals.get(reading.signal, self.config.default)
            if should_report(rule, self._last.get(key), reading):
                self._last[key] = reading
                out.append(reading)
        return out

    def flush(self, now_ms: int) -> list[Reading]:  # noqa: ARG002 - the step protocol's signature
        """Return nothing: a deadband never holds a reading back for later."""
        return []
