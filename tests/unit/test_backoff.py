"""Back-off, the poll schedule and the worker's timing, on a fake clock: nothing here sleeps."""

from __future__ import annotations

import asyncio
import itertools
import statistics
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st
from structlog.testing import capture_logs
from support import WordPlan

from edge_agent._model import BlockResult, Quality, Reading, ReadRequest
from edge_agent.sources import (
    Backoff,
    DeviceStartupError,
    DeviceState,
    ModbusDevice,
    ModbusWorker,
    PollSchedule,
    Transition,
)

# ---------------------------------------------------------------- Backoff


def test_backoff_doubles_from_initial_up_to_the_cap() -> None:
    """1, 2, 4, 8, then the cap, counted from the end of each failed attempt."""
    backoff = Backoff(initial_s=1.0, max_s=10.0)
    retries = [backoff.failed(now) for now in (0.0, 100.0, 200.0, 300.0, 400.0, 500.0)]
    assert retries == [1.0, 102.0, 204.0, 308.0, 410.0, 510.0]
    assert backoff.failures == 6


def test_backoff_blocks_until_the_retry_time_and_a_success_resets_it() -> None:
    """Not ready before `retry_at`, ready at it; success forgets the failures."""
    backoff = Backoff(initial_s=2.0, max_s=60.0)
    assert backoff.ready(0.0)
    backoff.failed(10.0)
    assert not backoff.ready(11.9)
    assert backoff.ready(12.0)
    backoff.succeeded()
    assert (backoff.failures, backoff.retry_at) == (0, None)
    assert backoff.failed(20.0) == 22.0


@given(
    initial=st.floats(0.001, 100),
    ratio=st.floats(1, 10_000),
    factor=st.floats(1, 10),
    failures=st.integers(1, 10_000),
)
def test_backoff_never_shrinks_and_never_exceeds_the_cap(
    initial: float, ratio: float, factor: float, failures: int
) -> None:
    """Delays start at `initial_s`, never decrease, and stop at `max_s`, even after years down."""
    backoff = Backoff(initial_s=initial, max_s=initial * ratio, factor=factor)
    assert backoff.delay_s(1) == pytest.approx(initial)
    assert backoff.delay_s(failures) <= backoff.max_s
    assert backoff.delay_s(failures + 1) >= backoff.delay_s(failures)


@pytest.mark.parametrize(("initial", "maximum", "factor"), [(0, 1, 2), (2, 1, 2), (1, 2, 0.5)])
def test_backoff_rejects_nonsense(initial: float, maximum: float, factor: float) -> None:
    """A zero or negative start, a start above the cap, or a shrinking factor is a bug."""
    with pytest.raises(ValueError, match=r"must|need"):
        Backoff(initial_s=initial, max_s=maximum, factor=factor)


# ---------------------------------------------------------------- PollSchedule


def _schedule(**devices: list[float]) -> PollSchedule:
    schedule = PollSchedule(start=100.0)
    for name, intervals in devices.items():
        schedule.add(name, intervals, Backoff(initial_s=5.0, max_s=40.0))
    return schedule


def test_every_group_is_due_at_start_in_the_order_added() -> None:
    """At start, groups come in the order they were added."""
    schedule = _schedule(a=[1.0, 10.0], b=[2.0])
    seen = []
    for _ in range(3):
        due = schedule.next()
        assert due is not None
        seen.append((due.at, due.device, due.group))
        schedule.completed(due.device, due.group, now=100.0, ok=True)
    assert seen == [(100.0, "a", 0), (100.0, "a", 1), (100.0, "b", 0)]


def test_a_late_poll_keeps_the_phase_and_skips_missed_slots() -> None:
    """Completed 3.5 intervals late, the next slot is the next one on the original grid."""
    schedule = _schedule(a=[2.0])
    schedule.completed("a", 0, now=100.3, ok=True)
    assert schedule.next() == _due(102.0, "a", 0)
    schedule.completed("a", 0, now=109.0, ok=True)
    assert schedule.next() == _due(110.0, "a", 0)


def test_a_failing_device_waits_out_its_backoff_while_others_stay_due() -> None:
    """After a failure the device's slots wait for its retry time; other devices do not."""
    schedule = _schedule(a=[1.0], b=[1.0])
    schedule.completed("a", 0, now=100.5, ok=False)  # retry at 105.5
    schedule.completed("b", 0, now=100.6, ok=True)
    assert schedule.next() == _due(101.0, "b", 0)
    for now in (101.0, 102.0, 103.0, 104.0, 105.0):
        due = schedule.next()
        assert due == _due(now, "b", 0)
        schedule.completed("b", 0, now=now + 0.01, ok=True)
    assert schedule.next() == _due(105.5, "a", 0)
    schedule.completed("a", 0, now=105.6, ok=False)  # second failure: 10 s
    assert schedule.backoff("a").retry_at == pytest.approx(115.6)


def test_removed_devices_are_never_due_and_an_empty_schedule_says_so() -> None:
    """`remove()` drops every slot of a device; with none left `next()` is None."""
    schedule = _schedule(a=[1.0, 5.0])
    schedule.remove("a")
    assert schedule.next() is None


