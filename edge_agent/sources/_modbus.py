"""Modbus I/O: execute `ReadRequest`s through a pymodbus async client and return `BlockResult`s.

Theory of operation
-------------------
A *link* is one physical channel: a TCP connection to a device or gateway (`ModbusTcpTransport`),
or one serial port shared by several unit ids (`ModbusRtuBus`). A link sends one request at a
time (a lock serialises callers), keeps an optional silence between frames on RTU, connects on
demand, and never raises for what a device does: every outcome is a `BlockResult`, either the
words/bits or a short snake_case reason.

Rules:
1. pymodbus exceptions and error responses are translated here, and only here
   (`_failure_reason` and `_response_error`), into the reasons of `BlockResult`:
   an exception response is `exception_code_N`; no answer in time is `timeout`; bytes that never
   formed a valid frame (bad CRC, garbage, wrong unit) are `bad_frame`; a frame cut short, or a
   valid frame with the wrong number of values, is `short_response`; a connection that cannot be
   opened or was lost is `disconnected`.
2. The client is built by an injected factory (STYLE.md 10), inside the running loop, on first
   use. The factory receives the receive/send trace hook that the link needs to tell a
   `bad_frame` from a `timeout`: pymodbus discards a bad frame silently and then just times out.
3. pymodbus is told not to retry (`retries=0`) and not to reconnect by itself
   (`reconnect_delay=0`): retries are the scheduler's back-off, so a dead device costs its
   neighbours one timeout per attempt, not four.
4. pymodbus times out connects and responses itself (`timeout`), which is what yields `timeout`.
   The link adds a guard `_GUARD_S` later (`_Guard`), so that a client which never returns (a
   look-alike, or a pymodbus bug) still ends as `timeout` rather than holding the link for good.
5. A cancel of the caller's task always ends `read()` with `CancelledError`, even one that the
   client's wait swallowed (pymodbus on Python 3.11, see `raise_if_cancel_lost`): after each
   client call the link compares `task.cancelling()` with its count before the call.
6. `write()` (a coil, one or several holding registers) goes through the same lock and
   inter-frame silence as reads, so on an RTU bus it slots in between polls; it is never retried
   and returns None or a reason of rule 1 (a pymodbus client look-alike must then offer the
   `WritingClient` methods).
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Literal, Protocol, TypeVar, cast, runtime_checkable

from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient
from pymodbus.exceptions import ConnectionException, ModbusException, ModbusIOException
from pymodbus.pdu import ModbusPDU

from edge_agent._model import BlockResult, ReadRequest, RegisterKind

PacketTrace = Callable[[bool, bytes], None]
"""A field-debugging hook: `(sending, data)`. Called with each frame sent and, on receipt, with
the receive buffer as pymodbus holds it (it grows chunk by chunk until a frame is complete). It
observes only; it must not block."""

PymodbusTrace = Callable[[bool, bytes], bytes]
"""pymodbus's own `trace_packet` shape: it may return modified data (the link never does)."""

Framing = Literal["rtu", "socket"]

_FUNCTION_CODES: dict[RegisterKind, int] = {"coil": 1, "discrete": 2, "holding": 3, "input": 4}
_GUARD_S = 1.0
"""Extra time past the request timeout before the link gives up on pymodbus itself."""

_T = TypeVar("_T")


