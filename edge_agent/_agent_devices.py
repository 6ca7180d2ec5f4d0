"""From a validated config to what the agent runs per device: profile, plan, pipeline steps.

`compile_agent` does everything that needs no device (STYLE.md 3): it loads the profile library,
compiles the read plan of every device that names its profile, and maps every device's
`preprocess` section onto pipeline steps. All problems of all devices come back as one
`ConfigError`, a line each naming the file, the device, the key and the value.

A device with `profile: auto` is identified over its link when the agent starts (`identify`):
the identification registers of every profile are read one request each, and the pure
`ProfileLibrary.select` picks the profile. `CompiledAgent.identified` then compiles it as if the
config had named the profile.

The link helpers (`device_link`, `identify`, `read_once`) are shared with the commissioning
CLI, so `prognos-edge read` reads a device exactly as the agent does.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Protocol

from edge_agent._agent_pipeline import SignalInfo, build_steps, check_signal_names
from edge_agent._config import (
    AUTO_PROFILE,
    DeviceConfig,
    EdgeConfig,
    RtuTransportConfig,
    SerialLineTransportConfig,
    TcpTransportConfig,
)
from edge_agent._exceptions import ConfigError, DeviceError
from edge_agent._model import BlockResult, PollGroup, Reading, ReadRequest
from edge_agent._planner import CompiledPlan, PlanLimits, compile_plan
from edge_agent._preprocess import StepConfig
from edge_agent._profile import Profile, ProfileLibrary
from edge_agent.sources import (
    ModbusLink,
    ModbusRtuBus,
    ModbusTcpTransport,
    PacketTrace,
    build_line_parser,
)

SILENT = frozenset({"timeout", "no_response", "disconnected"})
"""Request errors that mean the device did not answer: the rest of a poll is not sent."""
IDENTIFY_RETRY_S = 30.0
"""How often a device that answers but matches no profile is asked again."""

ChannelKey = tuple[str, ...]
"""One physical channel: `("rtu", bus)`, `("tcp", host, port)` or `("line", device)`."""


class Selection(Protocol):
    """What `ProfileLibrary.select` returns (its class is not exported by `edge_agent._profile`)."""

    @property
    def profile(self) -> Profile | None:
        """The one profile that matched, or None."""
        ...

    @property
    def reason(self) -> str:
        """One line: what matched, or why nothing did."""
        ...

    @property
    def details(self) -> tuple[str, ...]:
        """One line per profile: what the device reported and how it compared."""
        ...


class DeviceNotIdentified(DeviceError):  # noqa: N818 - reads as the situation, like DeviceTimeout
    """A `profile: auto` device with `startup_error_behavior: error` could not be identified.

    Caller: stop the agent (the operator asked for it); the message says what the device
    answered, or that it did not answer.

    Attributes:
        reason: `not_identified`, or the reason it did not answer (`timeout`, ...).
    """

    def __init__(self, message: str, *, device: str, unit: int | None, reason: str) -> None:
        super().__init__(message, device=device, unit=unit)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class CompiledDevice:
    """One device, compiled.

    Attributes:
        config: The device's config.
        profile: Its profile; None for a line device, and for `profile: auto` until identified.
        plan: Its read plan; None for a line device and an unidentified `auto` device.
        steps: Its pre-processing steps (empty for an unidentified `auto` device).
    """

    config: DeviceConfig
    profile: Profile | None
    plan: CompiledPlan | None
    steps: tuple[StepConfig, ...]

    @property
    def name(self) -> str:
        """The device name."""
        return self.config.name

    @property
    def auto(self) -> bool:
        """Whether the profile is found by identification."""
        return self.config.profile == AUTO_PROFILE

    @property
    def unit(self) -> int | None:
        """The Modbus unit id; None for a line device."""
        transport = self.config.transport
        return None if isinstance(transport, SerialLineTransportConfig) else transport.unit


@dataclass(frozen=True, slots=True)
class CompiledAgent:
    """A config compiled for running: the library and every device.

    Attributes:
        config: The validated config.
        source: The config file as the user named it, for messages.
        library: Every profile of `config.profiles_dir`.
        devices: The devices, in config order.
    """

    config: EdgeConfig
    source: str
    library: ProfileLibrary
    devices: tuple[CompiledDevice, ...]

    def device(self, name: str) -> CompiledDevice:
        """The device called `name`.

        Raises:
            ConfigError: no such device (the message lists them).
        """
        for device in self.devices:
            if device.name == name:
                return device
        names = ", ".join(repr(d.name) for d in self.devices)
        raise ConfigError(
            f"{self.source}: devices has no device {name!r} (it has {names}).", path=self.source
        )

    def identified(self, device: CompiledDevice, profile: Profile) -> CompiledDevice:
        """An `auto` device compiled with the profile identification chose.

        A `preprocess` key naming a signal the profile lacks is accepted (it was checked
        against every identifiable profile at load) and never fires.

        Raises:
            ConfigError: the profile does not fit the device's limits or interval.
        """
        where = _where(self.source, device.config)
        plan = compile_device(device.config, profile, where=where)
        steps = build_steps(
            device.config.preprocess,
            signals=signal_infos(plan),
            where=where,
            unknown="ignore",
            fallback_interval_s=device.config.interval_s or profile.defaults.interval_s,
        )
        return replace(device, profile=profile, plan=plan, steps=steps)


def _where(source: str, device: DeviceConfig) -> str:
    return f'{source}: device "{device.name}"'


def load_library(config: EdgeConfig, *, source: str) -> ProfileLibrary:
    """Load every profile of `config.profiles_dir`.

    Raises:
        ConfigError: the folder is missing or a profile is invalid (`ProfileError`, naming the
            profile file, key and value).
    """
    if not config.profiles_dir.is_dir():
        raise ConfigError(
            f"{source}: profiles_dir must be an existing folder. "
            f"Got {str(config.profiles_dir)!r} instead.",
            path=source,
            key="profiles_dir",
        )
    return ProfileLibrary.load(config.profiles_dir)


def compile_device(device: DeviceConfig, profile: Profile, *, where: str) -> CompiledPlan:
    """A Modbus device's read plan, with its interval override and limits.

    Raises:
        ConfigError: the profile does not fit (a value wider than `limits.max_registers`).
    """
    transport = device.transport
    if isinstance(transport, SerialLineTransportConfig):
        raise TypeError(f"device {device.name!r} is a serial_line device: it has no read plan")
    intervals = (
        {signal.name: device.interval_s for signal in profile.signals}
        if device.interval_s is not None
        else None
    )
    try:
        return compile_plan(
            profile,
            asset=device.asset,
            unit=transport.unit,
            limits=plan_limits(device),
            intervals_s=intervals,
        )
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}", key="limits") from None


def plan_limits(device: DeviceConfig) -> PlanLimits:
    """The planner limits of a device's `limits` section."""
    return PlanLimits(**device.limits.model_dump())


