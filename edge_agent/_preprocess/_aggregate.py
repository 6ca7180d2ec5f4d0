"""Min/mean/max of fast signals over tumbling, epoch-aligned windows (Rules 5-6)."""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence
from dataclasses import dataclass

from edge_agent._model import Quality, Reading
from edge_agent._preprocess._common import Key, checked, is_number, name_set, seconds_to_ms
from prognos_contract import MAX_NAME_LEN

_SUFFIXES = ("_min", "_mean", "_max", "_count", "_bad_count")


@dataclass(frozen=True, slots=True, kw_only=True)
class AggregateConfig:
    """The aggregation step: which signals, over which window.

    Attributes:
        signals: The signals to aggregate (every asset's); others pass through untouched.
        window_s: Window length in seconds (at least 0.001). Windows are aligned on multiples of
            it since the epoch: 10 s windows start at :00, :10, :20, ...
        emit_count: Also emit `{signal}_count` (good readings) and `{signal}_bad_count` (bad
            ones) per window, as ints.
        keep_raw: Also pass the raw readings of `signals` on; by default only aggregates leave.
        grace_s: How long after a window's end `flush` still leaves it open for late readings,
            in seconds (>= 0).
        name: The step's name in a pipeline, unique among its steps.
    """

    signals: Collection[str]
    window_s: float
    emit_count: bool = False
    keep_raw: bool = False
    grace_s: float = 0.0
    name: str = "aggregate"

    def __post_init__(self) -> None:
        object.__setattr__(self, "signals", name_set("signals", self.signals))
        seconds_to_ms("window_s", self.window_s)
        if self.grace_s != 0:
            seconds_to_ms("grace_s", self.grace_s)
        longest = MAX_NAME_LEN - max(map(len, _SUFFIXES))
        for signal in self.signals:
            if len(signal) > longest:
                raise ValueError(
                    f"signals: {signal!r} is longer than {longest} characters, so its aggregate "
                    f"names would exceed the contract's {MAX_NAME_LEN}."
                )


@dataclass(slots=True)
class _Window:
    """One open window of one series."""

    start_ms: int
    good: int = 0
    bad: int = 0
    low: float = math.inf
    high: float = -math.inf
    mean: float = 0.0
    bad_reason: str | None = None

    def add(self, x: float) -> None:
        self.good += 1
        self.low = min(self.low, x)
        self.high = max(self.high, x)
        # Welford's running mean rather than sum/count: O(1) state per series, no large
        # intermediate sum (a totaliser near 1e12 with millimetre steps keeps its digits, and
        # sums of values near 1e308 cannot overflow), error proportional to the window's spread.
        # math.fsum would be exact but must keep every value of the window in memory.
        delta = x - self.mean
        if math.isfinite(delta):
            self.mean += delta / self.good
        else:  # x and mean of opposite signs near ±1.8e308: rescale instead of subtracting.
            self.mean = self.mean - self.mean / self.good + x / self.good


class Aggregator:
    """Replaces fast signals by their min, mean and max per window (Rules 5-6).

    A window of a series closes when a reading of that series falls in another window (normally
    the next one; an earlier one means the clock stepped back, and the open window is emitted
    rather than lost), or when `flush` is called after its end. Closing emits, at
    `ts_ms` = the window's end (exclusive, so the aggregate is never stamped before the data it
    summarises): `{signal}_min`, `{signal}_mean`, `{signal}_max` as floats, and with
    `emit_count`, `{signal}_count` and `{signal}_bad_count` as ints.

    Bad readings, and good ones that are not numbers, are counted but never enter min, mean or
    max. A window without one good number yields bad `_min`/`_mean`/`_max` with the reason of
    its last bad reading (`not_numeric` for a non-number).

    Args:
        config: Which signals, over which window.
    """

    def __init__(self, *, config: AggregateConfig) -> None:
        self.config = config
        self._signals = frozenset(config.signals)
        self._window_ms = seconds_to_ms("window_s", config.window_s)
        self._grace_ms = round(config.grace_s * 1000)
        self._open: dict[Key, _Window] = {}

    def window_start(self, ts_ms: int) -> int:
        """The start, in epoch ms, of the window that holds `ts_ms`."""
        return ts_ms - ts_ms % self._window_ms

    def process(self, readings: Sequence[Reading]) -> list[Reading]:
        """Fold readings into their windows; return the closed windows' aggregates and the rest.

        Readings of other signals pass through in their input order; the aggregates of a
        window closed by a reading come where that reading was.
        """
        out: list[Reading] = []
        for raw in readings:
            if raw.signal not in self._signals:
                out.append(raw)
                continue
            reading = checked(raw)
            key = (reading.asset, reading.signal)
            start = self.window_start(reading.ts_ms)
            window = self._open.get(key)
            if window is None or window.start_ms != start:
                if window is not None:
                    out.extend(self._emit(key, window))
                window = self._open[key] = _Window(start)
            value = reading.value
            if reading.quality is Quality.GOOD and is_number(value):
                window.add(float(value))
            else:
                window.bad += 1
                good = reading.quality is Quality.GOOD
                window.bad_reason = "not_numeric" if good else reading.reason or "bad"
            if self.config.keep_raw:
                out.append(reading)
        return out

    def flush(self, now_ms: int) -> list[Reading]:
        """Close every window whose end plus `grace_s` is at or before `now_ms`.

        Args:
            now_ms: The caller's clock, epoch ms.

        Returns:
            The closed windows' aggregates, oldest window first.
        """
        closed = [
            (key, window)
            for key, window in self._open.items()
            if window.start_ms + self._window_ms + self._grace_ms <= now_ms
        ]
        closed.sort(key=lambda item: item[1].start_ms)
        out: list[Reading] = []
        for key, window in closed:
            del self._open[key]
            out.extend(self._emit(key, window))
        return out

    def _emit(self, key: Key, window: _Window) -> list[Reading]:
        asset, signal = key
        end = window.start_ms + self._window_ms
        if window.good:
            # Rounding can leave the running mean an ulp outside [min, max]; the clamp keeps it in.
            mean = min(max(window.mean, window.low), window.high)
            stats = (window.low, mean, window.high)
            out = [
                Reading(asset, f"{signal}{suffix}", end, value)
                for suffix, value in zip(_SUFFIXES[:3], stats, strict=True)
            ]
        else:
            reason = window.bad_reason or "bad"
            out = [Reading.bad(asset, f"{signal}{suffix}", end, reason) for suffix in _SUFFIXES[:3]]
        if self.config.emit_count:
            out.append(Reading(asset, f"{signal}_count", end, window.good))
            out.append(Reading(asset, f"{signal}_bad_count", end, window.bad))
        return out