class ModbusClient(Protocol):
    """The part of a pymodbus async client that a link uses; tests may pass any look-alike.

    pymodbus's `AsyncModbusTcpClient` and `AsyncModbusSerialClient` have this shape.

    A link calls these from one task at a time: `connect()` before the first read and after a
    failure closed the client, `read_*()` one at a time, `close()` last (and after failures).
    """

    @property
    def connected(self) -> bool:
        """Whether the transport is open; read before every request, from the link's task."""
        ...

    async def connect(self) -> bool:
        """Open the transport; False (not an exception) when it cannot.

        Called before the first request and whenever `connected` is False; never concurrently
        with a read or with itself.
        """
        ...

    def close(self) -> None:
        """Close the transport, never while a read is running.

        Called after a failure that spoils the stream, and at shutdown; the link then builds a new
        client for the next request.
        """
        ...

    def read_coils(
        self, address: int, *, count: int = 1, device_id: int = 1
    ) -> Awaitable[ModbusPDU]:
        """Function code 1; one read at a time (the link holds its lock), after `connect()`."""
        ...

    def read_discrete_inputs(
        self, address: int, *, count: int = 1, device_id: int = 1
    ) -> Awaitable[ModbusPDU]:
        """Function code 2; one read at a time (the link holds its lock), after `connect()`."""
        ...

    def read_holding_registers(
        self, address: int, *, count: int = 1, device_id: int = 1
    ) -> Awaitable[ModbusPDU]:
        """Function code 3; one read at a time (the link holds its lock), after `connect()`."""
        ...

    def read_input_registers(
        self, address: int, *, count: int = 1, device_id: int = 1
    ) -> Awaitable[ModbusPDU]:
        """Function code 4; one read at a time (the link holds its lock), after `connect()`."""
        ...


class WritingClient(ModbusClient, Protocol):
    """A `ModbusClient` that can also write (pymodbus's clients can; look-alikes need not)."""

    def write_coil(self, address: int, value: bool, *, device_id: int = 1) -> Awaitable[ModbusPDU]:  # noqa: FBT001 - pymodbus's signature
        """Function code 5, under the link's lock."""
        ...

    def write_register(
        self, address: int, value: int, *, device_id: int = 1
    ) -> Awaitable[ModbusPDU]:
        """Function code 6, under the link's lock."""
        ...

    def write_registers(
        self, address: int, values: Sequence[int], *, device_id: int = 1
    ) -> Awaitable[ModbusPDU]:
        """Function code 16, under the link's lock."""
        ...


ClientFactory = Callable[[PymodbusTrace], ModbusClient]
"""Builds a client, given the trace hook to install as its `trace_packet`. Called inside the
running event loop (pymodbus clients need one), once per (re)connection."""


class ModbusLink(Protocol):
    """One Modbus channel (a TCP connection or an RTU bus): sends requests, returns results."""

    async def read(self, request: ReadRequest) -> BlockResult:
        """Send one request and return its result; never raises for a device's behaviour.

        Concurrent calls are serialised (one request on the wire at a time). May be called again
        after `close()`: the link then reconnects.
        """
        ...

    async def close(self) -> None:
        """Close the connection or port. Called once the worker stops; never during `read()`."""
        ...


@runtime_checkable
class WritableLink(ModbusLink, Protocol):
    """A link that also writes (the TCP transport and the RTU bus both do)."""

    async def write(
        self,
        *,
        unit: int,
        kind: Literal["coil", "holding"],
        address: int,
        data: Sequence[int] | Sequence[bool],
    ) -> str | None:
        """Write one coil or holding registers between reads; None when confirmed, else why not.

        Serialised with `read()`; never retried; never raises for a device's behaviour.
        """
        ...


def tcp_client_factory(*, host: str, port: int = 502, timeout_s: float = 1.0) -> ClientFactory:
    """A factory of pymodbus TCP clients with the link's settings (no retries, no auto-reconnect).

    Args:
        host: Device or gateway address.
        port: TCP port.
        timeout_s: Connect and response timeout.
    """

    def make(trace: PymodbusTrace) -> ModbusClient:
        client: ModbusClient = AsyncModbusTcpClient(
            host,
            port=port,
            timeout=timeout_s,
            retries=0,
            reconnect_delay=0,
            trace_packet=trace,
        )
        return client

    return make


def rtu_client_factory(
    *,
    port: str,
    baudrate: int = 19200,
    bytesize: int = 8,
    parity: str = "N",
    stopbits: int = 1,
    timeout_s: float = 0.5,
) -> ClientFactory:
    """A factory of pymodbus RTU serial clients (no retries, no auto-reconnect).

    Args:
        port: Serial device (`/dev/ttyUSB0`) or a pyserial URL.
        baudrate: Bits per second.
        bytesize: Data bits, 7 or 8.
        parity: `N`, `E` or `O`.
        stopbits: 1 or 2.
        timeout_s: Open and response timeout.
    """

    def make(trace: PymodbusTrace) -> ModbusClient:
        client: ModbusClient = AsyncModbusSerialClient(
            port,
            baudrate=baudrate,
            bytesize=bytesize,
            parity=parity,
            stopbits=stopbits,
            timeout=timeout_s,
            retries=0,
            reconnect_delay=0,
            trace_packet=trace,
        )
        return client

    return make