def signal_infos(plan: CompiledPlan) -> dict[str, SignalInfo]:
    """Deadband and effective poll interval of every planned signal."""
    return {
        slot.signal.name: SignalInfo(deadband=slot.signal.deadband, interval_s=slot.interval_s)
        for slot in plan.slots
    }


def compile_agent(
    config: EdgeConfig, *, source: str, library: ProfileLibrary | None = None
) -> CompiledAgent:
    """Compile every device of a validated config (no I/O beyond reading the profiles).

    Args:
        config: The config (`load_config`).
        source: The config file as the user named it, for messages.
        library: The profiles; default: loaded from `config.profiles_dir`.

    Returns:
        The compiled agent.

    Raises:
        ConfigError: one message, a line per problem of any device or profile.
    """
    if library is None:
        library = load_library(config, source=source)
    identifiable = {
        signal.name for p in library if p.identification is not None for signal in p.signals
    }
    devices: list[CompiledDevice] = []
    problems: list[str] = []
    for device in config.devices:
        where = _where(source, device)
        try:
            devices.append(_compile_one(device, library, identifiable, where=where))
        except ConfigError as exc:
            problems.extend(str(exc).splitlines())
    if problems:
        raise ConfigError("\n".join(problems), path=source)
    return CompiledAgent(config=config, source=source, library=library, devices=tuple(devices))


