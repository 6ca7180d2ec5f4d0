"""Scheduling: which device's poll group goes on the wire next, and back-off for failing devices.

Theory of operation
-------------------
Each Modbus link (an RTU bus, or a TCP device or gateway) has one `ModbusWorker`, run as one
asyncio task, so a timeout on one bus or TCP device never delays another. Within a link, requests
go out one at a time (a half-duplex bus cannot do better); the worker asks its pure
`PollSchedule` what is due next, sleeps until then, polls, and reports the outcome back.

Rules:
1. Each `PollGroup` of each device has its own slot with a due time. Slots keep their phase: after
   a poll the next due time is the previous one plus the interval, skipping whole intervals that
   were missed, so one late poll does not shift all later ones.
2. A device that did not answer a poll enters back-off (`Backoff`): exponential from `initial_s`,
   capped at `max_s`. None of its slots is due before its retry time, so while it is down it
   costs its neighbours one request timeout per retry, no more.
3. Inside a poll, the first request that finds the device silent (`timeout`, `disconnected`)
   ends the poll for that device: its remaining requests are not sent and carry the same reason.
4. The schedule and the back-off are pure: time is passed in. The worker takes its clock and its
   sleep as parameters, so schedule tests advance a fake clock and never sleep.
5. One `task.cancel()` stops a worker. A link may swallow a cancel (pymodbus's `wait_for` on
   Python 3.11, see `raise_if_cancel_lost`); the worker checks its task's `cancelling()` after
   every request and before every sleep, and raises the `CancelledError` the await did not.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import structlog

from edge_agent._model import BlockResult, PollPlan, Quality, Reading, ReadRequest
from edge_agent.sources._device import DeviceStartupError, DeviceState, log_transition
from edge_agent.sources._modbus import ModbusLink, raise_if_cancel_lost
from edge_agent.sources._source import Emit

_log = structlog.get_logger("edge_agent.sources")

StartupErrorBehavior = Literal["error", "ignore", "retry"]

SILENT_REASONS = frozenset({"timeout", "no_response", "disconnected"})
"""Request errors that mean the device did not answer; the rest of its poll is skipped (rule 3)."""
NOT_ANSWERED_REASONS = SILENT_REASONS | {"bad_frame"}
"""A poll in which every request failed with one of these is a failed poll (back-off)."""


class Backoff:
    """Exponential back-off with a cap, for one device (pure: `now` is passed in).

    The n-th consecutive failure makes the device wait `min(initial_s * factor**(n-1), max_s)`
    seconds, counted from the end of the failed attempt. A success resets it.

    Args:
        initial_s: Wait after the first failure.
        max_s: Longest wait.
        factor: Growth per further failure.
    """

    def __init__(self, *, initial_s: float, max_s: float, factor: float = 2.0) -> None:
        if not 0 < initial_s <= max_s:
            raise ValueError(f"need 0 < initial_s <= max_s, got {initial_s} and {max_s}")
        if factor < 1:
            raise ValueError(f"factor must be at least 1, got {factor}")
        self.initial_s = initial_s
        self.max_s = max_s
        self.factor = factor
        self.failures = 0
        self.retry_at: float | None = None
        """Monotonic time before which the device is not polled; None when not backing off."""

    def delay_s(self, failures: int) -> float:
        """The wait after `failures` consecutive failures (0 for none)."""
        if failures <= 0:
            return 0.0
        # Compare exponents rather than computing factor**n, which overflows for long outages.
        if (failures - 1) * math.log(self.factor) >= math.log(self.max_s / self.initial_s):
            return self.max_s
        return min(self.initial_s * self.factor ** (failures - 1), self.max_s)

    def failed(self, now: float) -> float:
        """Record a failed attempt that ended at `now`; returns the retry time."""
        self.failures += 1
        self.retry_at = now + self.delay_s(self.failures)
        return self.retry_at

    def succeeded(self) -> None:
        """Record a successful attempt: no more waiting."""
        self.failures = 0
        self.retry_at = None

    def ready(self, now: float) -> bool:
        """Whether the device may be polled at `now`."""
        return self.retry_at is None or now >= self.retry_at


@dataclass(frozen=True, slots=True)
class Due:
    """The next poll: group `group` of device `device`, not before monotonic time `at`."""

    at: float
    device: str
    group: int


@dataclass(slots=True)
class _Slot:
    device: str
    group: int
    interval_s: float
    due: float
    order: int


class PollSchedule:
    """Due times of every (device, poll group) of one link, with per-device back-off (pure).

    Call order: `add()` the devices, then repeatedly `next()` and, after polling what it named,
    `completed()`. `remove()` drops a device for good.

    Args:
        start: Monotonic time of the first poll of every group.
    """

    def __init__(self, *, start: float) -> None:
        self._start = start
        self._slots: list[_Slot] = []
        self._backoff: dict[str, Backoff] = {}

    def add(self, device: str, intervals_s: Sequence[float], backoff: Backoff) -> None:
        """Schedule a device's groups (by index) at their intervals, all due at `start`."""
        if device in self._backoff:
            raise ValueError(f"device {device!r} is already scheduled")
        for index, interval_s in enumerate(intervals_s):
            if interval_s <= 0:
                raise ValueError(f"device {device!r} group {index}: interval must be > 0")
            self._slots.append(_Slot(device, index, interval_s, self._start, len(self._slots)))
        self._backoff[device] = backoff

    def remove(self, device: str) -> None:
        """Stop polling a device."""
        self._slots = [slot for slot in self._slots if slot.device != device]
        self._backoff.pop(device, None)

    def backoff(self, device: str) -> Backoff:
        """The back-off state of a device."""
        return self._backoff[device]

    def next(self) -> Due | None:
        """The slot to poll next and when (possibly in the past: poll at once); None if empty."""
        best: tuple[float, float, int] | None = None
        chosen: _Slot | None = None
        for slot in self._slots:
            retry_at = self._backoff[slot.device].retry_at
            at = slot.due if retry_at is None else max(slot.due, retry_at)
            key = (at, slot.due, slot.order)
            if best is None or key < best:
                best, chosen = key, slot
        if chosen is None or best is None:
            return None
        return Due(best[0], chosen.device, chosen.group)

    def completed(self, device: str, group: int, *, now: float, ok: bool) -> None:
        """Record that the poll `next()` named ended at `now`, answered (`ok`) or not."""
        for slot in self._slots:
            if slot.device == device and slot.group == group:
                slot.due = _advance(slot.due, slot.interval_s, now)
        backoff = self._backoff[device]
        if ok:
            backoff.succeeded()
        else:
            backoff.failed(now)