def _due(at: float, device: str, group: int) -> object:
    due = PollSchedule(start=at)
    due.add(device, [1.0] * (group + 1), Backoff(initial_s=1, max_s=1))
    for index in range(group):
        due.completed(device, index, now=at, ok=True)
    return due.next()


# ---------------------------------------------------------------- DeviceState


def test_device_state_transitions_and_counters() -> None:
    """Up, down, still down, recovered; the last error stays for diagnosis."""
    state = DeviceState(name="pump-7", asset="pump-07")
    assert state.available is None
    steps = [
        state.record_success(now_ms=1),
        state.record_failure(reason="timeout", now_ms=2),
        state.record_failure(reason="timeout", now_ms=3),
        state.record_success(now_ms=4),
        state.record_success(now_ms=5),
    ]
    assert steps == [
        Transition.CAME_UP,
        Transition.WENT_DOWN,
        Transition.STILL_DOWN,
        Transition.RECOVERED,
        Transition.STILL_UP,
    ]
    snapshot = state.snapshot()
    assert (snapshot["available"], snapshot["last_error"]) == (True, "timeout")
    assert (snapshot["consecutive_failures"], snapshot["polls"], snapshot["polls_failed"]) == (
        0,
        5,
        2,
    )
    assert DeviceState(name="x", asset="x").record_failure(reason="t", now_ms=1) is (
        Transition.WENT_DOWN
    )


# ---------------------------------------------------------------- ModbusWorker on a fake clock


class _SimulationOverError(Exception):
    """Raised by the fake clock's sleep when the simulated run is over."""


class FakeClock:
    """Monotonic time that only moves when the worker sleeps or the fake link works."""

    def __init__(self, *, until: float) -> None:
        self.now = 0.0
        self.until = until

    def __call__(self) -> float:
        """The current fake time."""
        return self.now

    async def sleep(self, seconds: float) -> None:
        """Advance the fake time; end the simulation at `until`."""
        self.now += seconds
        if self.now >= self.until:
            raise _SimulationOverError
        await asyncio.sleep(0)


class FakeBus:
    """A `ModbusLink` whose units answer in `latency_s`, or time out after `timeout_s` when dead."""

    def __init__(
        self,
        clock: FakeClock,
        *,
        dead: Callable[[int, float], bool],
        latency_s: float = 0.01,
        timeout_s: float = 0.5,
    ) -> None:
        self.clock = clock
        self.dead = dead
        self.latency_s = latency_s
        self.timeout_s = timeout_s
        self.sent: list[tuple[float, ReadRequest]] = []
        self.closed = False

    async def read(self, request: ReadRequest) -> BlockResult:
        """Answer, or time out if the unit is dead now; the fake clock advances either way."""
        self.sent.append((self.clock.now, request))
        if self.dead(request.unit, self.clock.now):
            self.clock.now += self.timeout_s
            return BlockResult(ts_ms=int(self.clock.now * 1000), error="timeout")
        self.clock.now += self.latency_s
        ts_ms = int(self.clock.now * 1000)
        if request.kind in ("coil", "discrete"):
            return BlockResult(ts_ms=ts_ms, bits=[True] * request.count)
        return BlockResult(ts_ms=ts_ms, words=[request.unit] * request.count)

    async def close(self) -> None:
        """Remember that the worker closed the link."""
        self.closed = True

    def starts(self, unit: int) -> list[float]:
        """Send times of the first request of each poll of `unit`."""
        return [t for t, r in self.sent if r.unit == unit and (r.kind, r.address) == ("holding", 0)]


def _modbus_device(unit: int, *, interval_s: float = 1.0, **kwargs: object) -> ModbusDevice:
    plan = WordPlan.one_group(
        asset=f"asset-{unit}",
        unit=unit,
        interval_s=interval_s,
        requests=[("holding", 0, 2), ("holding", 10, 1), ("coil", 0, 4)],
    )
    return ModbusDevice(name=f"unit-{unit}", asset=f"asset-{unit}", plan=plan, **kwargs)  # type: ignore[arg-type]


def _run(worker: ModbusWorker, emitted: list[Reading]) -> None:
    async def main() -> None:
        with pytest.raises(_SimulationOverError):
            await worker.run(emitted.extend)

    asyncio.run(main())