def _compile_one(
    device: DeviceConfig, library: ProfileLibrary, identifiable: set[str], *, where: str
) -> CompiledDevice:
    transport = device.transport
    preprocess = device.preprocess
    if isinstance(transport, SerialLineTransportConfig):
        parser = build_line_parser(transport.parser)
        interval_s = device.interval_s or transport.timeout_s
        infos = {name: SignalInfo(deadband=None, interval_s=interval_s) for name in parser.signals}
        steps = build_steps(preprocess, signals=infos, where=where)
        return CompiledDevice(config=device, profile=None, plan=None, steps=steps)
    if device.profile == AUTO_PROFILE:
        if not identifiable:
            raise ConfigError(
                f"{where}: profile 'auto' needs a profile with identification registers in "
                "profiles_dir; none has them.",
                key="profile",
            )
        check_signal_names(
            preprocess, known=identifiable, where=where, what="identifiable profiles"
        )
        return CompiledDevice(config=device, profile=None, plan=None, steps=())
    try:
        profile = library.get(str(device.profile))
    except ConfigError:
        known = ", ".join(sorted(p.profile_id for p in library))
        raise ConfigError(
            f"{where}: profile must name a profile in profiles_dir ({known}). "
            f"Got {device.profile!r} instead.",
            key="profile",
        ) from None
    plan = compile_device(device, profile, where=where)
    steps = build_steps(preprocess, signals=signal_infos(plan), where=where)
    return CompiledDevice(config=device, profile=profile, plan=plan, steps=steps)


# ---------------------------------------------------------------- links and one-shot reads


def channel_key(device: DeviceConfig) -> ChannelKey:
    """The physical channel of a device, as `build_sources` groups devices into sources."""
    transport = device.transport
    if isinstance(transport, RtuTransportConfig):
        return ("rtu", transport.bus)
    if isinstance(transport, TcpTransportConfig):
        return ("tcp", transport.host, str(transport.port))
    return ("line", device.name)


def describe_transport(device: DeviceConfig, config: EdgeConfig) -> str:
    """One line: how the device is reached (`tcp 10.0.0.5:502 unit 1`, `rtu bus ...`)."""
    transport = device.transport
    if isinstance(transport, TcpTransportConfig):
        return (
            f"tcp {transport.host}:{transport.port} unit {transport.unit}, "
            f"timeout {transport.timeout_s:g} s"
        )
    if isinstance(transport, RtuTransportConfig):
        bus = config.buses.get(transport.bus)
        settings = (
            f"{bus.port} {bus.baudrate} {bus.bytesize}{bus.parity}{bus.stopbits}, "
            f"timeout {bus.timeout_s:g} s"
            if bus is not None
            else "undeclared bus"
        )
        return f'rtu bus "{transport.bus}" ({settings}) unit {transport.unit}'
    return (
        f"serial_line {transport.port} {transport.baudrate} "
        f"{transport.bytesize}{transport.parity}{transport.stopbits}, "
        f"parser {transport.parser.type}"
    )


def device_link(
    device: DeviceConfig, config: EdgeConfig, *, trace_packet: PacketTrace | None = None
) -> ModbusTcpTransport | ModbusRtuBus:
    """A fresh link to a Modbus device, with its config's settings (close it after use).

    Raises:
        TypeError: the device is a serial_line device.
    """
    transport = device.transport
    if isinstance(transport, TcpTransportConfig):
        return ModbusTcpTransport(
            host=transport.host,
            port=transport.port,
            timeout_s=transport.timeout_s,
            trace_packet=trace_packet,
        )
    if isinstance(transport, RtuTransportConfig):
        bus = config.buses[transport.bus]
        return ModbusRtuBus(
            port=bus.port,
            baudrate=bus.baudrate,
            bytesize=bus.bytesize,
            parity=bus.parity,
            stopbits=bus.stopbits,
            timeout_s=bus.timeout_s,
            inter_frame_delay_s=bus.inter_frame_delay_s,
            trace_packet=trace_packet,
        )
    raise TypeError(f"device {device.name!r} is a serial_line device, not Modbus")


