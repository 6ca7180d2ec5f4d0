"""One `task.cancel()` stops a Modbus worker, even when the client's wait loses the cancel.

On Python 3.11, `asyncio.wait_for` (which pymodbus awaits every response with) returns the
response instead of raising `CancelledError` when the cancel arrives in the loop iteration in
which the response completes (CPython gh-86296, fixed in 3.12). The task's `cancelling()` count
still says a cancel was requested: the link and the worker check it after every exchange.

The fake client here answers through `_wait_for_311`, that wait's 3.11 logic, so the lost cancel
happens on every Python; the tests also run with the interpreter's own `asyncio.wait_for`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

import pytest
from pymodbus.pdu import ModbusPDU
from pymodbus.pdu.register_message import ReadHoldingRegistersResponse
from support import ReadingLog, WordPlan, run_async

from edge_agent._model import BlockResult, Quality, ReadRequest
from edge_agent.sources import ModbusDevice, ModbusTcpTransport, ModbusWorker
from edge_agent.sources import _modbus as modbus_module
from edge_agent.sources._modbus import PymodbusTrace

T = TypeVar("T")
WaitFor = Callable[[asyncio.Future[ModbusPDU], float], Awaitable[ModbusPDU]]

_LONG_S = 60.0
"""Timeouts that must never expire in these tests."""
_STOP_S = 2.0
"""How long a cancelled worker may take to end before the test calls it a lost cancel."""


def _release(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


async def _wait_for_311(fut: asyncio.Future[T], timeout: float) -> T:  # noqa: ASYNC109 - wait_for's shape
    """`asyncio.wait_for(fut, timeout)` as Python 3.11 runs it (its branches for a future)."""
    loop = asyncio.get_running_loop()
    waiter: asyncio.Future[None] = loop.create_future()
    handle = loop.call_later(timeout, _release, waiter)
    fut.add_done_callback(lambda _: _release(waiter))
    try:
        try:
            await waiter
        except asyncio.CancelledError:
            if fut.done():
                return fut.result()  # the cancel is lost here
            fut.cancel()
            raise
        if fut.done():
            return fut.result()
        fut.cancel()
        raise TimeoutError
    finally:
        handle.cancel()


WAITS = pytest.mark.parametrize(
    "wait_for", [_wait_for_311, asyncio.wait_for], ids=["wait_for_3_11", "asyncio_wait_for"]
)


class _Exchange:
    """Where a fake request waits: the test answers it (`respond`), the reader waits on it."""

    def __init__(self) -> None:
        self.pending: asyncio.Future[ModbusPDU] | None = None
        self.sent = 0
        self._waiting = asyncio.Event()

    async def request(self, wait_for: WaitFor) -> ModbusPDU:
        """Send a request and wait for the test's answer through `wait_for`."""
        self.sent += 1
        self.pending = asyncio.get_running_loop().create_future()
        self._waiting.set()
        return await wait_for(self.pending, _LONG_S)

    async def waiting(self) -> asyncio.Future[ModbusPDU]:
        """Wait until a request is on the wire and its reader is suspended in `wait_for`."""
        await self._waiting.wait()
        self._waiting.clear()
        assert self.pending is not None
        return self.pending


class _FakeClient:
    """A `ModbusClient` whose holding-register reads wait, like pymodbus, via `wait_for`."""

    def __init__(self, exchange: _Exchange, wait_for: WaitFor) -> None:
        self._exchange = exchange
        self._wait_for = wait_for
        self.connected = True

    async def connect(self) -> bool:
        return True

    def close(self) -> None:
        self.connected = False

    def read_holding_registers(
        self, address: int, *, count: int = 1, device_id: int = 1
    ) -> Awaitable[ModbusPDU]:
        del address, count, device_id
        return self._exchange.request(self._wait_for)

    read_input_registers = read_coils = read_discrete_inputs = read_holding_registers


class _LossyLink:
    """A `ModbusLink` that does no cancel check of its own: only the worker's can save it."""

    def __init__(self, exchange: _Exchange, wait_for: WaitFor) -> None:
        self._exchange = exchange
        self._wait_for = wait_for

    async def read(self, request: ReadRequest) -> BlockResult:
        pdu = await self._exchange.request(self._wait_for)
        return BlockResult(ts_ms=0, words=list(pdu.registers)[: request.count])

    async def close(self) -> None:
        pass


