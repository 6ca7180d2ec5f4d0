"""Edge pre-processing: report by exception, window aggregates, and usage counters.

Theory of operation
-------------------
Between decoding and the outbox, readings pass a `Pipeline` of steps, each a Processor with two
calls: `process(readings)` takes a batch and returns what to pass on now, and `flush(now_ms)`
returns what became due without new input (closed aggregation windows). Steps are chained in the
order the config lists them: each one's output is the next one's input, and a flush flows through
the later steps too. All of it is pure: nothing here reads a clock, sleeps, logs or does I/O, so
tests drive it with plain lists of readings.

- `Deadband` (report by exception, like OPC UA's deadband filter or a Kepware/PI exception test)
  remembers, per (asset, signal), the last reading it reported, and passes a reading on only when
  it says something new: a number that left the band, a changed boolean or string, a changed
  quality, or a heartbeat that proves a flat signal is alive.
- `Aggregator` (like Telegraf's basicstats aggregator) replaces fast signals by
  `{signal}_min/_mean/_max` (and counts) per tumbling, epoch-aligned window.
- `UsageCounters` accrues per asset: operating hours and starts from a "running" condition, and
  usage totals from a rate signal or a device counter. It keeps them in memory; the caller
  persists `to_state()` and restores it with `from_state()`.

Rules:
1. A quality change is never suppressed: good to bad, bad to good, and a bad reading with a
   different reason are reported at once.
2. The first reading of a series is always reported, and so is a reading older than the last one
   reported (the clock stepped back): a duplicate is better than a silence.
3. A good number is suppressed only while |value - last reported| <= max(`deadband_abs`,
   `deadband_pct` % of |last reported|); with both 0 every number is reported. A boolean or string
   is suppressed only while it equals the last reported one. Any signal, good or bad, is reported
   at least every `heartbeat_s`. So a reader may hold each reported value until the next report
   (sample-and-hold), within the deadband.
4. Time is a reading's `ts_ms` or the caller's `now_ms` (epoch ms); no step reads a clock.
5. Aggregation windows are [start, start + `window_s`), aligned on multiples of `window_s` since
   the epoch; aggregates carry `ts_ms` = the window's end, never earlier than the data.
6. Nothing is dropped in aggregation: bad readings are counted but never enter min/mean/max; a
   window without a good number yields bad aggregates with the reason; a reading in another
   window than the open one (the next one, or an earlier one after a clock step) closes it.
7. A good reading the MQTT contract cannot carry becomes bad on its way through a step that
   looks at values: `non_finite` (NaN, infinity), `out_of_range` (int outside int64).
8. Usage totals never decrease. Operating hours accrue only between two good samples at most
   `max_gap_s` apart, at the earlier sample's state: an offline device accrues nothing. A start is
   a change from not running to running between two good samples.
9. Usage state is a JSON-serialisable dict with a `version`; restoring keeps entries the current
   config no longer names, so a config edit never erases accrued hours.
"""

from edge_agent._preprocess._aggregate import AggregateConfig, Aggregator
from edge_agent._preprocess._deadband import Deadband, DeadbandConfig, DeadbandRule
from edge_agent._preprocess._pipeline import (
    PIPELINE_STATE_VERSION,
    Pipeline,
    Step,
    StepConfig,
    build_step,
)
from edge_agent._preprocess._usage import (
    USAGE_STATE_VERSION,
    OperatingHoursRule,
    UsageConfig,
    UsageCounters,
    UsageKind,
    UsageRule,
)

__all__ = [
    "PIPELINE_STATE_VERSION",
    "USAGE_STATE_VERSION",
    "AggregateConfig",
    "Aggregator",
    "Deadband",
    "DeadbandConfig",
    "DeadbandRule",
    "OperatingHoursRule",
    "Pipeline",
    "Step",
    "StepConfig",
    "UsageConfig",
    "UsageCounters",
    "UsageKind",
    "UsageRule",
    "build_step",
]
