"""Modbus RTU over a socat pty pair (needs the Debian package `socat`).

A pymodbus serial server with three unit ids is on one end, the agent's RTU bus on the other.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import statistics
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import serial
from structlog.testing import capture_logs
from support import (
    FakeModbusDevice,
    ReadingLog,
    UnitData,
    WordPlan,
    cancel,
    run_async,
    socat_pty_pair,
)

from edge_agent._model import BlockResult, Quality, ReadRequest
from edge_agent.sources import ModbusDevice, ModbusRtuBus, ModbusWorker, start_source

TIMEOUT_S = 0.25
INTERVAL_S = 0.3


@pytest.fixture
def ptys(tmp_path: Path) -> Iterator[tuple[str, str]]:
    with socat_pty_pair(tmp_path) as pair:
        yield pair


def _three_units() -> FakeModbusDevice:
    return FakeModbusDevice(
        {
            unit: UnitData(
                holding={0: 100 * unit, 1: 100 * unit + 1},
                input={0: 10 * unit},
                coil={0: True, 1: unit % 2 == 0},
                discrete={0: unit == 3},
            )
            for unit in (1, 2, 3)
        }
    )


def _device(unit: int, *, interval_s: float = INTERVAL_S, **kwargs: float) -> ModbusDevice:
    plan = WordPlan.one_group(
        asset=f"asset-{unit}",
        unit=unit,
        interval_s=interval_s,
        requests=[("holding", 0, 2), ("coil", 0, 2)],
    )
    return ModbusDevice(name=f"unit-{unit}", asset=f"asset-{unit}", plan=plan, **kwargs)  # type: ignore[arg-type]


def test_several_units_on_one_bus_each_answer_with_their_own_values(
    ptys: tuple[str, str],
) -> None:
    """One bus object reads three unit ids, all four tables; an absent unit times out."""
    server_end, bus_end = ptys

    async def scenario() -> list[BlockResult]:
        device = _three_units()
        await device.start_rtu(server_end)
        bus = ModbusRtuBus(port=bus_end, timeout_s=TIMEOUT_S)
        try:
            return [
                await bus.read(request)
                for request in (
                    ReadRequest("holding", 1, 0, 2),
                    ReadRequest("holding", 2, 0, 2),
                    ReadRequest("input", 3, 0, 1),
                    ReadRequest("coil", 2, 0, 2),
                    ReadRequest("discrete", 3, 0, 1),
                    ReadRequest("holding", 9, 0, 1),
                )
            ]
        finally:
            await bus.close()
            await device.stop()

    h1, h2, i3, c2, d3, absent = run_async(scenario())
    assert (h1.words, h2.words, i3.words) == ([100, 101], [200, 201], [30])
    assert (c2.bits, d3.bits) == ([True, True], [True])
    assert absent.error == "timeout"


def test_a_dead_unit_keeps_off_its_neighbours_bus_time_backs_off_and_recovers(
    ptys: tuple[str, str],
) -> None:
    """Three units share a bus; unit 2 stops answering for ~4 s, then answers again.

    Units 1 and 3 keep their poll interval: no gap between their good polls exceeds the interval
    plus one request timeout (the most a dead neighbour's retry can hold the bus), where a stalled
    bus (pymodbus's default 3 retries per poll) would add a second per poll. Unit 2's readings are
    bad with `timeout`, its retries come further and further apart, and it recovers with one INFO
    line after its one ERROR line.
    """
    server_end, bus_end = ptys
    log = ReadingLog()
    silent_s = 4.0

    async def scenario() -> tuple[ModbusWorker, FakeModbusDevice, float, float]:
        device = _three_units()
        await device.start_rtu(server_end)
        worker = ModbusWorker(
            name="rs485-1",
            link=ModbusRtuBus(port=bus_end, timeout_s=TIMEOUT_S),
            devices=[_device(1), _device(2, backoff_max_s=1.2), _device(3)],
        )
        task = start_source(worker, log)
        loop = asyncio.get_running_loop()
        try:
            await log.wait_for(lambda lg: len(lg.good_times("asset-2", "holding_0")) >= 2)
            device.stop_answering(2)
            died = loop.time()
            await asyncio.sleep(silent_s)
            device.answer_again(2)
            revived = loop.time()
            count = len(log.good_times("asset-2", "holding_0"))
            await log.wait_for(
                lambda lg: len(lg.good_times("asset-2", "holding_0")) > count + 1, timeout_s=4
            )
        finally:
            await cancel(task)
            await worker.aclose()
            await device.stop()
        return worker, device, died, revived

    with capture_logs() as logs:
        worker, device, died, revived = run_async(scenario(), timeout_s=14)

    # The neighbours kept their interval while unit 2 was dead.
    for asset in ("asset-1", "asset-3"):
        times = [t for t in log.good_times(asset, "holding_0") if died <= t <= revived]
        gaps = [b - a for a, b in itertools.pairwise(times)]
        assert len(times) >= silent_s / INTERVAL_S - 2, (asset, len(times))
        assert max(gaps) <= INTERVAL_S + TIMEOUT_S + 0.15, (asset, gaps)
        assert statistics.mean(gaps) <= INTERVAL_S + 0.05, (asset, gaps)

    # Unit 2 was reported bad with the reason, and retried ever more rarely.
    dead = [r for t, r in log.of("asset-2") if died < t < revived]
    assert dead
    assert {(r.quality, r.reason) for r in dead} == {(Quality.BAD, "timeout")}
    sent = [t for t in device.requests_to(2) if died <= t <= revived]
    attempts = [t for i, t in enumerate(sent) if i == 0 or t - sent[i - 1] > 0.05]  # one per poll
    gaps = [b - a for a, b in itertools.pairwise(attempts)]
    assert 3 <= len(attempts) <= 7, attempts
    assert gaps[1] > gaps[0] + 0.15, gaps
    assert gaps[2] > gaps[1] + 0.15, gaps
    assert max(gaps) <= 1.2 + TIMEOUT_S + 0.3, gaps

    # It recovered, with one line down and one line up.
    state = worker.states["unit-2"]
    assert (state.available, state.last_error) == (True, "timeout")
    assert state.counters.requests_skipped == state.counters.errors["timeout"]
    events = [(e["event"], e["log_level"], e.get("device")) for e in logs]
    assert events.count(("device_unavailable", "error", "unit-2")) == 1
    assert events.count(("device_recovered", "info", "unit-2")) == 1
    assert not [e for e in events if e[2] in ("unit-1", "unit-3") and e[1] != "debug"]


@pytest.mark.parametrize(
    ("fault", "reason"),
    [
        ("bad_crc", "bad_frame"),
        ("garbage", "bad_frame"),
        ("wrong_unit", "bad_frame"),
        ("truncate", "short_response"),
        ("bad_count", "short_response"),
        ("short", "short_response"),
        (2, "exception_code_2"),
        (6, "exception_code_6"),
    ],
)
def test_spoiled_rtu_answers_are_bad_readings_with_the_reason(
    ptys: tuple[str, str], fault: str | int, reason: str
) -> None:
    """Bad CRC, garbage, cut or short frames, exception responses: bad readings, no crash."""
    server_end, bus_end = ptys
    log = ReadingLog()

    async def scenario() -> ModbusWorker:
        device = _three_units()
        if isinstance(fault, int):
            device.fail_with(3, fault)
        else:
            device.garble(3, fault)  # type: ignore[arg-type]
        await device.start_rtu(server_end)
        worker = ModbusWorker(
            name="rs485-1",
            link=ModbusRtuBus(port=bus_end, timeout_s=TIMEOUT_S),
            devices=[_device(1, interval_s=0.1), _device(3, interval_s=0.1)],
        )
        task = start_source(worker, log)
        try:
            await log.wait_for(lambda lg: reason in lg.reasons("asset-3"))
            await log.wait_for(lambda lg: len(lg.good_times("asset-1", "holding_1")) >= 3)
            device.garble(3, None)
            device.fail_with(3, None)
            await log.wait_for(lambda lg: bool(lg.good_times("asset-3", "coil_1")))
        finally:
            await cancel(task)
            await worker.aclose()
            await device.stop()
        return worker

    worker = run_async(scenario())
    assert log.reasons("asset-1") == set()
    assert log.reasons("asset-3") == {reason}
    assert worker.states["unit-3"].counters.errors[reason] >= 1
    assert worker.states["unit-3"].available is True


def test_line_noise_on_the_bus_gives_bad_readings_and_no_crash(ptys: tuple[str, str]) -> None:
    """A raw writer floods the bus with random bytes; every poll ends bad with a reason."""
    noise_end, bus_end = ptys
    log = ReadingLog()
    stop = threading.Event()

    def noise() -> None:
        rng = random.Random(7)
        with serial.Serial(noise_end, timeout=0.05) as port:
            while not stop.is_set():
                if port.read(8):  # answer each request with 5..30 random bytes
                    port.write(rng.randbytes(rng.randint(5, 30)))

    async def scenario() -> ModbusWorker:
        worker = ModbusWorker(
            name="rs485-1",
            link=ModbusRtuBus(port=bus_end, timeout_s=0.15),
            devices=[_device(1, interval_s=0.05, backoff_max_s=0.05)],
        )
        task = start_source(worker, log)
        try:
            await log.wait_for(lambda lg: len(lg.of("asset-1", "holding_0")) >= 6)
        finally:
            await cancel(task)
            await worker.aclose()
        return worker

    thread = threading.Thread(target=noise, name="line-noise")
    thread.start()
    try:
        worker = run_async(scenario())
    finally:
        stop.set()
        thread.join(timeout=5)
    assert log.reasons("asset-1") <= {"bad_frame", "short_response", "timeout"}
    assert all(r.quality is Quality.BAD for _, r in log.of("asset-1"))
    assert worker.states["unit-1"].available is False


def test_a_missing_serial_port_is_disconnected(tmp_path: Path) -> None:
    """A bus whose port does not exist gives `disconnected`, not an exception."""

    async def scenario() -> BlockResult:
        bus = ModbusRtuBus(port=str(tmp_path / "no-such-tty"), timeout_s=TIMEOUT_S)
        try:
            return await bus.read(ReadRequest("holding", 1, 0, 1))
        finally:
            await bus.close()

    assert run_async(scenario()).error == "disconnected"
