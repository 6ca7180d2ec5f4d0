"""From the agent's per-signal readings to committed outbox batches.

Theory of operation
-------------------
The agent hands every batch of pre-processed readings (one signal of one asset at one time,
`edge_agent._model.Reading`) to `DeliverySink`, a plain callable that must not block. It

1. groups them into contract readings (`to_contract`): one per asset and timestamp, good values
   in `values`, failed signals in `bad`;
2. adds those to a `Batcher`, a pure batching policy with the time passed in: a batch is ready
   when it holds `max_readings`, or when its oldest reading has waited `linger_s`;
3. queues ready batches for one writer task, which commits each to the outbox in a worker
   thread (an fsync must not stall polling) strictly one after the other, so `seq` follows the
   order the readings were read in.

Rules:
1. A reading the contract refuses (a reserved signal name, a string too long) is counted in
   `invalid_readings` and logged once per asset and reason; it never stops delivery.
2. What `enqueue` dropped to keep the outbox under its cap is counted by the outbox and, through
   `on_dropped`, becomes one `outbox_dropped` event per enqueue that dropped.
3. A batch the outbox refuses as too large is split in halves until it fits; a single reading
   that cannot fit is counted as invalid.
4. Any other outbox failure (`BufferCorrupt`, a closed outbox) ends the writer task with that
   error: the runtime stops the agent (exit code 1).
5. Readings still in memory (batcher or queue) at `aclose()` are committed first, including
   those added while the writer was busy committing; a SIGKILL loses them, never what was
   committed.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import structlog

from edge_agent._model import Quality
from edge_agent._model import Reading as SignalReading
from edge_agent._outbox import EnqueueResult, Outbox
from prognos_contract import ContractError
from prognos_contract import Reading as ContractReading

_log = structlog.get_logger("edge_agent.delivery")


@dataclass(slots=True)
class Grouped:
    """What `to_contract` made of a list of signal readings.

    Attributes:
        readings: One contract reading per asset and timestamp, in first-seen order.
        invalid: (asset, reason) of each reading group the contract refused.
    """

    readings: list[ContractReading] = field(default_factory=list)
    invalid: list[tuple[str, str]] = field(default_factory=list)


def to_contract(readings: Sequence[SignalReading]) -> Grouped:
    """Group per-signal readings into contract readings: one per asset and `ts`.

    A signal read good and bad at the same time keeps the good value; a signal read twice at the
    same time keeps the last value.

    Args:
        readings: Pre-processed readings, good or bad.

    Returns:
        The contract readings, and the groups the contract refused.
    """
    values: dict[tuple[str, int], dict[str, object]] = {}
    bad: dict[tuple[str, int], list[str]] = {}
    for reading in readings:
        key = (reading.asset, reading.ts_ms)
        group = values.setdefault(key, {})
        failed = bad.setdefault(key, [])
        if reading.quality is Quality.GOOD and reading.value is not None:
            group[reading.signal] = reading.value
            if reading.signal in failed:
                failed.remove(reading.signal)
        elif reading.signal not in group and reading.signal not in failed:
            failed.append(reading.signal)
    out = Grouped()
    for key, group in values.items():
        asset, ts = key
        try:
            out.readings.append(
                ContractReading(asset=asset, ts=ts, values=group, bad=tuple(bad[key]))  # type: ignore[arg-type]
            )
        except ContractError as exc:
            out.invalid.append((asset, exc.reason))
    return out


class Batcher:
    """Collects readings into batches of at most `max_readings`, each waiting at most `linger_s`.

    Pure: time is a parameter (monotonic seconds), nothing here sleeps or reads a clock.

    Args:
        max_readings: A batch is ready as soon as it holds this many readings.
        linger_s: A non-empty batch is ready this long after its first reading arrived.
    """

    def __init__(self, *, max_readings: int, linger_s: float) -> None:
        if max_readings < 1:
            raise ValueError(f"max_readings must be at least 1. Got {max_readings} instead.")
        if linger_s < 0:
            raise ValueError(f"linger_s must be at least 0. Got {linger_s} instead.")
        self.max_readings = max_readings
        self.linger_s = linger_s
        self._open: list[ContractReading] = []
        self._since_s: float | None = None

    def __len__(self) -> int:
        """Readings waiting in the open batch."""
        return len(self._open)

    @property
    def deadline_s(self) -> float | None:
        """When the open batch becomes ready by lingering; None when it is empty."""
        return None if self._since_s is None else self._since_s + self.linger_s

    def add(
        self, readings: Sequence[ContractReading], *, now_s: float
    ) -> list[list[ContractReading]]:
        """Add readings; return the batches that became ready (full ones, then a lingered one).

        Args:
            readings: Readings in the order they were read.
            now_s: Monotonic seconds.
        """
        ready = self.due(now_s=now_s)
        for reading in readings:
            if not self._open:
                self._since_s = now_s
            self._open.append(reading)
            if len(self._open) >= self.max_readings:
                ready.append(self._take())
        ready.extend(self.due(now_s=now_s))
        return ready

    def due(self, *, now_s: float) -> list[list[ContractReading]]:
        """The open batch if it has lingered long enough, else nothing."""
        deadline = self.deadline_s
        if deadline is not None and now_s >= deadline:
            return [self._take()]
        return []

    def drain(self) -> list[list[ContractReading]]:
        """The open batch, ready or not (at stop)."""
        return [self._take()] if self._open else []

    def _take(self) -> list[ContractReading]:
        batch, self._open, self._since_s = self._open, [], None
        return batch


DroppedCallback = Callable[[EnqueueResult], None]
"""Told of every `enqueue` that dropped old batches (the runtime publishes an event)."""


class DeliverySink:
    """The agent's sink when MQTT is configured: readings into the outbox, in batches.

    Call order: `start()` on the running loop, then the agent calls the instance (from its
    tasks, on the same loop) any number of times, then `aclose()`. `failure` holds the error that
    ended the writer task, if any (see Rule 4); `done` is set when it ended.

    Args:
        outbox: The durable outbox.
        topic: The telemetry topic of this gateway.
        max_readings: See `Batcher`.
        linger_s: See `Batcher`.
        on_dropped: See `DroppedCallback`.
        wall_clock_ms: Epoch milliseconds (`created_ms` of each batch).
        monotonic_s: Monotonic seconds, for the batcher.
    """

    def __init__(
        self,
        *,
        outbox: Outbox,
        topic: str,
        max_readings: int,
        linger_s: float,
        on_dropped: DroppedCallback,
        wall_clock_ms: Callable[[], int],
        monotonic_s: Callable[[], float],
    ) -> None:
        self._outbox = outbox
        self._topic = topic
        self._batcher = Batcher(max_readings=max_readings, linger_s=linger_s)
        self._on_dropped = on_dropped
        self._wall_ms = wall_clock_ms
        self._now_s = monotonic_s
        self._ready: collections.deque[list[ContractReading]] = collections.deque()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._logged_invalid: set[tuple[str, str]] = set()
        self.invalid_readings = 0
        """Readings the contract refused (Rule 1), a counter."""
        self.enqueued_batches = 0
        """Batches committed by this process, a counter."""
        self.failure: BaseException | None = None
        """The error that ended the writer (Rule 4)."""
        self.done = asyncio.Event()
        """Set when the writer task ended (normally at `aclose()`, or by a failure)."""

    @property
    def buffered_readings(self) -> int:
        """Readings in memory: not yet committed to the outbox (a gauge)."""
        return len(self._batcher) + sum(len(batch) for batch in self._ready)

    def start(self) -> None:
        """Start the writer task (on the running loop)."""
        self._task = asyncio.create_task(self._writer(), name="edge[delivery].enqueue")

    def __call__(self, readings: Sequence[SignalReading]) -> None:
        """The `Sink`: group and batch (no I/O); ready batches go to the writer."""
        grouped = to_contract(readings)
        for asset, reason in grouped.invalid:
            self.invalid_readings += 1
            if (asset, reason) not in self._logged_invalid:
                self._logged_invalid.add((asset, reason))
                _log.warning("reading_refused_by_contract", asset=asset, reason=reason)
        ready = self._batcher.add(grouped.readings, now_s=self._now_s())
        if ready:
            self._ready.extend(ready)
        self._wake.set()

    async def aclose(self) -> None:
        """Commit what is in memory, then end the writer task. Safe to call more than once."""
        self._closing = True
        self._wake.set()
        if self._task is not None:
            await asyncio.wait([self._task])

    async def _writer(self) -> None:
        try:
            while True:
                deadline = self._batcher.deadline_s
                if not self._ready and not self._closing:
                    timeout = None if deadline is None else max(0.0, deadline - self._now_s())
                    self._wake.clear()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), timeout)
                self._ready.extend(self._batcher.due(now_s=self._now_s()))
                if self._closing:
                    self._ready.extend(self._batcher.drain())
                while self._ready:
                    await self._commit(self._ready[0])
                    self._ready.popleft()
                if self._closing and not self._batcher:
                    # Readings may have been batched while the last commit ran (in its thread):
                    # go round again until nothing is left in memory (Rule 5).
                    return
        except Exception as exc:  # noqa: BLE001 - kept for the runtime, which stops the agent
            self.failure = exc
        finally:
            self.done.set()

    async def _commit(self, batch: list[ContractReading]) -> None:
        try:
            result = await asyncio.to_thread(
                self._outbox.enqueue, batch, topic=self._topic, now_ms=self._wall_ms()
            )
        except ContractError as exc:
            if exc.reason != "too_large":
                raise
            if len(batch) == 1:
                self.invalid_readings += 1
                _log.warning("reading_too_large", asset=batch[0].asset, ts=batch[0].ts)
                return
            half = len(batch) // 2
            await self._commit(batch[:half])
            await self._commit(batch[half:])
            return
        self.enqueued_batches += 1
        if result.dropped_messages:
            self._on_dropped(result)
