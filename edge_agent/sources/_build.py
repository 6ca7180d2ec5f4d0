"""From a validated `EdgeConfig` and the compiled poll plans to the sources the agent runs.

One source per physical channel: one `ModbusWorker` per RTU bus (all its units), one per TCP
endpoint (host and port; several unit ids behind a gateway share the connection), and one
`SerialLineSource` per line device.
"""

from __future__ import annotations

from collections.abc import Mapping

from edge_agent._config import (
    CsvParserConfig,
    DeviceConfig,
    EdgeConfig,
    FieldConfig,
    KeyValueParserConfig,
    RegexParserConfig,
    RtuTransportConfig,
    SerialLineTransportConfig,
    TcpTransportConfig,
)
from edge_agent._model import PollPlan
from edge_agent.sources._modbus import ModbusRtuBus, ModbusTcpTransport, PacketTrace
from edge_agent.sources._scheduler import ModbusDevice, ModbusWorker
from edge_agent.sources._serial_line import (
    CsvParser,
    KeyValueParser,
    LineField,
    LineFramer,
    LineParser,
    RegexParser,
    SerialLineSource,
    SerialSettings,
)
from edge_agent.sources._source import Source


def build_sources(
    config: EdgeConfig,
    plans: Mapping[str, PollPlan],
    *,
    trace_packet: PacketTrace | None = None,
) -> list[Source]:
    """The sources for a config, in config order of their first device.

    Args:
        config: A validated config.
        plans: The compiled poll plan of every Modbus device, by device name. Its requests must
            address the device's configured unit id.
        trace_packet: Field-debugging hook for every Modbus link (see `PacketTrace`).

    Raises:
        ValueError: A Modbus device has no plan, or its plan addresses another unit id.
    """
    channels: dict[tuple[str, ...], list[DeviceConfig]] = {}
    for device in config.devices:
        transport = device.transport
        if isinstance(transport, RtuTransportConfig):
            key: tuple[str, ...] = ("rtu", transport.bus)
        elif isinstance(transport, TcpTransportConfig):
            key = ("tcp", transport.host, str(transport.port))
        else:
            key = ("line", device.name)
        channels.setdefault(key, []).append(device)
    sources: list[Source] = []
    for key, devices in channels.items():
        if key[0] == "line":
            sources.append(_line_source(devices[0]))
        elif key[0] == "rtu":
            sources.append(_rtu_worker(config, key[1], devices, plans, trace_packet))
        else:
            sources.append(_tcp_worker(devices, plans, trace_packet))
    return sources


def _modbus_device(device: DeviceConfig, plans: Mapping[str, PollPlan]) -> ModbusDevice:
    if device.name not in plans:
        raise ValueError(f"no poll plan for Modbus device {device.name!r}")
    plan = plans[device.name]
    unit = (
        device.transport.unit if not isinstance(device.transport, SerialLineTransportConfig) else 0
    )
    units = {request.unit for group in plan.groups for request in group.requests}
    if units - {unit}:
        raise ValueError(f"the plan of {device.name!r} addresses units {sorted(units)}, not {unit}")
    return ModbusDevice(
        name=device.name,
        asset=device.asset,
        plan=plan,
        startup_error_behavior=device.startup_error_behavior,
        backoff_initial_s=device.backoff.initial_s,
        backoff_max_s=device.backoff.max_s,
    )


def _rtu_worker(
    config: EdgeConfig,
    name: str,
    devices: list[DeviceConfig],
    plans: Mapping[str, PollPlan],
    trace: PacketTrace | None,
) -> ModbusWorker:
    bus = config.buses[name]
    link = ModbusRtuBus(
        port=bus.port,
        baudrate=bus.baudrate,
        bytesize=bus.bytesize,
        parity=bus.parity,
        stopbits=bus.stopbits,
        timeout_s=bus.timeout_s,
        inter_frame_delay_s=bus.inter_frame_delay_s,
        trace_packet=trace,
    )
    return ModbusWorker(name=name, link=link, devices=[_modbus_device(d, plans) for d in devices])


def _tcp_worker(
    devices: list[DeviceConfig], plans: Mapping[str, PollPlan], trace: PacketTrace | None
) -> ModbusWorker:
    transports = [d.transport for d in devices if isinstance(d.transport, TcpTransportConfig)]
    host, port = transports[0].host, transports[0].port
    link = ModbusTcpTransport(
        host=host, port=port, timeout_s=max(t.timeout_s for t in transports), trace_packet=trace
    )
    name = devices[0].name if len(devices) == 1 else f"{host}:{port}"
    return ModbusWorker(name=name, link=link, devices=[_modbus_device(d, plans) for d in devices])


def _line_source(device: DeviceConfig) -> SerialLineSource:
    transport = device.transport
    if not isinstance(transport, SerialLineTransportConfig):
        raise TypeError(f"device {device.name!r} is not a serial_line device")
    return SerialLineSource(
        name=device.name,
        asset=device.asset,
        settings=SerialSettings(
            port=transport.port,
            baudrate=transport.baudrate,
            bytesize=transport.bytesize,
            parity=transport.parity,
            stopbits=transport.stopbits,
        ),
        parser=build_line_parser(transport.parser),
        framer=LineFramer(
            line_ending=transport.line_ending,
            max_line_bytes=transport.max_line_bytes,
            encoding=transport.encoding,
        ),
        timeout_s=transport.timeout_s,
        request=transport.request.encode(transport.encoding) if transport.request else None,
        request_interval_s=device.interval_s or 1.0,
        startup_error_behavior=device.startup_error_behavior,
        backoff_initial_s=device.backoff.initial_s or 1.0,
        backoff_max_s=device.backoff.max_s,
    )


def build_line_parser(
    config: RegexParserConfig | KeyValueParserConfig | CsvParserConfig,
) -> LineParser:
    """The line parser a validated parser config describes."""
    if isinstance(config, RegexParserConfig):
        fields = (
            {group: _field(field, group) for group, field in config.fields.items()}
            if config.fields is not None
            else None
        )
        return RegexParser(pattern=config.pattern, fields=fields)
    if isinstance(config, KeyValueParserConfig):
        return KeyValueParser(
            fields={key: _field(field, key) for key, field in config.fields.items()},
            pair_separator=config.pair_separator,
            separator=config.separator,
        )
    return CsvParser(
        columns=[None if c is None else _field(c, "") for c in config.columns],
        delimiter=config.delimiter,
    )


def _field(config: FieldConfig, default_signal: str) -> LineField:
    return LineField(
        signal=config.signal or default_signal,
        kind=config.kind,
        scale=config.scale,
        offset=config.offset,
    )
