"""The fleet's condition: every asset's latest scores, read in the background and kept.

The fleet overview sorts and filters every asset on each request. Its scores come from one
InfluxDB query of every series' latest point, which takes seconds for 10,000 assets (20,000
series: about 9 s on influxd 1.6 on a busy 2-core machine), so it never runs on a request's
path once a first read is done:

- `LatestScores.snapshot` answers from the last read; when that is older than `ttl_s` it starts
  one background re-read and still answers from the old one (stale while revalidating).
- Only the very first call (nothing read yet) waits for the read; `prime` starts it at start-up.
- Each read also reduces every asset's rows to its `Condition` (lowest health, worst
  probability, shortest remaining life), so a request sorts plain tuples, not models.

Open alert and work-order counts are not kept here: the store is read on every request, so an
action shows at once.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping

import structlog

from cloud.api._influx import ScoreRow, latest_scores
from cloud.store import InfluxClient, InfluxError

log = structlog.get_logger(__name__)


@dataclasses.dataclass(frozen=True, slots=True)
class Condition:
    """An asset's condition from its latest scores (None where no target says)."""

    health: float | None = None
    worst_probability: float | None = None
    worst_target: str | None = None
    shortest_rul: float | None = None
    shortest_rul_lo: float | None = None
    scored_at: dt.datetime | None = None


UNSCORED = Condition()


def lowest(values: Iterable[float | None]) -> float | None:
    """The smallest known value; None when none is known."""
    known = [v for v in values if v is not None]
    return min(known) if known else None


def condition(rows: list[ScoreRow]) -> Condition:
    """Reduce an asset's latest rows (one per target and model) to its `Condition`."""
    if not rows:
        return UNSCORED
    by_prob = [r for r in rows if r.fields["probability"] is not None]
    by_health = [r for r in rows if r.fields["health"] is not None]
    worst = (
        max(by_prob, key=lambda r: r.fields["probability"] or 0.0)
        if by_prob
        else min(by_health, key=lambda r: r.fields["health"] or 0.0, default=None)
    )
    with_rul = [r for r in rows if r.fields["rul"] is not None]
    shortest = min(with_rul, key=lambda r: r.fields["rul"] or 0.0, default=None)
    return Condition(
        health=lowest(r.fields["health"] for r in rows),
        worst_probability=None if not by_prob or worst is None else worst.fields["probability"],
        worst_target=None if worst is None else worst.target,
        shortest_rul=None if shortest is None else shortest.fields["rul"],
        shortest_rul_lo=None if shortest is None else shortest.fields["rul_lo"],
        scored_at=max(r.time for r in rows),
    )


@dataclasses.dataclass(frozen=True, slots=True)
class Snapshot:
    """One read of the fleet's latest scores."""

    conditions: Mapping[str, Condition]
    read_at: float
    """`time.monotonic()` when the read finished."""


class LatestScores:
    """The latest score of every (asset, target, model), grouped by asset. Thread-safe.

    Args:
        ttl_s: Seconds a read is fresh; older ones are re-read in the background. 0 reads on
            every call (and waits).
    """

    def __init__(self, ttl_s: float) -> None:
        self.ttl_s = ttl_s
        self._lock = threading.Lock()
        self._read_lock = threading.Lock()
        self._snapshot: Snapshot | None = None
        self._refreshing = False
        self._thread: threading.Thread | None = None

    def _read(self, influx: InfluxClient, since: dt.datetime) -> Snapshot:
        with self._read_lock:  # One read at a time; a waiter takes the fresh result.
            current = self._snapshot
            if current is not None and self.ttl_s > 0 and self._fresh(current):
                return current
            started = time.monotonic()
            grouped: defaultdict[str, list[ScoreRow]] = defaultdict(list)
            for row in latest_scores(influx, since=since):
                grouped[row.asset].append(row)
            done = time.monotonic()
            snapshot = Snapshot(
                conditions={asset: condition(rows) for asset, rows in grouped.items()},
                read_at=done,
            )
            with self._lock:
                self._snapshot = snapshot
            log.debug("latest_scores_read", assets=len(grouped), seconds=round(done - started, 3))
            return snapshot

    def _fresh(self, snapshot: Snapshot) -> bool:
        return time.monotonic() - snapshot.read_at < self.ttl_s

    def _background(self, influx: InfluxClient, since: Callable[[], dt.datetime]) -> None:
        try:
            self._read(influx, since())
        except InfluxError as exc:  # The next request tries again; old data stays served.
            log.warning("latest_scores_read_failed", error=str(exc))
        except Exception:  # A background reader must not die unheard.
            log.exception("latest_scores_read_failed")
        finally:
            with self._lock:
                self._refreshing = False

    def _start_background(self, influx: InfluxClient, since: Callable[[], dt.datetime]) -> None:
        with self._lock:
            if self._refreshing:
                return
            self._refreshing = True
        thread = threading.Thread(
            target=self._background, args=(influx, since), name="latest-scores", daemon=True
        )
        self._thread = thread
        thread.start()

    def close(self, timeout_s: float) -> None:
        """Wait up to `timeout_s` for a background read (before its InfluxDB client closes)."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout_s)

    def prime(self, influx: InfluxClient, since: Callable[[], dt.datetime]) -> None:
        """Start the first read in the background (at start-up), so no request waits for it."""
        if self.ttl_s > 0:
            self._start_background(influx, since)

    def snapshot(self, influx: InfluxClient, *, since: Callable[[], dt.datetime]) -> Snapshot:
        """The latest read; stale ones start a background re-read, none waits for the first.

        Raises:
            InfluxError: The first read (or every read, with ``ttl_s`` 0) failed.
        """
        with self._lock:
            current = self._snapshot
        if current is None or self.ttl_s <= 0:
            return self._read(influx, since())
        if not self._fresh(current):
            self._start_background(influx, since)
        return current
