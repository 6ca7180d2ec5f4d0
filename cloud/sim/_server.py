"""The I/O shell of one simulated device: a real pymodbus server answering from `SimDevice`.

Each request is answered from the device's state at the simulated time of its arrival
(`now_s()`), so what the edge agent reads is exactly the pure core's value at that time. The
server counts what it serves, per signal (`ServedCounts`), for the end-to-end loss accounting
(docs/simulator.md).

A TCP device goes offline by closing its listening socket (connections are refused) and comes
back on the same port. An RTU device on a serial line goes offline by not answering (a pty has no
"refused").

Why a custom server context: as in `tests/support/modbus_device.py`, pymodbus 3.16 copies a stock
datastore's values into internal simulator state at start; a `ModbusServerContext` flagged
`old_simulator` is instead asked on every request, which is what a live simulation needs.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import structlog
from pymodbus.constants import ExcCodes
from pymodbus.datastore import ModbusServerContext
from pymodbus.server import ModbusSerialServer, ModbusTcpServer

from cloud.sim._device import SimDevice
from cloud.sim._registers import Table

log = structlog.get_logger("cloud.sim")

_TABLE_BY_FC: dict[int, Table] = {
    1: "coil",
    5: "coil",
    15: "coil",
    2: "discrete",
    3: "holding",
    6: "holding",
    16: "holding",
    22: "holding",
    23: "holding",
    4: "input",
}


@dataclass
class ServedCounts:
    """What one device served: requests, exception answers, and values per signal."""

    requests: int = 0
    exceptions: int = 0
    unanswered: int = 0
    good: dict[str, int] = field(default_factory=dict)
    invalid: dict[str, int] = field(default_factory=dict)

    def as_json(self) -> dict[str, object]:
        """The counts as a JSON-ready dict."""
        return {
            "requests": self.requests,
            "exceptions": self.exceptions,
            "unanswered": self.unanswered,
            "good": dict(sorted(self.good.items())),
            "invalid": dict(sorted(self.invalid.items())),
        }


class _SimContext(ModbusServerContext):
    """Answers every request from the device's state at the current simulated time."""

    def __init__(self, server: DeviceServer) -> None:
        # Deliberately not calling ModbusServerContext.__init__ (see the module docstring).
        self._server = server
        self.simdevices = []
        self.old_simulator = True

    def device_ids(self) -> list[int]:
        return [self._server.device.unit]

    async def async_getValues(  # noqa: N802 - pymodbus's name
        self,
        device_id: int,  # noqa: ARG002 - one unit per server
        func_code: int,
        address: int,
        count: int = 1,
    ) -> list[int] | list[bool] | ExcCodes:
        """Values for one request at the current simulated time (or an exception)."""
        server = self._server
        device = server.device
        counts = server.counts
        counts.requests += 1
        state, tables = device.tables_at(server.now_s())
        if state.exception_code is not None:
            counts.exceptions += 1
            return ExcCodes(state.exception_code)
        table = _TABLE_BY_FC[func_code]
        for name in device.image.signals_in(table, address, count):
            bucket = counts.invalid if state.values.get(name, 0) is None else counts.good
            bucket[name] = bucket.get(name, 0) + 1
        span = range(address, address + count)
        if table in ("coil", "discrete"):
            bits = tables.bits(table)
            return [bits.get(a, False) for a in span]
        words = tables.words(table)  # type: ignore[arg-type]
        return [words.get(a, 0) for a in span]

    async def async_setValues(  # noqa: N802 - pymodbus's name
        self,
        device_id: int,  # noqa: ARG002 - pymodbus's signature
        func_code: int,  # noqa: ARG002
        address: int,  # noqa: ARG002
        values: list[int] | list[bool],  # type: ignore[override]  # noqa: ARG002
    ) -> ExcCodes | None:
        """Writes are acknowledged and ignored: the simulation decides every value."""
        return None


class DeviceServer:
    """Serves one `SimDevice` over Modbus TCP on loopback, or Modbus RTU on a serial port.

    Args:
        device: The simulated device.
        now_s: Returns the current simulated time in seconds.
        transport: ``tcp`` or ``rtu``.
        host: TCP host to listen on.
        port: TCP port (0: a free one, kept across offline periods).
        serial_port: For ``rtu``: the serial device (one end of a pty pair).
        baudrate: For ``rtu``.
    """

    def __init__(
        self,
        device: SimDevice,
        *,
        now_s: Callable[[], float],
        transport: Literal["tcp", "rtu"] = "tcp",
        host: str = "127.0.0.1",
        port: int = 0,
        serial_port: str | None = None,
        baudrate: int = 38400,
    ) -> None:
        self.device = device
        self.now_s = now_s
        self.transport = transport
        self.host = host
        self.port = port
        self.serial_port = serial_port
        self.baudrate = baudrate
        self.counts = ServedCounts()
        self._server: ModbusTcpServer | ModbusSerialServer | None = None
        self._silent = False

    @property
    def listening(self) -> bool:
        """Whether the device answers (TCP: its socket is open; RTU: it is not silent)."""
        return self._server is not None and not self._silent

    def _trace_packet(self, sending: bool, data: bytes) -> bytes:  # noqa: FBT001 - pymodbus's
        if sending and self._silent:
            self.counts.unanswered += 1
            return b""
        return data

    async def start(self) -> None:
        """Start serving (TCP: binds the port, remembered for `go_online`)."""
        context = _SimContext(self)
        if self.transport == "tcp":
            tcp = ModbusTcpServer(
                context, address=(self.host, self.port), trace_packet=self._trace_packet
            )
            await tcp.serve_forever(background=True)
            sockets = tcp.transport.sockets  # type: ignore[attr-defined]
            self.port = int(sockets[0].getsockname()[1])
            self._server = tcp
        else:
            if self.serial_port is None:
                raise ValueError(f"device {self.device.name!r}: rtu needs a serial_port")
            rtu = ModbusSerialServer(
                context,
                port=self.serial_port,
                baudrate=self.baudrate,
                ignore_missing_devices=True,
                trace_packet=self._trace_packet,
            )
            await rtu.serve_forever(background=True)
            self._server = rtu
        self._silent = False

    async def go_offline(self) -> None:
        """TCP: stop listening (connections are refused). RTU: stop answering."""
        if self.transport == "rtu":
            self._silent = True
        else:
            await self.stop()
        log.info("device_offline", device=self.device.name, transport=self.transport)

    async def go_online(self) -> None:
        """Listen (TCP, on the same port) or answer (RTU) again."""
        if self.transport == "rtu":
            self._silent = False
        else:
            await self.start()
        log.info("device_online", device=self.device.name, transport=self.transport)

    async def stop(self) -> None:
        """Stop serving and close the socket or port."""
        if self._server is not None:
            await self._server.shutdown()  # type: ignore[no-untyped-call]
            self._server = None
        await asyncio.sleep(0)