def rtu_silence_s(baudrate: int) -> float:
    """The Modbus RTU inter-frame silence (3.5 characters of 11 bits; 1.75 ms above 19200 baud)."""
    if baudrate > 19200:  # noqa: PLR2004 - the spec's fixed value above 19200 baud
        return 0.00175
    return 3.5 * 11 / baudrate


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class _Guard:
    """A deadline on the one client call a link awaits at a time, cancelling it when it passes.

    It does what ``asyncio.timeout`` does, without arming and cancelling a loop timer for every
    request (about 7 us, a large share of a loopback request's cost): one timer stays armed; when
    it fires before the current call's deadline it moves on to that deadline, so back-to-back
    requests cost one timer per guard period. `_Link._guarded` turns its cancellation into a
    `TimeoutError`, as ``asyncio.timeout`` does.
    """

    def __init__(self) -> None:
        self._task: asyncio.Task[object] | None = None
        self._deadline = math.inf
        self._timer: asyncio.TimerHandle | None = None
        self._timer_loop: asyncio.AbstractEventLoop | None = None
        self._expired = False

    def arm(self, task: asyncio.Task[object], loop: asyncio.AbstractEventLoop, when: float) -> None:
        """Guard `task`'s next await: cancel it if it is still running at loop time `when`."""
        self._task = task
        self._deadline = when
        self._expired = False
        timer = self._timer
        if timer is None or self._timer_loop is not loop or timer.when() > when:
            self.cancel()
            self._timer = loop.call_at(when, self._fire)
            self._timer_loop = loop

    def disarm(self) -> bool:
        """End the guarded await; True once if the guard cancelled the task (then reset)."""
        self._task = None
        expired, self._expired = self._expired, False
        return expired

    def cancel(self) -> None:
        """Drop the armed timer (the link is closing)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _fire(self) -> None:
        self._timer = None
        task = self._task
        if task is None or self._timer_loop is None:
            return  # idle: the next arm() sets a timer again
        if self._timer_loop.time() < self._deadline:
            self._timer = self._timer_loop.call_at(self._deadline, self._fire)
        else:
            self._expired = True
            task.cancel()


def raise_if_cancel_lost(task: asyncio.Task[object], cancelling: int) -> None:
    """Raise `CancelledError` if `task` was cancelled since its count was `cancelling`.

    On Python 3.11, `asyncio.wait_for` (which pymodbus awaits every response and connect with)
    returns the result instead of raising when a cancel arrives in the loop iteration in which
    the awaited future completes (CPython gh-86296, fixed in 3.12). The cancel request still
    counts in `task.cancelling()`: nothing took it back with `uncancel()`. Call this after such an
    await, with the count from before it, to deliver the cancel the await swallowed.
    """
    if task.cancelling() > cancelling:
        raise asyncio.CancelledError


def _end_guarded(task: asyncio.Task[object], guard: _Guard, cancelling: int) -> None:
    """After a guarded call that did not raise `CancelledError`: undo the guard, keep a stop."""
    if guard.disarm():  # the guard fired but the call returned or raised anyway
        task.uncancel()
    raise_if_cancel_lost(task, cancelling)  # a cancel from outside, lost by pymodbus's wait_for


class _Link:
    """The shared body of `ModbusTcpTransport` and `ModbusRtuBus` (see the module docstring)."""

    _framing: Framing

    def __init__(
        self,
        *,
        client_factory: ClientFactory,
        timeout_s: float,
        inter_frame_delay_s: float,
        trace_packet: PacketTrace | None,
        wall_clock_ms: Callable[[], int],
    ) -> None:
        self._factory = client_factory
        self._timeout_s = timeout_s
        self._delay_s = inter_frame_delay_s
        self._user_trace = trace_packet
        self._wall_ms = wall_clock_ms
        self._client: ModbusClient | None = None
        self._lock = asyncio.Lock()
        self._rx = b""
        self._last_frame_end = -math.inf
        self._guard = _Guard()

    def _trace(self, sending: bool, data: bytes) -> bytes:  # noqa: FBT001 - pymodbus's signature
        if not sending:
            self._rx = data
        if self._user_trace is not None:
            self._user_trace(sending, data)
        return data

    async def read(self, request: ReadRequest) -> BlockResult:
        """Send one request and return its result (see `ModbusLink.read`)."""
        # `acquire()`/`release()` rather than `async with`: two coroutine frames fewer per request.
        lock = self._lock
        await lock.acquire()
        try:
            if not self._delay_s:  # TCP: no silence to keep, so no clock to read
                return await self._exchange(request)
            wait_s = self._last_frame_end + self._delay_s - time.monotonic()
            if wait_s > 0:
                await asyncio.sleep(wait_s)
            try:
                return await self._exchange(request)
            finally:
                self._last_frame_end = time.monotonic()
        finally:
            lock.release()

    async def write(
        self,
        *,
        unit: int,
        kind: Literal["coil", "holding"],
        address: int,
        data: Sequence[int] | Sequence[bool],
    ) -> str | None:
        """Write one coil or holding registers, between the polls (the same lock and silence).

        One coil: function code 5; one register: 6; several: 16. Never retried (a write is not
        idempotent for every device), never raises for a device's behaviour.

        Returns:
            None when the device confirmed the write, else the reason in the vocabulary of
            `BlockResult.error` (`timeout`, `exception_code_N`, `disconnected`, ...).
        """
        if not data:
            raise ValueError("write: data must hold at least one value")
        if kind == "coil" and len(data) != 1:
            raise ValueError(f"write: one coil at a time. Got {len(data)} values instead.")
        async with self._lock:
            wait_s = self._last_frame_end + self._delay_s - time.monotonic()
            if wait_s > 0:
                await asyncio.sleep(wait_s)
            try:
                return await self._write_exchange(unit, kind, address, data)
            finally:
                self._last_frame_end = time.monotonic()

    async def _write_exchange(
        self,
        unit: int,
        kind: Literal["coil", "holding"],
        address: int,
        data: Sequence[int] | Sequence[bool],
    ) -> str | None:
        if not await self._ensure_connected():
            return "disconnected"
        client = cast("WritingClient", self._client)
        if kind == "coil":
            call = client.write_coil(address, bool(data[0]), device_id=unit)
        elif len(data) == 1:
            call = client.write_register(address, int(data[0]), device_id=unit)
        else:
            call = client.write_registers(address, [int(w) for w in data], device_id=unit)
        request = ReadRequest(kind, unit, address, len(data))
        self._rx = b""
        try:
            pdu = await self._guarded(call)
        except (ModbusException, OSError) as exc:
            reason = _failure_reason(exc, rx=self._rx, request=request, framing=self._framing)
            if reason == "disconnected" or (reason != "timeout" and self._framing == "socket"):
                self._drop_client()
            return reason
        if pdu.isError():
            return f"exception_code_{getattr(pdu, 'exception_code', 0)}"
        return None

    async def _ensure_connected(self) -> bool:
        """Build the client if needed and connect it; False (client dropped) when it cannot."""
        if self._client is None:
            self._client = self._factory(self._trace)
        client = self._client
        if client.connected:
            return True
        try:
            connected = await self._guarded(client.connect())
        except (ModbusException, OSError):
            connected = False
        if not connected:
            self._drop_client()
        return bool(connected)

    async def close(self) -> None:
        """Close the client (see `ModbusLink.close`)."""
        async with self._lock:
            self._drop_client()
            self._guard.cancel()
        await asyncio.sleep(0)  # let the transport's connection_lost run inside this loop

    def _drop_client(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    async def _guarded(self, call: Awaitable[_T]) -> _T:
        """Await a client call; raise `TimeoutError` if it outlasts the timeout plus `_GUARD_S`.

        The same as ``async with asyncio.timeout(...)``, minus a timer per call (`_Guard`).
        """
        task = asyncio.current_task()
        if task is None:
            raise RuntimeError("a Modbus link must be used inside an asyncio task")
        loop = task.get_loop()
        cancelling = task.cancelling()
        guard = self._guard
        guard.arm(task, loop, loop.time() + self._timeout_s + _GUARD_S)
        try:
            result = await call
        except asyncio.CancelledError as exc:
            # Only the guard's own cancellation is a timeout; a cancel from outside (shutdown)
            # still propagates, as with asyncio.timeout.
            if guard.disarm() and task.uncancel() <= cancelling:
                raise TimeoutError from exc
            raise
        except BaseException:
            _end_guarded(task, guard, cancelling)
            raise
        _end_guarded(task, guard, cancelling)
        return result

    async def _exchange(self, request: ReadRequest) -> BlockResult:
        client = self._client
        if client is None or not client.connected:
            if not await self._ensure_connected():
                return BlockResult(ts_ms=self._wall_ms(), error="disconnected")
            client = cast("ModbusClient", self._client)
        self._rx = b""
        try:
            pdu = await self._guarded(_send(client, request))
        except (ModbusException, OSError) as exc:
            reason = _failure_reason(exc, rx=self._rx, request=request, framing=self._framing)
            if reason == "disconnected" or (reason != "timeout" and self._framing == "socket"):
                # A TCP stream that carried a bad or cut frame may be out of step: start afresh.
                self._drop_client()
            return BlockResult(ts_ms=self._wall_ms(), error=reason)
        ts_ms = self._wall_ms()
        if (error := _response_error(pdu, request)) is not None:
            return BlockResult(ts_ms=ts_ms, error=error)
        if request.kind in ("holding", "input"):
            return BlockResult(ts_ms=ts_ms, words=list(pdu.registers))
        return BlockResult(ts_ms=ts_ms, bits=list(pdu.bits[: request.count]))


class ModbusTcpTransport(_Link):
    """Modbus TCP to one device or gateway (several unit ids may share it).

    Args:
        host: Device or gateway address.
        port: TCP port.
        timeout_s: Connect and response timeout.
        client_factory: Builds the pymodbus client; default `tcp_client_factory(...)`.
        trace_packet: Field-debugging hook, see `PacketTrace`.
        wall_clock_ms: Epoch milliseconds for `BlockResult.ts_ms`; injected in tests.
    """

    _framing: Framing = "socket"

    def __init__(
        self,
        *,
        host: str,
        port: int = 502,
        timeout_s: float = 1.0,
        client_factory: ClientFactory | None = None,
        trace_packet: PacketTrace | None = None,
        wall_clock_ms: Callable[[], int] = _now_ms,
    ) -> None:
        super().__init__(
            client_factory=client_factory
            or tcp_client_factory(host=host, port=port, timeout_s=timeout_s),
            timeout_s=timeout_s,
            inter_frame_delay_s=0.0,
            trace_packet=trace_packet,
            wall_clock_ms=wall_clock_ms,
        )
        self.host = host
        self.port = port


class ModbusRtuBus(_Link):
    """One RS-485 (or RS-232) port in Modbus RTU, shared by every unit id on it.

    Requests from all the bus's devices go through this one object, one at a time, with at least
    `inter_frame_delay_s` of silence between the end of one exchange and the next request.

    Args:
        port: Serial device (`/dev/ttyUSB0`) or a pyserial URL.
        baudrate: Bits per second.
        bytesize: Data bits, 7 or 8.
        parity: `N`, `E` or `O`.
        stopbits: 1 or 2.
        timeout_s: Open and response timeout, per request.
        inter_frame_delay_s: Silence between frames; None means the RTU minimum for the baud
            rate (`rtu_silence_s`). Raise it for slow devices that need a turnaround delay.
        client_factory: Builds the pymodbus client; default `rtu_client_factory(...)`.
        trace_packet: Field-debugging hook, see `PacketTrace`.
        wall_clock_ms: Epoch milliseconds for `BlockResult.ts_ms`; injected in tests.
    """

    _framing: Framing = "rtu"

    def __init__(
        self,
        *,
        port: str,
        baudrate: int = 19200,
        bytesize: int = 8,
        parity: str = "N",
        stopbits: int = 1,
        timeout_s: float = 0.5,
        inter_frame_delay_s: float | None = None,
        client_factory: ClientFactory | None = None,
        trace_packet: PacketTrace | None = None,
        wall_clock_ms: Callable[[], int] = _now_ms,
    ) -> None:
        factory = client_factory or rtu_client_factory(
            port=port,
            baudrate=baudrate,
            bytesize=bytesize,
            parity=parity,
            stopbits=stopbits,
            timeout_s=timeout_s,
        )
        super().__init__(
            client_factory=factory,
            timeout_s=timeout_s,
            inter_frame_delay_s=rtu_silence_s(baudrate)
            if inter_frame_delay_s is None
            else inter_frame_delay_s,
            trace_packet=trace_packet,
            wall_clock_ms=wall_clock_ms,
        )
        self.port = port


def _send(client: ModbusClient, request: ReadRequest) -> Awaitable[ModbusPDU]:
    if request.kind == "holding":
        call = client.read_holding_registers
    elif request.kind == "input":
        call = client.read_input_registers
    elif request.kind == "coil":
        call = client.read_coils
    else:
        call = client.read_discrete_inputs
    return call(request.address, count=request.count, device_id=request.unit)


# ---------------------------------------------------------------- the one mapping (rule 1)


def _response_error(pdu: ModbusPDU, request: ReadRequest) -> str | None:
    """The reason a decoded response is unusable, or None when it carries the requested values."""
    if pdu.isError():
        return f"exception_code_{pdu.exception_code}"
    if pdu.function_code != _FUNCTION_CODES[request.kind]:
        return "bad_frame"
    if request.kind in ("holding", "input"):
        return None if len(pdu.registers) == request.count else "short_response"
    # Bits come padded to whole bytes: the byte count must be exactly ceil(count / 8).
    return None if len(pdu.bits) == 8 * math.ceil(request.count / 8) else "short_response"


def _failure_reason(
    exc: BaseException, *, rx: bytes, request: ReadRequest, framing: Framing
) -> str:
    """Map a pymodbus/OS exception from one request to a `BlockResult.error` reason."""
    if isinstance(exc, ConnectionException):
        return "disconnected"
    if isinstance(exc, (TimeoutError, ModbusIOException)):
        # pymodbus drops frames it cannot use and then reports "no response": what arrived in
        # the meantime (seen through the trace hook) tells a silent device from a garbled one.
        return diagnose_received(rx, request=request, framing=framing)
    if isinstance(exc, OSError):  # includes serial.SerialException
        return "disconnected"
    return "bad_frame"


def diagnose_received(rx: bytes, *, request: ReadRequest, framing: Framing) -> str:
    """Why `rx`, everything received for `request`, never became a response (pure).

    Returns `timeout` when nothing arrived, `short_response` when `rx` is the start of the
    expected frame but cut short, and `bad_frame` for anything else (bad CRC, garbage, a frame
    for another unit or function).
    """
    if not rx:
        return "timeout"
    fc = _FUNCTION_CODES[request.kind]
    if framing == "rtu":
        # unit, function code, byte count (or exception code), data, CRC
        header, body = rx[:2], rx
    else:
        # MBAP: transaction, protocol 0, length, unit; then function code, byte count, data
        if len(rx) < 7 or rx[2:4] != b"\x00\x00":  # noqa: PLR2004 - MBAP header length
            return "short_response" if len(rx) < 7 else "bad_frame"  # noqa: PLR2004
        declared = int.from_bytes(rx[4:6], "big") + 6
        if len(rx) < declared:
            return "short_response"
        header, body = rx[6:8], rx[6:declared] + b"\x00\x00"  # pad where RTU has its CRC
    answers = (b"", bytes([fc]), bytes([fc | 0x80]))  # not yet there, the answer, an exception
    if header[:1] != bytes([request.unit]) or header[1:2] not in answers:
        return "bad_frame"
    if len(body) < 3:  # noqa: PLR2004 - unit, function code, byte count or exception code
        return "short_response"
    expected = 5 if body[1] & 0x80 else 3 + body[2] + 2
    return "short_response" if len(body) < expected else "bad_frame"
