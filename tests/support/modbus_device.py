"""A fake Modbus device: a real pymodbus server (TCP or RTU) serving values from dicts per unit id.

The server is pymodbus's own `ModbusTcpServer` / `ModbusSerialServer`, so frames on the wire are
real. Values come from `UnitData` dicts (read at request time, so tests may change them while
the server runs). An address not in the dict answers exception 2 (illegal address), like a device
with holes in its map, or reads 0 / False with `unlisted="zero"` (the golden-test convention of
`tests/firmware_profiles/*/registers.json`, where the planner may read across small gaps).

Hooks make a unit misbehave, per unit id:

- `stop_answering(unit)` / `answer_again(unit)`: the unit sends nothing (the server still sees
  and logs the request, so tests can measure how often a dead unit is retried);
- `fail_with(unit, code)`: the unit answers with a Modbus exception response;
- `garble(unit, mode)`: `"bad_crc"` (RTU; on TCP the same as garbage), `"garbage"`,
  `"truncate"` (frame cut short), `"short"` (valid frame, fewer values than asked),
  `"bad_count"` (the byte count claims more data than the frame holds), `"wrong_unit"` (an
  answer from another unit id).

Why a custom datastore: pymodbus 3.16 deprecates `ModbusDeviceContext` and copies its values into
internal simulator state at server start, so values could not change afterwards. The server still
accepts a `ModbusServerContext` flagged `old_simulator` and then calls its `async_getValues` /
`async_setValues` on every request; `_DictContext` is that, with no deprecated parent state.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pymodbus.constants import ExcCodes
from pymodbus.datastore import ModbusServerContext
from pymodbus.exceptions import NoSuchIdException
from pymodbus.framer import FramerRTU
from pymodbus.pdu import ModbusPDU
from pymodbus.server import ModbusSerialServer, ModbusTcpServer

Table = Literal["holding", "input", "coil", "discrete"]
GarbleMode = Literal["bad_crc", "garbage", "truncate", "short", "bad_count", "wrong_unit"]

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
class UnitData:
    """The four tables of one unit id: address to value."""

    holding: dict[int, int] = field(default_factory=dict)
    input: dict[int, int] = field(default_factory=dict)
    coil: dict[int, bool] = field(default_factory=dict)
    discrete: dict[int, bool] = field(default_factory=dict)

    def table(self, name: Table) -> dict[int, Any]:
        """One table by name."""
        tables: dict[str, dict[int, Any]] = {
            "holding": self.holding,
            "input": self.input,
            "coil": self.coil,
            "discrete": self.discrete,
        }
        return tables[name]

    @classmethod
    def from_json(cls, data: Mapping[str, object]) -> tuple[int, UnitData]:
        """`(unit, data)` from the golden-test format.

        `{"unit": 1, "holding": {"0": 16890}, "input": {...}, "coil": {"3": true}, "discrete": {}}`
        """
        unit = data.get("unit", 1)
        if not isinstance(unit, int) or not 0 <= unit <= 255:
            raise ValueError(f"unit must be an integer 0..255, got {unit!r}")
        out = cls()
        for name in ("holding", "input", "coil", "discrete"):
            raw = data.get(name, {})
            if not isinstance(raw, dict):
                raise TypeError(f"{name} must be an object of address: value, got {raw!r}")
            for address, value in raw.items():
                if name in ("coil", "discrete"):
                    out.table(name)[int(address)] = bool(value)
                elif isinstance(value, int) and 0 <= value <= 0xFFFF:
                    out.table(name)[int(address)] = value
                else:
                    raise ValueError(f"{name}[{address}] must be a word 0..65535, got {value!r}")
        return unit, out


@dataclass(frozen=True)
class SeenRequest:
    """A request the fake device received (answered or not)."""

    at: float
    """`time.monotonic()` when it arrived."""
    unit: int
    function_code: int


class _DictContext(ModbusServerContext):
    """Serves a `FakeModbusDevice`'s dicts (see the module docstring for why not the stock one)."""

    def __init__(self, device: FakeModbusDevice) -> None:
        # Deliberately not calling ModbusServerContext.__init__: it builds deprecated simulator
        # state this class does not use, and logs a deprecation warning.
        self._device = device
        self.simdevices = []
        self.old_simulator = True

    def device_ids(self) -> list[int]:
        return list(self._device.units)

    async def async_getValues(  # noqa: N802 - pymodbus's name
        self, device_id: int, func_code: int, address: int, count: int = 1
    ) -> list[int] | list[bool] | ExcCodes:
        """Values for a request, or the exception code the unit is set to answer."""
        unit = self._device.units.get(device_id)
        if unit is None:
            raise NoSuchIdException(f"unit {device_id}")
        if (code := self._device.exception_codes.get(device_id)) is not None:
            return ExcCodes(code)
        table = unit.table(_TABLE_BY_FC[func_code])
        span = range(address, address + count)
        if self._device.unlisted == "zero":
            default = False if _TABLE_BY_FC[func_code] in ("coil", "discrete") else 0
            values = [table.get(a, default) for a in span]
        elif any(a not in table for a in span):
            return ExcCodes.ILLEGAL_ADDRESS
        else:
            values = [table[a] for a in span]
        if self._device.garbling.get(device_id) == "short":
            return values[:-1] if func_code in (3, 4) else []
        return values

    async def async_setValues(  # noqa: N802 - pymodbus's name
        self,
        device_id: int,
        func_code: int,
        address: int,
        values: list[int] | list[bool],  # type: ignore[override]
    ) -> ExcCodes | None:
        """Write values (mbpoll may write); unknown addresses are illegal."""
        unit = self._device.units.get(device_id)
        if unit is None:
            raise NoSuchIdException(f"unit {device_id}")
        table = unit.table(_TABLE_BY_FC[func_code])
        if any(address + offset not in table for offset in range(len(values))):
            return ExcCodes.ILLEGAL_ADDRESS
        for offset, value in enumerate(values):
            table[address + offset] = value
        return None


