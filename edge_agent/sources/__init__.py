"""Device sources: Modbus TCP, Modbus RTU buses, line-oriented serial devices, and their scheduling.

Every source is a `Source`: one worker per physical channel (an RTU bus with all its units, a
TCP device or gateway, a serial line device), run as one asyncio task named `edge[{name}].poll`
(`start_source`), so a timeout on one never delays another. Readings, good or bad with the
reason, go to one `emit` callback; per-device availability, last error and counters are in
`Source.states`.

Layers (STYLE.md 6): pure parts (`Backoff`, `PollSchedule`, `LineFramer`, the line parsers,
`diagnose_received`) hold the logic; `ModbusTcpTransport`, `ModbusRtuBus` and
`SerialLineSource` only move bytes. `build_sources` wires a validated config to them.
"""

from edge_agent.sources._build import build_line_parser, build_sources
from edge_agent.sources._device import (
    DeviceCounters,
    DeviceStartupError,
    DeviceState,
    Transition,
    log_transition,
)
from edge_agent.sources._modbus import (
    ClientFactory,
    ModbusClient,
    ModbusLink,
    ModbusRtuBus,
    ModbusTcpTransport,
    PacketTrace,
    WritableLink,
    diagnose_received,
    rtu_client_factory,
    rtu_silence_s,
    tcp_client_factory,
)
from edge_agent.sources._scheduler import (
    Backoff,
    Due,
    ModbusDevice,
    ModbusWorker,
    PollSchedule,
    StartupErrorBehavior,
)
from edge_agent.sources._serial_line import (
    CsvParser,
    KeyValueParser,
    Line,
    LineField,
    LineFramer,
    LineParser,
    LineStream,
    RegexParser,
    SerialLineSource,
    SerialSettings,
    bad_readings,
    pyserial_opener,
)
from edge_agent.sources._source import Emit, Source, start_source

__all__ = [  # noqa: RUF022 - sorted with key=str.casefold, the project rule (STYLE.md 1)
    "Backoff",
    "bad_readings",
    "build_line_parser",
    "build_sources",
    "ClientFactory",
    "CsvParser",
    "DeviceCounters",
    "DeviceStartupError",
    "DeviceState",
    "diagnose_received",
    "Due",
    "Emit",
    "KeyValueParser",
    "Line",
    "LineField",
    "LineFramer",
    "LineParser",
    "LineStream",
    "log_transition",
    "ModbusClient",
    "ModbusDevice",
    "ModbusLink",
    "ModbusRtuBus",
    "ModbusTcpTransport",
    "ModbusWorker",
    "PacketTrace",
    "PollSchedule",
    "pyserial_opener",
    "RegexParser",
    "rtu_client_factory",
    "rtu_silence_s",
    "SerialLineSource",
    "SerialSettings",
    "Source",
    "start_source",
    "StartupErrorBehavior",
    "tcp_client_factory",
    "Transition",
    "WritableLink",
]