async def read_requests(
    link: ModbusLink, requests: Sequence[ReadRequest]
) -> dict[ReadRequest, BlockResult]:
    """Send requests in order; after one finds the device silent, the rest get its result.

    So a dead device costs one timeout, as in the agent's workers.
    """
    results: dict[ReadRequest, BlockResult] = {}
    silent: BlockResult | None = None
    for request in requests:
        if request in results:
            continue
        if silent is not None:
            results[request] = silent
            continue
        result = await link.read(request)
        if result.error in SILENT:
            silent = result
        results[request] = result
    return results


@dataclass(frozen=True, slots=True)
class Identification:
    """What identifying one device found.

    Attributes:
        selection: The library's choice, with the reason and per-profile details.
        silent: The reason the device did not answer at all (`timeout`, ...), else None.
    """

    selection: Selection
    silent: str | None

    @property
    def reason(self) -> str:
        """Why nothing was chosen: the silence reason, or `not_identified`."""
        return self.silent or "not_identified"


async def identify(link: ModbusLink, library: ProfileLibrary, *, unit: int) -> Identification:
    """Read a device's identification registers and choose its profile.

    Args:
        link: The device's link (not closed here).
        library: The profiles to choose from.
        unit: The device's unit id.

    Returns:
        The selection, and whether the device answered at all.
    """
    requests = library.identification_requests(unit=unit)
    results = await read_requests(link, requests)
    errors = [result.error for result in results.values()]
    silent = errors[0] if errors and all(error in SILENT for error in errors) else None
    return Identification(library.select(results, unit=unit), silent)


async def read_once(link: ModbusLink, plan: CompiledPlan) -> list[Reading]:
    """Read every request of a plan once (all groups) and decode: one reading per signal."""
    return plan.decode(await read_requests(link, plan.requests))


class IdentifyPlan:
    """A `PollPlan` that keeps trying to identify a device, inside the device's normal worker.

    It polls the identification registers (so the worker's back-off, availability and
    down/up logging apply while the device is silent) and yields no readings. When the answers
    select a profile, it calls `on_identified` once, from the worker's task; the agent then
    rebuilds the worker with the real plan.

    Args:
        library: The profiles.
        unit: The device's unit id.
        interval_s: How often to ask a device that answers but matches nothing.
        on_identified: Called once with the selection that found a profile.
    """

    def __init__(
        self,
        *,
        library: ProfileLibrary,
        unit: int,
        interval_s: float,
        on_identified: Callable[[Selection], None],
    ) -> None:
        self._library = library
        self._unit = unit
        self._groups = (
            PollGroup(interval_s=interval_s, requests=library.identification_requests(unit=unit)),
        )
        self._on_identified = on_identified
        self.found: Selection | None = None
        self.last_reason: str | None = None
        """The last reason nothing matched (a device answering with the wrong model)."""

    @property
    def groups(self) -> Sequence[PollGroup]:
        """One group: the identification requests."""
        return self._groups

    def decode(self, results: Mapping[ReadRequest, BlockResult]) -> list[Reading]:
        """Select a profile from the answers; never yields readings."""
        if self.found is not None:
            return []
        selection = self._library.select(results, unit=self._unit)
        if selection.profile is not None:
            self.found = selection
            self._on_identified(selection)
        else:
            self.last_reason = selection.reason
        return []


async def identify_channel(
    devices: Sequence[CompiledDevice],
    *,
    link: ModbusLink,
    library: ProfileLibrary,
) -> dict[str, Identification]:
    """Identify the `auto` devices of one channel through one link, one after the other."""
    found: dict[str, Identification] = {}
    try:
        for device in devices:
            unit = device.unit
            if unit is None:
                continue
            found[device.name] = await identify(link, library, unit=unit)
    finally:
        await link.close()
        # Let the transport's connection_lost run before the next link opens the same port.
        await asyncio.sleep(0)
    return found