def _answer(*words: int) -> ReadHoldingRegistersResponse:
    return ReadHoldingRegistersResponse(registers=list(words), dev_id=1)


def _device(requests: int) -> ModbusDevice:
    plan = WordPlan.one_group(
        asset="asset-1",
        unit=1,
        interval_s=0.01,
        requests=[("holding", 10 * index, 1) for index in range(requests)],
    )
    return ModbusDevice(name="unit-1", asset="asset-1", plan=plan)


def _tcp_link(exchange: _Exchange, wait_for: WaitFor) -> ModbusTcpTransport:
    def factory(trace: PymodbusTrace) -> _FakeClient:
        del trace
        return _FakeClient(exchange, wait_for)

    return ModbusTcpTransport(host="fake", timeout_s=_LONG_S, client_factory=factory)


async def _ended(task: asyncio.Task[None]) -> bool:
    """Whether `task` ends by itself soon; if not (a lost cancel), cancel it until it does."""
    done, _ = await asyncio.wait({task}, timeout=_STOP_S)
    while not task.done():
        task.cancel()
        await asyncio.wait({task}, timeout=0.1)
    return bool(done)


def _cancel_as_answered(task: asyncio.Task[None], response: asyncio.Future[ModbusPDU]) -> None:
    """Complete the response and cancel the task in the same loop iteration, as under load."""
    response.set_result(_answer(7))
    task.cancel()


@WAITS
def test_one_cancel_stops_a_worker_whose_response_completes_with_the_cancel(
    wait_for: WaitFor,
) -> None:
    """The link sees the cancel its client swallowed and raises it: the worker ends, cancelled."""

    async def main() -> None:
        exchange = _Exchange()
        worker = ModbusWorker(name="tcp", link=_tcp_link(exchange, wait_for), devices=[_device(1)])
        task = asyncio.create_task(worker.run(ReadingLog()))
        _cancel_as_answered(task, await exchange.waiting())
        assert await _ended(task), "the worker polled on after task.cancel()"
        assert task.cancelled()
        assert exchange.sent == 1
        await worker.aclose()

    run_async(main())


@WAITS
def test_one_cancel_stops_a_poll_between_requests(wait_for: WaitFor) -> None:
    """A link that loses the cancel itself: the worker checks between requests and stops."""

    async def main() -> None:
        exchange = _Exchange()
        log = ReadingLog()
        worker = ModbusWorker(name="bus", link=_LossyLink(exchange, wait_for), devices=[_device(3)])
        task = asyncio.create_task(worker.run(log))
        (await exchange.waiting()).set_result(_answer(1))  # the first request is answered
        _cancel_as_answered(task, await exchange.waiting())
        assert await _ended(task), "the worker polled on after task.cancel()"
        assert task.cancelled()
        assert exchange.sent == 2, "the third request of the poll went out after the cancel"
        assert log.entries == [], "an interrupted poll emits nothing, as with a delivered cancel"

    run_async(main())


@WAITS
def test_a_cancel_lost_by_the_guard_of_a_link_is_not_taken_for_a_stop(
    wait_for: WaitFor, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The link's own guard cancel, lost the same way, still yields the answer; polling goes on."""
    monkeypatch.setattr(modbus_module, "_GUARD_S", 0.0)

    async def main() -> None:
        exchange = _Exchange()
        link = ModbusTcpTransport(
            host="fake",
            timeout_s=0.01,
            client_factory=lambda _trace: _FakeClient(exchange, wait_for),
        )
        log = ReadingLog()
        worker = ModbusWorker(name="tcp", link=link, devices=[_device(1)])
        task = asyncio.create_task(worker.run(log))
        response = await exchange.waiting()
        # Answer in the loop iteration in which the guard's timer cancels the task.
        timer = link._guard._timer
        assert timer is not None
        asyncio.get_running_loop().call_at(timer.when(), response.set_result, _answer(5))
        await exchange.waiting()  # the worker polled again: it was not stopped
        assert [(r.quality, r.value) for _, r in log.entries] == [(Quality.GOOD, 5)]
        assert task.cancelling() == 0
        task.cancel()
        assert await _ended(task)
        assert task.cancelled()
        await worker.aclose()

    run_async(main())