def _advance(due: float, interval_s: float, now: float) -> float:
    """The next due time after `due`, keeping phase and skipping intervals already past."""
    nxt = due + interval_s
    if nxt < now:
        nxt += math.ceil((now - nxt) / interval_s) * interval_s
    return nxt


@dataclass(frozen=True, slots=True, kw_only=True)
class ModbusDevice:
    """One Modbus device as a worker polls it.

    Attributes:
        name: Device name from the config (log and state key).
        asset: Asset id its readings carry.
        plan: The compiled poll plan (requests per group, decoders).
        startup_error_behavior: If the first poll finds the device silent: `error` stops the
            worker with `DeviceStartupError`, `ignore` drops the device, `retry` backs off and
            keeps trying (Telegraf's option of the same name).
        backoff_initial_s: Wait after the first failure; None means the device's fastest poll
            interval, so a retry never comes sooner than a normal poll would have.
        backoff_max_s: Longest wait between retries.
    """

    name: str
    asset: str
    plan: PollPlan
    startup_error_behavior: StartupErrorBehavior = "retry"
    backoff_initial_s: float | None = None
    backoff_max_s: float = 300.0


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _current_task() -> asyncio.Task[object]:
    task = asyncio.current_task()
    if task is None:
        raise RuntimeError("a Modbus worker must run inside an asyncio task")
    return task


