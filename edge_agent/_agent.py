"""The agent: devices polled by their sources, readings pre-processed, handed to a sink.

Theory of operation
-------------------
`Agent.from_config` compiles everything that needs no device (profiles, read plans, pipeline
steps; `compile_agent`). `start()` then, in order:

1. loads the persisted usage state (`state_dir/usage.json`);
2. identifies every `profile: auto` device over a short-lived link of its channel (channels in
   parallel, devices of one channel one after the other). A device that is not identified
   follows its `startup_error_behavior`: `error` stops the start (`DeviceNotIdentified`),
   `ignore` drops it, `retry` polls its identification registers inside its channel's worker
   (`IdentifyPlan`, with the worker's back-off) until a profile matches, and the channel's
   worker is then rebuilt once with the real plan;
3. builds one source per physical channel with `build_sources` (an RTU bus, a TCP endpoint, a
   line device) and runs each as its own task, so one dead device never stalls another channel;
4. starts two timers: the pipeline flush (closes aggregation windows without new input) and the
   usage-state save.

Every poll's readings pass the device's `Pipeline` (usage counters, aggregation, deadband) and
what comes out goes to the sink, a plain callable, in the source's task. `stop()` cancels the
tasks, closes every port and connection, and saves the usage state.

Rules:
1. A source or timer that fails (a device with `startup_error_behavior: error` that did not
   answer, or a sink that raised) stops the whole agent; `wait()` raises its error.
2. Time comes from the injected `wall_clock_ms` and `sleep` (STYLE.md 6); nothing here reads a
   clock directly.
3. Logged are state changes only (STYLE.md 9): start, identification, stop; devices log their
   own availability changes in their sources.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Self

import structlog

from edge_agent._agent_devices import (
    IDENTIFY_RETRY_S,
    ChannelKey,
    CompiledAgent,
    CompiledDevice,
    DeviceNotIdentified,
    Identification,
    IdentifyPlan,
    Selection,
    channel_key,
    compile_agent,
    device_link,
    identify_channel,
)
from edge_agent._agent_pipeline import Pipelines
from edge_agent._config import EdgeConfig, load_config
from edge_agent._exceptions import ConfigError
from edge_agent._model import PollPlan, Reading
from edge_agent._profile import Profile, ProfileLibrary
from edge_agent.sources import (
    DeviceState,
    ModbusWorker,
    PacketTrace,
    Source,
    WritableLink,
    build_sources,
    start_source,
)

_log = structlog.get_logger("edge_agent.agent")

Sink = Callable[[Sequence[Reading]], None]
"""Receives every batch of pre-processed readings, in the task of the source (or timer) that
produced it; it must not block. What it raises stops the agent (Rule 1)."""


_CANCEL_AGAIN_S = 0.2
"""How long a cancelled task may take to end before it is cancelled again."""


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


async def cancel_and_wait(tasks: Collection[asyncio.Task[None]]) -> None:
    """Cancel tasks and wait until every one has ended, cancelling again those that ran on.

    On Python 3.11, `asyncio.wait_for` (which pymodbus awaits every response with) loses a
    cancellation that arrives in the loop iteration in which the response completes (CPython
    gh-86296, fixed in 3.12): the worker then polls on as if never cancelled. Cancelling again
    ends it at its next await.
    """
    pending = {task for task in tasks if not task.done()}
    while pending:
        for task in pending:
            task.cancel()
        _, pending = await asyncio.wait(pending, timeout=_CANCEL_AGAIN_S)
    for task in tasks:
        if not task.cancelled():
            task.exception()  # retrieved: the done callbacks decide what a failure means


@dataclass(slots=True)
class _Running:
    """A device as the agent runs it."""

    compiled: CompiledDevice
    plan: PollPlan | None = None


@dataclass(slots=True)
class _Channel:
    key: ChannelKey
    devices: list[str]
    source: Source | None = None
    task: asyncio.Task[None] | None = None


@dataclass(slots=True)
class _Tasks:
    timers: list[asyncio.Task[None]] = field(default_factory=list)
    rebuilds: set[asyncio.Task[None]] = field(default_factory=set)


class Agent:
    """Polls every configured device and hands pre-processed readings to a sink.

    Use as `async with Agent.from_config(config, sink=...) as agent: await agent.wait()`, or
    `await agent.run(stop_signals=(signal.SIGTERM, signal.SIGINT))`.

    Args:
        compiled: The compiled config (`compile_agent`).
        sink: Where pre-processed readings go.
        wall_clock_ms: Epoch milliseconds, for flushing aggregation windows and the state file.
        sleep: Awaitable sleep, for the flush and save timers.
        flush_interval_s: How often aggregation windows are closed without new input, seconds.
        trace_packet: Field-debugging hook for every Modbus link (see `PacketTrace`).
    """

    def __init__(
        self,
        *,
        compiled: CompiledAgent,
        sink: Sink,
        wall_clock_ms: Callable[[], int] = _now_ms,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        flush_interval_s: float = 1.0,
        trace_packet: PacketTrace | None = None,
    ) -> None:
        self.compiled = compiled
        self._sink = sink
        self._wall_ms = wall_clock_ms
        self._sleep = sleep
        self._flush_interval_s = flush_interval_s
        self._trace = trace_packet
        self._pipelines = Pipelines(state_dir=compiled.config.state_dir)
        self._devices = {d.name: _Running(d) for d in compiled.devices}
        self._channels: dict[ChannelKey, _Channel] = {}
        for device in compiled.devices:
            key = channel_key(device.config)
            self._channels.setdefault(key, _Channel(key, [])).devices.append(device.name)
        self._tasks = _Tasks()
        self._stop = asyncio.Event()
        self._failure: BaseException | None = None
        self._started = False
        self._stopped = False

    @classmethod
    def from_config(
        cls,
        config: EdgeConfig,
        *,
        sink: Sink,
        source: str = "edge.yaml",
        library: ProfileLibrary | None = None,
        wall_clock_ms: Callable[[], int] = _now_ms,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        flush_interval_s: float = 1.0,
        trace_packet: PacketTrace | None = None,
    ) -> Agent:
        """Compile a validated config and build the agent (no device I/O).

        Args:
            config: The config (`load_config`).
            sink: Where pre-processed readings go.
            source: The config file as the user named it, for error messages.
            library: The profiles; default: loaded from `config.profiles_dir`.
            wall_clock_ms: See the class.
            sleep: See the class.
            flush_interval_s: See the class.
            trace_packet: See the class.

        Raises:
            ConfigError: a profile, plan or pre-processing rule is invalid (one message, a line
                per problem).
        """
        compiled = compile_agent(config, source=source, library=library)
        return cls(
            compiled=compiled,
            sink=sink,
            wall_clock_ms=wall_clock_ms,
            sleep=sleep,
            flush_interval_s=flush_interval_s,
            trace_packet=trace_packet,
        )

    @classmethod
    def from_file(cls, path: str | Path, *, sink: Sink) -> Agent:
        """Load, validate and compile a config file (see `from_config`).

        Raises:
            ConfigError: the file or a profile is invalid.
        """
        return cls.from_config(load_config(path), sink=sink, source=str(path))

    # ------------------------------------------------------------ what it runs

    @property
    def states(self) -> Mapping[str, DeviceState]:
        """Runtime state of every polled device, by name (empty before `start()`)."""
        states: dict[str, DeviceState] = {}
        for channel in self._channels.values():
            if channel.source is not None:
                states.update(channel.source.states)
        return states

    @property
    def profiles(self) -> Mapping[str, Profile | None]:
        """Every device's profile by name; None for line devices and unidentified devices."""
        return {name: device.compiled.profile for name, device in self._devices.items()}

    def device(self, name: str) -> CompiledDevice:
        """A running device as compiled now (after identification for `profile: auto`).

        Raises:
            KeyError: no device of that name runs.
        """
        return self._devices[name].compiled

    def link_of(self, device: str) -> WritableLink | None:
        """The running Modbus link a device is polled through; None for other devices."""
        for channel in self._channels.values():
            source = channel.source
            if isinstance(source, ModbusWorker) and device in source.states:
                link = source.link
                return link if isinstance(link, WritableLink) else None
        return None

    async def poll_now(self, device: str | None = None) -> int:
        """Poll every group of one Modbus device (or of all) at once, outside the schedule.

        The readings go through the pipelines to the sink, as scheduled ones do. Call from the
        agent's loop after `start()`; the link serialises these requests with the worker's.

        Args:
            device: The device name; None polls every Modbus device.

        Returns:
            How many devices were polled (line devices and unidentified ones are not).
        """
        polled = 0
        for channel in self._channels.values():
            source = channel.source
            if not isinstance(source, ModbusWorker):
                continue
            for name in list(source.states):
                running = self._devices.get(name)
                if (device is not None and name != device) or running is None:
                    continue
                plan = running.plan
                if plan is None:
                    continue
                for group in range(len(plan.groups)):
                    self._emit(await source.poll(name, group))
                polled += 1
        return polled

    @property
    def stop_requested(self) -> bool:
        """Whether `request_stop()` was called or a task failed."""
        return self._stop.is_set()

    # ------------------------------------------------------------ lifecycle

    async def __aenter__(self) -> Self:
        try:
            await self.start()
        except BaseException:
            await self.stop()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def run(self, *, stop_signals: Sequence[signal.Signals] = ()) -> None:
        """Start, run until `request_stop()` or one of `stop_signals`, then stop.

        Args:
            stop_signals: Signals that stop the agent gracefully (SIGTERM, SIGINT); handlers
                are installed on the running loop for the duration of the call.

        Raises:
            DeviceError: a device with `startup_error_behavior: error` did not answer or could
                not be identified.
            ConfigError: the usage state file cannot be read, or an identified profile does not
                fit the device.
        """
        loop = asyncio.get_running_loop()
        for number in stop_signals:
            loop.add_signal_handler(number, self._on_signal, number)
        try:
            await self.start()
            await self.wait()
        finally:
            for number in stop_signals:
                loop.remove_signal_handler(number)
            await self.stop()

    def _on_signal(self, number: signal.Signals) -> None:
        _log.info("agent_stop_requested", signal=signal.Signals(number).name)
        self._stop.set()

    def request_stop(self) -> None:
        """Ask `wait()` to return; call `stop()` (or leave the `async with`) afterwards."""
        self._stop.set()

    async def start(self) -> None:
        """Identify `auto` devices, build the sources and start them (see the module docstring).

        Raises:
            DeviceNotIdentified: an `auto` device with `startup_error_behavior: error` could not
                be identified; nothing was started.
            ConfigError: the usage state file cannot be read, or an identified profile does not
                fit the device.
        """
        if self._started:
            raise RuntimeError("the agent was already started")
        self._started = True
        config = self.compiled.config
        _log.info(
            "agent_starting", site=config.site, gateway=config.gateway, devices=len(self._devices)
        )
        self._pipelines.load()
        await self._identify_auto_devices()
        for device in self._devices.values():
            self._prepare(device)
        for channel in self._channels.values():
            self._start_channel(channel)
        self._tasks.timers = [
            asyncio.create_task(self._flush_timer(), name="edge[agent].flush"),
        ]
        if config.state_dir is not None:
            self._tasks.timers.append(
                asyncio.create_task(self._save_timer(), name="edge[agent].save_state")
            )
        for task in self._tasks.timers:
            task.add_done_callback(self._task_done)
        channels = sum(1 for channel in self._channels.values() if channel.task is not None)
        _log.info("agent_started", devices=sorted(self._devices), channels=channels)

    async def wait(self) -> None:
        """Wait until a stop is requested, or a source or timer failed (then raise its error)."""
        await self._stop.wait()
        if self._failure is not None:
            raise self._failure

    async def stop(self) -> None:
        """Cancel every task, close every port and connection, save the usage state.

        Safe to call more than once, and after a failed `start()`.
        """
        if self._stopped:
            return
        self._stopped = True
        self._stop.set()
        tasks = [*self._tasks.timers, *self._tasks.rebuilds]
        tasks += [c.task for c in self._channels.values() if c.task is not None]
        await cancel_and_wait(tasks)
        for channel in self._channels.values():
            if channel.source is not None:
                await channel.source.aclose()
        if self._started:
            self._save_state()
            _log.info("agent_stopped")

    # ------------------------------------------------------------ identification

    async def _identify_auto_devices(self) -> None:
        by_channel: dict[ChannelKey, list[CompiledDevice]] = {}
        for device in self._devices.values():
            if device.compiled.auto:
                key = channel_key(device.compiled.config)
                by_channel.setdefault(key, []).append(device.compiled)
        config = self.compiled.config
        found_per_channel = await asyncio.gather(
            *(
                identify_channel(
                    devices,
                    link=device_link(devices[0].config, config, trace_packet=self._trace),
                    library=self.compiled.library,
                )
                for devices in by_channel.values()
            )
        )
        for found in found_per_channel:
            for name, identification in found.items():
                self._identified_at_start(self._devices[name], identification)

    def _identified_at_start(self, device: _Running, identification: Identification) -> None:
        compiled = device.compiled
        config = compiled.config
        selection = identification.selection
        if selection.profile is not None:
            self._identified(device, selection)
            return
        reason = identification.reason
        detail = selection.reason if identification.silent is None else "no answer"
        if config.startup_error_behavior == "error":
            raise DeviceNotIdentified(
                f'{self.compiled.source}: device "{config.name}" (unit {compiled.unit}): cannot '
                f"identify its profile: {detail} ({reason}).",
                device=config.name,
                unit=compiled.unit,
                reason=reason,
            )
        if config.startup_error_behavior == "ignore":
            _log.warning("device_ignored", device=config.name, reason=reason, detail=detail)
            del self._devices[config.name]
            self._channels[channel_key(config)].devices.remove(config.name)
            return
        _log.warning("device_not_identified", device=config.name, reason=reason, detail=detail)
        unit = compiled.unit if compiled.unit is not None else 0
        device.plan = IdentifyPlan(
            library=self.compiled.library,
            unit=unit,
            interval_s=config.interval_s or IDENTIFY_RETRY_S,
            on_identified=lambda found: self._identified_later(config.name, found),
        )

    def _identified(self, device: _Running, selection: Selection) -> None:
        profile = selection.profile
        if profile is None:  # pragma: no cover - callers pass a match
            raise ValueError("no profile selected")
        device.compiled = self.compiled.identified(device.compiled, profile)
        device.plan = device.compiled.plan
        _log.info(
            "device_identified",
            device=device.compiled.name,
            profile=profile.profile_id,
            detail=selection.reason,
        )

    def _identified_later(self, name: str, selection: Selection) -> None:
        """From a worker's task: rebuild the device's channel with its real plan."""
        device = self._devices.get(name)
        if device is None or self._stop.is_set():
            return
        try:
            self._identified(device, selection)
        except ConfigError as exc:
            # The profile does not fit this device's config: keep the device out, say why once.
            _log.error("device_profile_unusable", device=name, error=str(exc))
            return
        self._prepare(device)
        key = channel_key(device.compiled.config)
        task = asyncio.get_running_loop().create_task(
            self._rebuild(self._channels[key]), name=f"edge[{name}].rebuild"
        )
        self._tasks.rebuilds.add(task)
        task.add_done_callback(self._tasks.rebuilds.discard)
        task.add_done_callback(self._task_done)

    async def _rebuild(self, channel: _Channel) -> None:
        if channel.task is not None:
            await cancel_and_wait([channel.task])
        if channel.source is not None:
            await channel.source.aclose()
        self._start_channel(channel)

    # ------------------------------------------------------------ sources

    def _prepare(self, device: _Running) -> None:
        """Take the plan and build the pipeline (with its saved usage state) of a device."""
        compiled = device.compiled
        if compiled.plan is not None:
            device.plan = compiled.plan
        self._pipelines.add(compiled.config.asset, compiled.steps)

    def _start_channel(self, channel: _Channel) -> None:
        devices = [self._devices[name] for name in channel.devices if name in self._devices]
        ready = [d for d in devices if d.plan is not None or d.compiled.unit is None]
        if not ready:
            channel.source, channel.task = None, None
            return
        config = self.compiled.config.model_copy(
            update={"devices": [d.compiled.config for d in ready]}
        )
        plans = {d.compiled.name: d.plan for d in ready if d.plan is not None}
        (source,) = build_sources(config, plans, trace_packet=self._trace)
        channel.source = source
        channel.task = start_source(source, self._emit)
        channel.task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        if task.cancelled():
            return
        if (exc := task.exception()) is not None and self._failure is None:
            self._failure = exc
            self._stop.set()

    def _emit(self, readings: Sequence[Reading]) -> None:
        """A source's readings: through each asset's pipeline, then to the sink."""
        if out := self._pipelines.process(readings):
            self._sink(out)

    # ------------------------------------------------------------ timers and state

    async def _flush_timer(self) -> None:
        while True:
            await self._sleep(self._flush_interval_s)
            if out := self._pipelines.flush(self._wall_ms()):
                self._sink(out)

    async def _save_timer(self) -> None:
        interval_s = self.compiled.config.state_save_interval_s
        while True:
            await self._sleep(interval_s)
            self._save_state()

    def usage_state(self) -> dict[str, Mapping[str, object]]:
        """Every running asset's pipeline state (usage counters), as saved to `state_dir`."""
        return self._pipelines.to_state()

    def _save_state(self) -> None:
        self._pipelines.save(now_ms=self._wall_ms())
