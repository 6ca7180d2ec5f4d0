"""`prognos-edge`: the gateway's command line, for commissioning and for running the agent.

Commands: `check` (config and profiles, with every device's read plan), `profiles` (what the
profile folder holds), `read` (one device once, decoded; or raw registers under all four byte
orders), `run` (the agent), `validate` (telemetry payload files against the MQTT contract).

Errors are printed as the lines of the error (each names the file, the device, the key and the
value) on stderr. Exit codes: 0 success, 1 a device did not answer or could not be identified,
2 a config, profile or usage-state error (and command-line mistakes, as argparse does).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

import structlog

import prognos_contract
from edge_agent._agent import Agent, cancel_and_wait
from edge_agent._agent_devices import (
    SILENT,
    CompiledAgent,
    CompiledDevice,
    compile_agent,
    describe_transport,
    device_link,
    identify,
    plan_limits,
    read_once,
    read_requests,
)
from edge_agent._agent_logging import configure_logging
from edge_agent._config import SerialLineTransportConfig, load_config
from edge_agent._exceptions import BufferCorrupt, ConfigError, DeviceError
from edge_agent._model import Quality, Reading, ReadRequest
from edge_agent._planner import compile_plan, theoretical_min_requests
from edge_agent._preprocess import AggregateConfig, DeadbandConfig, StepConfig, UsageConfig
from edge_agent._profile import Profile, ProfileLibrary, load_profile
from edge_agent._runtime import AgentFailed, EdgeRuntime
from edge_agent._version import __version__
from edge_agent.codecs import format_raw_views
from edge_agent.sources import (
    ModbusRtuBus,
    ModbusTcpTransport,
    build_line_parser,
    build_sources,
    start_source,
)

_log = structlog.get_logger("edge_agent.cli")

EXIT_DEVICE = 1
EXIT_CONFIG = 2
_EXCEPTION_NAMES = {
    1: "illegal function",
    2: "illegal data address",
    3: "illegal data value",
    4: "server device failure",
    6: "server device busy",
    10: "gateway path unavailable",
    11: "gateway target device failed to respond",
}


_AddParser = Callable[..., argparse.ArgumentParser]
"""`add_parser` of `ArgumentParser.add_subparsers()`."""


class _DeviceFailedError(Exception):
    """A one-shot read found the device silent or unusable: print the line, exit 1."""


# ---------------------------------------------------------------- validate


def _validate(args: argparse.Namespace) -> int:
    """Decode telemetry payload files as the cloud will, and say what it would accept."""
    worst = 0
    for path in args.files:
        payload = Path(path).read_bytes()
        try:
            decoded = prognos_contract.decode_telemetry(payload, content_type=args.content_type)
        except prognos_contract.ContractError as exc:
            print(f"{path}: rejected: {exc}")
            worst = 1
            continue
        batch = decoded.batch
        print(
            f"{path}: gateway={batch.gateway!r} seq={batch.seq} "
            f"readings accepted={len(batch.readings)} rejected={len(decoded.rejected)}"
        )
        for rej in decoded.rejected:
            print(f"  reading {rej.index}: {rej.message}")
            worst = 1
    return worst


# ---------------------------------------------------------------- check


def _load(path: str) -> CompiledAgent:
    return compile_agent(load_config(path), source=path)


def _check(args: argparse.Namespace) -> int:
    compiled = _load(args.config)
    config = compiled.config
    # Wiring (buses, units, plans) is checked by building the sources; nothing is opened.
    plans = {d.name: d.plan for d in compiled.devices if d.plan is not None}
    known = [d.config for d in compiled.devices if not d.auto]
    build_sources(config.model_copy(update={"devices": known}), plans)
    print(
        f"{args.config}: site {config.site!r}, gateway {config.gateway!r}, "
        f"{len(compiled.devices)} device(s), {len(compiled.library)} profile(s) in "
        f"{config.profiles_dir}"
    )
    for device in compiled.devices:
        print()
        _print_device(device, compiled)
    print()
    print(f"{args.config}: OK")
    return 0


def _print_device(device: CompiledDevice, compiled: CompiledAgent) -> None:
    config = device.config
    print(f'device "{config.name}" (asset {config.asset!r})')
    print(f"  transport: {describe_transport(config, compiled.config)}")
    transport = config.transport
    if isinstance(transport, SerialLineTransportConfig):
        signals = build_line_parser(transport.parser).signals
        print(f"  signals: {', '.join(signals)} (from its {transport.parser.type} parser)")
    elif device.auto:
        candidates = [p for p in compiled.library if p.identification is not None]
        names = ", ".join(f"{p.profile_id} ({p.vendor} {p.model})" for p in candidates)
        print(f"  profile: auto, identified at start among {names}")
    elif device.profile is not None and device.plan is not None:
        profile, plan = device.profile, device.plan
        print(f"  profile: {profile.profile_id} ({profile.vendor} {profile.model})")
        print(_indent(plan.describe(), "    "))
        intervals = (
            {s.name: config.interval_s for s in profile.signals} if config.interval_s else None
        )
        minimum = theoretical_min_requests(profile, plan_limits(config), intervals_s=intervals)
        count = len(plan.requests)
        verdict = (
            "the minimum"
            if count == minimum
            else f"{count - minimum} above it: gaps wider than max_gap_registers split reads"
        )
        print(f"  requests per poll cycle: {count}, theoretical minimum {minimum} ({verdict})")
    print(f"  preprocess: {_describe_steps(device.steps, auto=device.auto)}")


def _describe_steps(steps: Sequence[StepConfig], *, auto: bool) -> str:
    if auto and not steps:
        return "built once the profile is identified"
    parts: list[str] = []
    for step in steps:
        if isinstance(step, UsageConfig):
            names = [r.hours_name for r in step.operating_hours] + [r.name for r in step.counters]
            parts.append(f"usage counters ({', '.join(names)})")
        elif isinstance(step, AggregateConfig):
            parts.append(f"min/mean/max over {step.window_s:g} s of {', '.join(step.signals)}")
        elif isinstance(step, DeadbandConfig):
            heartbeat = step.default.heartbeat_s
            beat = f"heartbeat {heartbeat:g} s" if heartbeat is not None else "no heartbeat"
            parts.append(f"deadband ({len(step.signals)} signal band(s)), {beat}")
    return ", then ".join(parts) if parts else "none: every reading is reported"


def _indent(text: str, prefix: str) -> str:
    return "\n".join(prefix + line if line else line for line in text.splitlines())


# ---------------------------------------------------------------- profiles


def _profiles(args: argparse.Namespace) -> int:
    if args.plan is not None:
        plan_path = Path(args.plan)
        if plan_path.suffix in {".yaml", ".yml"} and plan_path.is_file():
            profile = load_profile(plan_path)
        else:
            profile = ProfileLibrary.load(args.dir).get(args.plan)
        plan = compile_plan(profile, asset=args.asset or profile.profile_id, unit=args.unit)
        print(plan.describe())
        return 0
    library = ProfileLibrary.load(args.dir)
    rows = [("profile", "vendor / model", "firmware", "signals", "identified by", "consumables")]
    rows += [
        (
            profile.profile_id,
            f"{profile.vendor} {profile.model}",
            profile.firmware,
            str(len(profile.signals)),
            _identification(profile),
            ", ".join(c.name for c in profile.consumables) or "-",
        )
        for profile in sorted(library, key=lambda p: p.profile_id)
    ]
    _print_table(rows)
    return 0


def _identification(profile: Profile) -> str:
    ident = profile.identification
    if ident is None:
        return "- (name it in the config)"
    code = ident.model_code
    return f"{code.kind} {code.address} = {code.equals!r}"


def _print_table(rows: Sequence[Sequence[str]], *, out: TextIO | None = None) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        cells = [cell.ljust(widths[i]) for i, cell in enumerate(row[:-1])]
        print("  ".join([*cells, row[-1]]).rstrip(), file=out or sys.stdout)


# ---------------------------------------------------------------- read: decoded signals


def _read(args: argparse.Namespace) -> int:
    if args.raw:
        return asyncio.run(_read_raw(args))
    if args.config is None or args.device is None:
        raise _UsageError("read needs CONFIG and --device NAME (or --raw, see --help)")
    compiled = _load(args.config)
    device = compiled.device(args.device)
    readings, profile = asyncio.run(_read_device(compiled, device))
    if args.json:
        print(json.dumps(_readings_json(device, profile, readings), ensure_ascii=False))
    else:
        _print_readings(device, compiled, profile, readings)
    if not any(r.quality is Quality.GOOD for r in readings):
        return EXIT_DEVICE
    return 0


async def _read_device(
    compiled: CompiledAgent, device: CompiledDevice
) -> tuple[list[Reading], Profile | None]:
    config = device.config
    if isinstance(config.transport, SerialLineTransportConfig):
        return await _read_line_device(compiled, device), None
    link = device_link(config, compiled.config)
    where = f'{compiled.source}: device "{config.name}"'
    try:
        if device.auto:
            found = await identify(link, compiled.library, unit=device.unit or 0)
            profile = found.selection.profile
            if profile is None:
                detail = "no answer" if found.silent else found.selection.reason
                raise _DeviceFailedError(
                    f"{where}: cannot identify its profile: {detail} ({found.reason})."
                )
            device = compiled.identified(device, profile)
        if device.plan is None:  # pragma: no cover - a Modbus device always has one here
            raise _DeviceFailedError(f"{where}: has no read plan")
        readings = await read_once(link, device.plan)
    finally:
        await link.close()
    reasons = {r.reason for r in readings}
    if readings and len(reasons) == 1 and reasons <= SILENT:  # every reading bad, no answer
        transport = describe_transport(config, compiled.config)
        raise _DeviceFailedError(f"{where}: did not answer ({reasons.pop()}) on {transport}.")
    return readings, device.profile


async def _read_line_device(compiled: CompiledAgent, device: CompiledDevice) -> list[Reading]:
    """Run the line device's source until it emits once (a line, or its timeout)."""
    config = compiled.config.model_copy(update={"devices": [device.config]})
    (source,) = build_sources(config, {})
    got: asyncio.Future[list[Reading]] = asyncio.get_running_loop().create_future()

    def emit(readings: Sequence[Reading]) -> None:
        if not got.done():
            got.set_result(list(readings))

    def finished(task: asyncio.Task[None]) -> None:
        # The source ended before emitting: `error` behaviour raised, or `ignore` gave up.
        if got.done() or task.cancelled():
            return
        exc = task.exception()
        got.set_exception(
            exc
            or _DeviceFailedError(f'device "{source.name}": the source stopped without a reading')
        )

    task = start_source(source, emit)
    task.add_done_callback(finished)
    try:
        return await got
    finally:
        await cancel_and_wait([task])
        await source.aclose()