def test_three_devices_on_a_bus_one_dies_the_others_keep_their_interval() -> None:
    """A dead unit on a shared bus: its neighbours keep their interval, it backs off, recovers.

    Unit 2 is dead from t=10 s to t=60 s: units 1 and 3 still poll every second (at worst one
    timeout late), unit 2 is retried at growing gaps up to the cap, then recovers.
    """
    clock = FakeClock(until=80.0)
    bus = FakeBus(clock, dead=lambda unit, now: unit == 2 and 10.0 <= now < 60.0)
    worker = ModbusWorker(
        name="rs485-1",
        link=bus,
        devices=[_modbus_device(1), _modbus_device(2, backoff_max_s=8.0), _modbus_device(3)],
        clock=clock,
        sleep=clock.sleep,
        wall_clock_ms=lambda: int(clock.now * 1000),
    )
    emitted: list[Reading] = []
    with capture_logs() as logs:
        _run(worker, emitted)

    for unit in (1, 3):
        starts = bus.starts(unit)
        gaps = [b - a for a, b in itertools.pairwise(starts)]
        assert max(gaps) <= 1.0 + bus.timeout_s + 0.05, gaps
        assert statistics.mean(gaps) == pytest.approx(1.0, abs=0.01)
        assert len(starts) >= 79

    attempts = [t for t in bus.starts(2) if 10.0 <= t < 60.0]
    gaps = [round(b - a, 2) for a, b in itertools.pairwise(attempts)]
    assert gaps[:4] == pytest.approx([1.5, 2.5, 4.5, 8.5], abs=0.05)  # timeout + 1, 2, 4, 8 s
    assert all(gap == pytest.approx(8.5, abs=0.05) for gap in gaps[3:])
    # Each dead attempt sent only its first request: the rest of the poll was skipped.
    assert len([t for t, r in bus.sent if r.unit == 2 and 10.0 <= t < 60.0]) == len(attempts)

    state = worker.states["unit-2"]
    assert (state.available, state.last_error) == (True, "timeout")
    assert state.counters.requests_skipped == 2 * len(attempts)
    dead_readings = [r for r in emitted if r.asset == "asset-2" and r.quality is Quality.BAD]
    assert {r.reason for r in dead_readings} == {"timeout"}
    assert len(dead_readings) == 7 * len(attempts)  # every signal of the poll, each attempt
    levels = [(e["event"], e["log_level"]) for e in logs if e.get("device") == "unit-2"]
    assert levels.count(("device_unavailable", "error")) == 1
    assert levels.count(("device_recovered", "info")) == 1
    assert levels.count(("device_poll_failed", "debug")) == len(attempts) - 1


def test_startup_error_behavior_error_stops_the_worker() -> None:
    """`error`: the first poll finding the device silent raises `DeviceStartupError`."""
    clock = FakeClock(until=10.0)
    worker = ModbusWorker(
        name="bus",
        link=FakeBus(clock, dead=lambda unit, _now: unit == 2),
        devices=[_modbus_device(1), _modbus_device(2, startup_error_behavior="error")],
        clock=clock,
        sleep=clock.sleep,
    )
    emitted: list[Reading] = []

    async def main() -> None:
        await worker.run(emitted.extend)

    with pytest.raises(DeviceStartupError) as info:
        asyncio.run(main())
    assert (info.value.device, info.value.reason) == ("unit-2", "timeout")
    assert {r.reason for r in emitted if r.asset == "asset-2"} == {"timeout"}


def test_startup_error_behavior_ignore_drops_the_device_for_good() -> None:
    """`ignore`: one warning, no more requests to it; its neighbours carry on."""
    clock = FakeClock(until=20.0)
    bus = FakeBus(clock, dead=lambda unit, _now: unit == 2)
    worker = ModbusWorker(
        name="bus",
        link=bus,
        devices=[_modbus_device(1), _modbus_device(2, startup_error_behavior="ignore")],
        clock=clock,
        sleep=clock.sleep,
    )
    with capture_logs() as logs:
        _run(worker, [])
    assert len(bus.starts(2)) == 1
    assert len(bus.starts(1)) >= 19
    assert [(e["event"], e["log_level"]) for e in logs if e.get("device") == "unit-2"] == [
        ("device_ignored", "warning")
    ]


def test_a_device_that_answers_with_exceptions_is_available() -> None:
    """A device that answers, even with an exception code, is up: readings bad, no back-off."""
    clock = FakeClock(until=5.0)

    class ExceptionBus(FakeBus):
        async def read(self, request: ReadRequest) -> BlockResult:
            """Answer every request with exception code 2."""
            self.sent.append((clock.now, request))
            clock.now += 0.01
            return BlockResult(ts_ms=1, error="exception_code_2")

    bus = ExceptionBus(clock, dead=lambda _unit, _now: False)
    worker = ModbusWorker(
        name="bus", link=bus, devices=[_modbus_device(1)], clock=clock, sleep=clock.sleep
    )
    emitted: list[Reading] = []
    _run(worker, emitted)
    assert worker.states["unit-1"].available is True
    assert len(bus.starts(1)) == 5
    assert {r.reason for r in emitted} == {"exception_code_2"}


def test_worker_rejects_duplicate_device_names_and_closes_its_link() -> None:
    """Two devices of one name on a link are a wiring bug; `aclose()` closes the link."""
    clock = FakeClock(until=1.0)
    bus = FakeBus(clock, dead=lambda _unit, _now: False)
    with pytest.raises(ValueError, match="duplicate"):
        ModbusWorker(name="bus", link=bus, devices=[_modbus_device(1), _modbus_device(1)])
    worker = ModbusWorker(name="bus", link=bus, devices=[_modbus_device(1)])
    asyncio.run(worker.aclose())
    assert bus.closed