class FakeModbusDevice:
    """A fake Modbus device (one or more unit ids) behind a real pymodbus server.

    Args:
        units: Unit id to its tables.
        unlisted: What an address missing from the tables answers: `illegal_address`
            (exception 2) or `zero` (0 or False).

    Use as `async with device.tcp() as port:` or `async with device.rtu(path):` on the test's loop,
    or `with device.tcp_in_thread() as port:` from synchronous code.
    """

    def __init__(
        self,
        units: Mapping[int, UnitData] | None = None,
        *,
        unlisted: Literal["illegal_address", "zero"] = "illegal_address",
    ) -> None:
        self.units: dict[int, UnitData] = dict(units or {})
        self.unlisted = unlisted
        self.silent: set[int] = set()
        self.exception_codes: dict[int, int] = {}
        self.garbling: dict[int, GarbleMode] = {}
        self.requests: list[SeenRequest] = []
        self._server: ModbusTcpServer | ModbusSerialServer | None = None
        self._framing: Literal["socket", "rtu"] = "socket"

    @classmethod
    def from_registers_json(
        cls, *paths: Path, unlisted: Literal["illegal_address", "zero"] = "zero"
    ) -> FakeModbusDevice:
        """A device serving golden-test `registers.json` files (one unit each).

        Unlisted addresses read 0 by default, as the golden tests assume.
        """
        units: dict[int, UnitData] = {}
        for path in paths:
            unit, data = UnitData.from_json(json.loads(path.read_text()))
            if unit in units:
                raise ValueError(f"{path}: unit {unit} is already served")
            units[unit] = data
        return cls(units, unlisted=unlisted)

    # ------------------------------------------------------------ hooks

    def set(self, unit: int, table: Table, address: int, value: int | bool) -> None:
        """Change one value while serving."""
        self.units[unit].table(table)[address] = value

    def stop_answering(self, unit: int) -> None:
        """The unit stops sending anything."""
        self.silent.add(unit)

    def answer_again(self, unit: int) -> None:
        """The unit answers again."""
        self.silent.discard(unit)

    def fail_with(self, unit: int, code: int | None) -> None:
        """Every request to the unit gets Modbus exception `code` (None: answer normally)."""
        if code is None:
            self.exception_codes.pop(unit, None)
        else:
            self.exception_codes[unit] = ExcCodes(code).value

    def garble(self, unit: int, mode: GarbleMode | None) -> None:
        """Spoil the unit's answers in the given way (None: stop spoiling)."""
        if mode is None:
            self.garbling.pop(unit, None)
        else:
            self.garbling[unit] = mode

    def requests_to(self, unit: int) -> list[float]:
        """Arrival times (monotonic) of every request to `unit`."""
        return [seen.at for seen in self.requests if seen.unit == unit]

    # ------------------------------------------------------------ pymodbus trace hooks

    def _trace_pdu(self, sending: bool, pdu: ModbusPDU) -> ModbusPDU:
        if not sending:
            self.requests.append(SeenRequest(time.monotonic(), pdu.dev_id, pdu.function_code))
        return pdu

    def _trace_packet(self, sending: bool, data: bytes) -> bytes:  # noqa: PLR0911 - one return per fault
        if not sending or not data:
            return data
        rtu = self._framing == "rtu"
        unit = data[0] if rtu else data[6]
        if unit in self.silent:
            return b""
        mode = self.garbling.get(unit)
        if mode == "bad_crc" and rtu:
            return data[:-1] + bytes([data[-1] ^ 0xFF])
        if mode in ("garbage", "bad_crc"):
            return data[:6] + b"\xff" * (len(data) - 6) if not rtu else b"\xff" * len(data)
        if mode == "truncate":
            return data[: max(3, len(data) - 3)]
        if mode == "bad_count":
            if rtu:
                frame = data[:2] + bytes([data[2] + 2]) + data[3:-2]
                return frame + FramerRTU.compute_CRC(frame).to_bytes(2, "big")
            return data[:8] + bytes([data[8] + 2]) + data[9:]
        if mode == "wrong_unit":
            if rtu:
                frame = bytes([(unit % 247) + 1]) + data[1:-2]
                return frame + FramerRTU.compute_CRC(frame).to_bytes(2, "big")
            return data[:6] + bytes([(unit % 247) + 1]) + data[7:]
        return data

    # ------------------------------------------------------------ serving

    async def start_tcp(self, *, host: str = "127.0.0.1", port: int = 0) -> int:
        """Serve Modbus TCP on the running loop; returns the bound port (0: a free one)."""
        self._framing = "socket"
        server = ModbusTcpServer(
            _DictContext(self),
            address=(host, port),
            trace_packet=self._trace_packet,
            trace_pdu=self._trace_pdu,
        )
        await server.serve_forever(background=True)
        self._server = server
        sockets = server.transport.sockets  # type: ignore[attr-defined]
        bound: int = sockets[0].getsockname()[1]
        return bound

    async def start_rtu(
        self, port: str, *, baudrate: int = 19200, parity: str = "N", stopbits: int = 1
    ) -> None:
        """Serve Modbus RTU on a serial port (e.g. one end of a socat pty pair).

        Unknown unit ids get no answer, as on a real bus.
        """
        self._framing = "rtu"
        server = ModbusSerialServer(
            _DictContext(self),
            port=port,
            baudrate=baudrate,
            parity=parity,
            stopbits=stopbits,
            ignore_missing_devices=True,
            trace_packet=self._trace_packet,
            trace_pdu=self._trace_pdu,
        )
        await server.serve_forever(background=True)
        self._server = server

    async def stop(self) -> None:
        """Stop serving and close the port or socket."""
        if self._server is not None:
            await self._server.shutdown()  # type: ignore[no-untyped-call]
            self._server = None
        await asyncio.sleep(0)

    @contextmanager
    def tcp_in_thread(self, *, host: str = "127.0.0.1") -> Iterator[int]:
        """Serve Modbus TCP from a background thread's loop; yields the port."""
        loop = asyncio.new_event_loop()
        started = threading.Event()
        port_box: list[int] = []

        def serve() -> None:
            asyncio.set_event_loop(loop)
            port_box.append(loop.run_until_complete(self.start_tcp(host=host)))
            started.set()
            loop.run_forever()
            loop.run_until_complete(self.stop())
            loop.close()

        thread = threading.Thread(target=serve, name="fake-modbus-device", daemon=True)
        thread.start()
        if not started.wait(timeout=10):
            raise RuntimeError("the fake Modbus device did not start")
        try:
            yield port_box[0]
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=10)