class ModbusWorker:
    """Polls the devices behind one `ModbusLink` (an RTU bus or a TCP endpoint): a `Source`.

    Args:
        name: Name of the bus or endpoint; the task is `edge[{name}].poll`.
        link: The channel requests go through.
        devices: The devices on it; names must be unique.
        clock: Monotonic seconds, for the schedule.
        sleep: Awaitable sleep, for the schedule.
        wall_clock_ms: Epoch milliseconds, for device state.
    """

    def __init__(
        self,
        *,
        name: str,
        link: ModbusLink,
        devices: Sequence[ModbusDevice],
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        wall_clock_ms: Callable[[], int] = _now_ms,
    ) -> None:
        names = [device.name for device in devices]
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate device names on {name!r}: {names}")
        self._name = name
        self._link = link
        self._devices = {device.name: device for device in devices}
        self._states = {d.name: DeviceState(name=d.name, asset=d.asset) for d in devices}
        self._clock = clock
        self._sleep = sleep
        self._wall_ms = wall_clock_ms

    @property
    def name(self) -> str:
        """The bus or endpoint name."""
        return self._name

    @property
    def link(self) -> ModbusLink:
        """The channel's link; writes go through it, serialised with the polls."""
        return self._link

    @property
    def states(self) -> Mapping[str, DeviceState]:
        """Runtime state per device name."""
        return self._states

    def _schedule(self) -> PollSchedule:
        schedule = PollSchedule(start=self._clock())
        for device in self._devices.values():
            intervals = [group.interval_s for group in device.plan.groups]
            initial_s = device.backoff_initial_s or min(intervals, default=1.0)
            backoff = Backoff(initial_s=initial_s, max_s=max(initial_s, device.backoff_max_s))
            schedule.add(device.name, intervals, backoff)
        return schedule

    async def run(self, emit: Emit) -> None:
        """Poll until cancelled (see `Source.run`)."""
        task = _current_task()
        cancelling = task.cancelling()
        schedule = self._schedule()
        while (due := schedule.next()) is not None:
            raise_if_cancel_lost(task, cancelling)  # rule 5
            wait_s = due.at - self._clock()
            if wait_s > 0:
                await self._sleep(wait_s)
            device = self._devices[due.device]
            readings, failure = await self._poll(device, due.group)
            schedule.completed(due.device, due.group, now=self._clock(), ok=failure is None)
            state = self._states[due.device]
            first = state.available is None
            if failure is None:
                transition = state.record_success(now_ms=self._wall_ms())
            else:
                transition = state.record_failure(reason=failure, now_ms=self._wall_ms())
            emit(readings)
            if first and failure is not None and device.startup_error_behavior != "retry":
                if device.startup_error_behavior == "error":
                    raise DeviceStartupError(device=device.name, reason=failure)
                schedule.remove(device.name)
                _log.warning(
                    "device_ignored", device=device.name, asset=device.asset, reason=failure
                )
                continue
            log_transition(state, transition)

    async def poll(self, device_name: str, group: int) -> list[Reading]:
        """Poll one group of one device now, outside the schedule ("poll now" commands).

        Never run it concurrently with `run()` on another task for the same link unless the link
        serialises requests (both built-in links do).
        """
        readings, _ = await self._poll(self._devices[device_name], group)
        return readings

    async def _poll(self, device: ModbusDevice, group: int) -> tuple[list[Reading], str | None]:
        """Send a group's requests; returns the readings and the failure reason (None if ok)."""
        task = _current_task()
        cancelling = task.cancelling()
        counters = self._states[device.name].counters
        read = self._link.read
        results: dict[ReadRequest, BlockResult] = {}
        silent: BlockResult | None = None
        answered = False  # some request was answered, even with an error: not a failed poll
        failure: str | None = None  # the first request's reason, while none was answered
        for request in device.plan.groups[group].requests:
            if silent is not None:
                counters.requests_skipped += 1
                results[request] = silent
                continue
            result = await read(request)
            raise_if_cancel_lost(task, cancelling)  # rule 5: no further request after a cancel
            counters.requests += 1
            results[request] = result
            error = result.error
            if error is None:
                answered = True
                continue
            counters.errors[error] += 1
            if error in SILENT_REASONS:
                silent = result
            if error not in NOT_ANSWERED_REASONS:
                answered = True
            elif failure is None:
                failure = error
        readings = device.plan.decode(results)
        good = [reading.quality for reading in readings].count(Quality.GOOD)
        counters.readings_good += good
        counters.readings_bad += len(readings) - good
        return readings, None if answered else failure

    async def aclose(self) -> None:
        """Close the link (see `Source.aclose`)."""
        await self._link.close()