def _unit_of(profile: Profile | None, signal: str) -> str:
    if profile is None:
        return ""
    try:
        return profile.signal(signal).unit
    except KeyError:
        return ""


def _print_readings(
    device: CompiledDevice,
    compiled: CompiledAgent,
    profile: Profile | None,
    readings: Sequence[Reading],
) -> None:
    config = device.config
    name = profile.profile_id if profile is not None else "none (line parser)"
    stamp = _iso(readings[0].ts_ms) if readings else "-"
    print(f'device "{config.name}" (asset {config.asset!r}), profile {name}')
    print(f"  {describe_transport(config, compiled.config)}, read at {stamp}")
    rows = [("signal", "value", "unit", "quality")]
    for reading in readings:
        value = "" if reading.value is None else _show(reading.value)
        quality = "good" if reading.quality is Quality.GOOD else f"bad: {reading.reason}"
        rows.append((reading.signal, value, _unit_of(profile, reading.signal), quality))
    _print_table(rows)


def _show(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _iso(ts_ms: int) -> str:
    return datetime.fromtimestamp(ts_ms / 1000, tz=UTC).isoformat(timespec="milliseconds")


def _readings_json(
    device: CompiledDevice, profile: Profile | None, readings: Sequence[Reading]
) -> dict[str, object]:
    return {
        "device": device.config.name,
        "asset": device.config.asset,
        "profile": profile.profile_id if profile is not None else None,
        "readings": [
            {**_reading_json(r), "unit": _unit_of(profile, r.signal) or None} for r in readings
        ],
    }


def _reading_json(reading: Reading) -> dict[str, object]:
    out: dict[str, object] = {
        "asset": reading.asset,
        "signal": reading.signal,
        "ts": reading.ts_ms,
        "value": reading.value,
        "quality": reading.quality.value,
    }
    if reading.reason is not None:
        out["reason"] = reading.reason
    return out


# ---------------------------------------------------------------- read: raw registers


class _UsageError(Exception):
    """The options do not make sense together: exit 2, like argparse."""


def _raw_link(args: argparse.Namespace) -> tuple[ModbusTcpTransport | ModbusRtuBus, int, str]:
    """The link, unit id and a description, from --host/--serial-port or CONFIG --device."""
    if args.host is not None or args.serial_port is not None:
        if args.host is not None and args.serial_port is not None:
            raise _UsageError("read --raw takes --host or --serial-port, not both")
        unit = args.unit if args.unit is not None else 1
        if args.host is not None:
            port = args.port or 502
            link: ModbusTcpTransport | ModbusRtuBus = ModbusTcpTransport(
                host=args.host, port=port, timeout_s=args.timeout
            )
            return link, unit, f"tcp {args.host}:{port} unit {unit}"
        link = ModbusRtuBus(
            port=args.serial_port,
            baudrate=args.baudrate,
            parity=args.parity,
            stopbits=args.stopbits,
            bytesize=args.bytesize,
            timeout_s=args.timeout,
        )
        settings = f"{args.baudrate} {args.bytesize}{args.parity}{args.stopbits}"
        return link, unit, f"rtu {args.serial_port} ({settings}) unit {unit}"
    if args.config is None or args.device is None:
        raise _UsageError(
            "read --raw needs --host HOST, --serial-port DEVICE, or CONFIG --device NAME"
        )
    compiled = _load(args.config)
    device = compiled.device(args.device).config
    if isinstance(device.transport, SerialLineTransportConfig):
        raise _UsageError(f"device {device.name!r} is a serial_line device: it has no registers")
    unit = args.unit if args.unit is not None else device.transport.unit
    transport = device.transport.model_copy(update={"unit": unit})
    device = device.model_copy(update={"transport": transport})
    return (
        device_link(device, compiled.config),
        unit,
        describe_transport(device, compiled.config),
    )


async def _read_raw(args: argparse.Namespace) -> int:
    if args.address is None or not 0 <= args.address <= 65535:  # noqa: PLR2004 - Modbus addresses
        raise _UsageError(f"read --raw needs --address 0..65535. Got {args.address} instead.")
    if not 1 <= args.count <= 125:  # noqa: PLR2004 - the Modbus limit
        raise _UsageError(f"--count must be 1..125. Got {args.count} instead.")
    link, unit, where = _raw_link(args)
    request = ReadRequest(args.kind, unit, args.address, args.count)
    try:
        result = (await read_requests(link, [request]))[request]
    finally:
        await link.close()
    last = args.address + args.count - 1
    span = f"{args.kind} {args.address}-{last}" if args.count > 1 else f"{args.kind} {last}"
    if result.error is not None or result.words is None:
        reason = result.error or "no_words"
        meaning = ""
        if reason.startswith("exception_code_"):
            code = int(reason.rsplit("_", 1)[1])
            meaning = f" ({_EXCEPTION_NAMES.get(code, 'device-specific')})"
        raise _DeviceFailedError(f"{where}: reading {span} failed: {reason}{meaning}.")
    words = list(result.words)
    print(f"{span} of {where}")
    rows = [("address", "hex", "uint16", "int16")]
    for offset, word in enumerate(words):
        signed = word - 0x10000 if word & 0x8000 else word
        rows.append((str(args.address + offset), f"0x{word:04X}", str(word), str(signed)))
    _print_table(rows)
    for offset in range(len(words) - 1):
        address = args.address + offset
        print()
        print(f"registers {address}-{address + 1} as a 32-bit value, under each byte order:")
        print(_indent(format_raw_views(words[offset : offset + 2]), "  "))
    return 0


# ---------------------------------------------------------------- run


def _stdout_sink(readings: Sequence[Reading]) -> None:
    """The `run` sink without an `mqtt` section: one JSON object per reading on stdout."""
    out = sys.stdout
    for reading in readings:
        out.write(json.dumps(_reading_json(reading), ensure_ascii=False) + "\n")
    out.flush()


def _run(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    if config.mqtt is None:
        _log.warning(
            "mqtt_not_configured",
            config=args.config,
            note="no mqtt section: readings go to stdout as JSON lines, nothing is published",
        )
        agent = Agent.from_config(config, sink=_stdout_sink, source=args.config)
        asyncio.run(agent.run(stop_signals=(signal.SIGTERM, signal.SIGINT)))
        return 0
    runtime = EdgeRuntime(config=config, source=args.config, config_path=Path(args.config))
    asyncio.run(
        runtime.run(stop_signals=(signal.SIGTERM, signal.SIGINT), reload_signals=(signal.SIGHUP,))
    )
    return 0


# ---------------------------------------------------------------- parser


def _logging_options() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    group = common.add_argument_group("logging (always on stderr)")
    group.add_argument(
        "--log-format",
        choices=("console", "json"),
        default="console",
        help="console: aligned key=value for people; json: one object per line for collectors "
        "(default: console)",
    )
    group.add_argument(
        "--log-level",
        choices=("debug", "info", "warning", "error"),
        default="info",
        help="lowest level logged (default: info)",
    )
    group.add_argument(
        "--debug-modbus",
        action="store_true",
        help="let pymodbus log every frame (otherwise only its CRITICAL messages)",
    )
    return common


def build_parser() -> argparse.ArgumentParser:
    """The argument parser, separate so that tests and docs can inspect it."""
    parser = argparse.ArgumentParser(
        prog="prognos-edge",
        description="Prognos edge agent: poll devices, decode with profiles, publish over MQTT.",
        epilog="Exit codes: 0 ok, 1 a device did not answer or was not identified, "
        "2 an invalid config, profile or usage-state file.",
    )
    parser.add_argument("--version", action="version", version=f"prognos-edge {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    common = _logging_options()
    _add_check(sub.add_parser, common)
    _add_profiles(sub.add_parser, common)
    _add_read(sub.add_parser, common)
    _add_run(sub.add_parser, common)
    validate = sub.add_parser(
        "validate",
        help="check telemetry payload files against the MQTT contract v1",
        description="Decode payload files (JSON or gzip) exactly as the cloud ingester does.",
    )
    validate.add_argument("files", nargs="+", metavar="FILE")
    validate.add_argument("--content-type", default=None, help="e.g. application/json+gzip")
    validate.set_defaults(func=_validate)
    return parser


def _add_check(add_parser: _AddParser, common: argparse.ArgumentParser) -> None:
    check = add_parser(
        "check",
        parents=[common],
        help="validate a config and the profiles it uses; print every device's read plan",
        description="Validate CONFIG and every profile in its profiles_dir, without touching a "
        "device. For each device: its profile, its transport, its read plan (the Modbus "
        "requests of each poll group) and the request count against the theoretical minimum, "
        "and its pre-processing. Exit 0 when valid, 2 with one line per problem otherwise.",
    )
    check.add_argument("config", metavar="CONFIG", help="the agent config, e.g. config/edge.yaml")
    check.set_defaults(func=_check)


def _add_profiles(add_parser: _AddParser, common: argparse.ArgumentParser) -> None:
    profiles = add_parser(
        "profiles",
        parents=[common],
        help="list the firmware profiles of a folder, or print one profile's read plan",
        description="List every profile in DIR (model, firmware, number of signals, how it is "
        "identified, consumables), or with --plan print the read plan of one profile.",
    )
    profiles.add_argument(
        "dir",
        metavar="DIR",
        nargs="?",
        default="firmware_profiles",
        help="the profile folder (default: ./firmware_profiles)",
    )
    profiles.add_argument(
        "--plan",
        metavar="PROFILE",
        help="a profile name in DIR (aquaflo_cpv150_2.x) or a .yaml file: print its read plan",
    )
    profiles.add_argument("--unit", type=int, default=1, help="unit id for --plan (default 1)")
    profiles.add_argument("--asset", help="asset id shown by --plan (default: the profile name)")
    profiles.set_defaults(func=_profiles)


def _add_read(add_parser: _AddParser, common: argparse.ArgumentParser) -> None:
    read = add_parser(
        "read",
        parents=[common],
        help="read one device once: decoded signals, or raw registers in all byte orders",
        description="Decoded: `read CONFIG --device NAME` reads every signal of the device once "
        "(identifying it first for profile: auto) and prints signal, value, unit and quality. "
        "Raw: `read --raw --host HOST --address A [--count N]` (or --serial-port for RTU, or "
        "CONFIG --device NAME for the device's host and unit) prints the registers, and every "
        "register pair as float32/int32/uint32 under the byte orders ABCD, BADC, CDAB and "
        "DCBA: pick the one that shows what the device's display shows. Exit 1 when the device "
        "does not answer.",
    )
    read.add_argument("config", metavar="CONFIG", nargs="?", help="the agent config")
    read.add_argument("--device", metavar="NAME", help="a device of CONFIG")
    read.add_argument("--json", action="store_true", help="decoded read: print one JSON object")
    raw = read.add_argument_group("raw registers")
    raw.add_argument("--raw", action="store_true", help="print raw registers, not signals")
    raw.add_argument("--address", type=int, help="first register, zero-based (required)")
    raw.add_argument("--count", type=int, default=2, help="registers to read (default 2)")
    raw.add_argument(
        "--kind", choices=("holding", "input"), default="holding", help="register table"
    )
    raw.add_argument("--unit", type=int, help="unit (slave) id (default 1, or the device's)")
    raw.add_argument("--timeout", type=float, default=1.0, help="response timeout, s")
    tcp = read.add_argument_group("raw over Modbus TCP")
    tcp.add_argument("--host", help="device or gateway address")
    tcp.add_argument("--port", type=int, help="TCP port (default 502)")
    rtu = read.add_argument_group("raw over Modbus RTU")
    rtu.add_argument("--serial-port", metavar="DEVICE", help="e.g. /dev/ttyUSB0")
    rtu.add_argument("--baudrate", type=int, default=19200, help="default 19200")
    rtu.add_argument("--parity", choices=("N", "E", "O"), default="N", help="default N")
    rtu.add_argument("--stopbits", type=int, choices=(1, 2), default=1, help="default 1")
    rtu.add_argument("--bytesize", type=int, choices=(7, 8), default=8, help="default 8")
    read.set_defaults(func=_read)


def _add_run(add_parser: _AddParser, common: argparse.ArgumentParser) -> None:
    run = add_parser(
        "run",
        parents=[common],
        help="run the agent: publish over MQTT (or, without an mqtt section, print JSON lines)",
        description="Poll every device of CONFIG, pre-process the readings (usage counters, "
        "aggregation, deadband) and deliver them. With an `mqtt` section: batches are "
        "committed to the durable outbox and published (QoS 1) per MQTT contract v1, with "
        "events, health (also at /metrics) and commands; SIGHUP reloads the config (the "
        "outbox is never touched). Without one: readings go to stdout, one JSON object per "
        'reading: {"asset", "signal", "ts" (epoch ms), "value", "quality", "reason" if bad}. '
        "Logs go to stderr. SIGTERM or SIGINT stops it gracefully (ports closed, usage state "
        "saved, in-flight messages acknowledged). Exit 1 when the publisher or the outbox "
        "fails.",
    )
    run.add_argument("config", metavar="CONFIG", help="the agent config")
    run.set_defaults(func=_run)


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "func"):
        parser.print_help(sys.stderr)
        return 2
    if hasattr(args, "log_format"):
        configure_logging(
            log_format=args.log_format, level=args.log_level, debug_modbus=args.debug_modbus
        )
    try:
        result: int = args.func(args)
    except _UsageError as exc:
        parser.exit(EXIT_CONFIG, f"prognos-edge {args.command}: error: {exc}\n")
    except ConfigError as exc:
        _fail(str(exc))
        return EXIT_CONFIG
    except (DeviceError, _DeviceFailedError, BufferCorrupt, AgentFailed) as exc:
        _fail(str(exc))
        return EXIT_DEVICE
    return result


def _fail(message: str) -> None:
    for line in message.splitlines():
        print(line, file=sys.stderr)
