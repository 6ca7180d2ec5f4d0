"""`prognos-edge run` with MQTT: the agent, the outbox, the publisher, events, health, commands.

Theory of operation
-------------------
`EdgeRuntime.run()` opens the durable outbox (created with `first_seq` = now in ms, so a
replaced file never reuses a `seq`), starts the publisher's thread on it, starts the delivery
sink's writer (`edge_agent._delivery`) and then the `Agent`, whose sink it is. Beside them run
timers on the same loop: availability events (every `_WATCH_S`), health (every
`health.interval_s`, also served at `/metrics`), and a supervisor that notices a failed
publisher, writer or agent. At stop, in reverse: the agent, the writer (commits what is in
memory), the publisher (waits for what is in flight), the outbox.

Reload (SIGHUP or `cmd/reload`) and `set-interval` build a new `CompiledAgent` first (a
`ConfigError` keeps the old agent running, and is answered and logged), then stop the running
`Agent` and start a new one on the same sink: the outbox, its `seq` and the publisher are never
touched. Keys that only a restart can apply (`mqtt`, `outbox`, `batch`, `site`, `gateway`,
`topic_prefix`, `health.metrics_listen`) refuse the reload.

Rules:
1. A failed publisher thread (`fatal_error`), a failed outbox write, or a failed agent ends
   `run()` with `AgentFailed` naming the cause (exit code 1); nothing is retried blindly.
2. Commands run one at a time, in arrival order; each is answered exactly once, on the MQTT 5
   response topic if the request had one, else on `.../cmd-result/{name}`.
3. Events: `agent_started` after the start, `config_reloaded` after each reload,
   `device_unreachable`/`device_recovered` when a device's availability changes (from the
   `DeviceState` its source keeps), `outbox_dropped` when the size cap dropped batches.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import structlog

from edge_agent._agent import Agent, cancel_and_wait
from edge_agent._agent_devices import CompiledAgent, compile_agent
from edge_agent._commands import Command, CommandError, answer, parse_command
from edge_agent._config import EdgeConfig, load_config
from edge_agent._delivery import DeliverySink
from edge_agent._exceptions import ConfigError, EdgeAgentError
from edge_agent._health import CpuMeter, MetricsServer, health_payload_metrics, process_metrics
from edge_agent._mqtt_link import Incoming
from edge_agent._outbox import EnqueueResult, SqliteOutbox
from edge_agent._planner import encode_write
from edge_agent._publisher import MqttPublisher
from edge_agent._version import __version__
from prognos_contract import MAX_STRING_LEN, Event, EventKind, Health, build_topic

_log = structlog.get_logger("edge_agent.runtime")

_WATCH_S = 0.25
"""How often device availability and the health of the parts are looked at, seconds."""
_RESTART_KEYS = ("site", "gateway", "mqtt", "outbox", "batch", "topic_prefix")


class AgentFailed(EdgeAgentError):  # noqa: N818 - reads as the situation, like BufferCorrupt
    """A part the agent cannot run without failed (the publisher, the outbox, a source).

    Caller: print the message and exit 1; a supervisor (systemd) restarts the agent.
    """


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _short(text: object) -> str:
    value = str(text)
    return value if len(value) <= MAX_STRING_LEN else value[: MAX_STRING_LEN - 3] + "..."


class EdgeRuntime:
    """The whole edge agent with MQTT delivery (see the module docstring).

    Args:
        config: The validated config; `config.mqtt` must be set.
        source: The config file as the user named it, for messages.
        config_path: The file `reload` re-reads; None: reload is refused.
        wall_clock_ms: Epoch milliseconds.
        monotonic_s: Monotonic seconds.
    """

    def __init__(
        self,
        *,
        config: EdgeConfig,
        source: str = "edge.yaml",
        config_path: Path | None = None,
        wall_clock_ms: Callable[[], int] = _now_ms,
        monotonic_s: Callable[[], float] = time.monotonic,
    ) -> None:
        if config.mqtt is None or config.outbox_path is None:
            raise ValueError("EdgeRuntime needs a config with mqtt and an outbox path")
        self._config = config
        self._source = source
        self._path = config_path
        self._wall_ms = wall_clock_ms
        self._now_s = monotonic_s
        self._base = f"{config.topic_prefix}/{config.site}/{config.gateway}"
        self._stop = asyncio.Event()
        self._failure: BaseException | None = None
        self._lock = asyncio.Lock()
        self._tasks: set[asyncio.Task[None]] = set()
        self._available: dict[str, bool] = {}
        self._cpu = CpuMeter(clock=monotonic_s)
        self._outbox: SqliteOutbox | None = None
        self._publisher: MqttPublisher[Any] | None = None
        self._delivery: DeliverySink | None = None
        self._agent: Agent | None = None
        self._agent_watch: asyncio.Task[None] | None = None
        self._metrics_server: MetricsServer | None = None
        self.metrics_port: int | None = None
        """The bound port of `/metrics` once started (None when off)."""
        self.commands_run = 0
        self.commands_refused = 0

    @property
    def config(self) -> EdgeConfig:
        """The config running now (after reloads and `set-interval`)."""
        return self._config

    @property
    def agent(self) -> Agent | None:
        """The running agent (replaced by each reload)."""
        return self._agent

    # ------------------------------------------------------------ lifecycle

    async def run(
        self,
        *,
        stop_signals: Sequence[signal.Signals] = (),
        reload_signals: Sequence[signal.Signals] = (),
    ) -> None:
        """Start everything, run until a stop signal or `request_stop()`, then stop everything.

        Raises:
            AgentFailed: the publisher, the outbox or a source failed (Rule 1).
            ConfigError: a TLS or password file, or the usage state, cannot be read.
            BufferCorrupt: the outbox file is not a healthy outbox of this gateway.
            DeviceError: a device with `startup_error_behavior: error` did not answer.
        """
        loop = asyncio.get_running_loop()
        for number in stop_signals:
            loop.add_signal_handler(number, self._on_stop_signal, number)
        for number in reload_signals:
            loop.add_signal_handler(number, self._on_reload_signal)
        try:
            await self._start()
            await self._stop.wait()
        finally:
            for number in (*stop_signals, *reload_signals):
                loop.remove_signal_handler(number)
            await self._shutdown()
        if self._failure is not None:
            raise self._failure

    def request_stop(self) -> None:
        """Ask `run()` to stop gracefully."""
        self._stop.set()

    def _on_stop_signal(self, number: signal.Signals) -> None:
        _log.info("agent_stop_requested", signal=signal.Signals(number).name)
        self._stop.set()

    def _on_reload_signal(self) -> None:
        self._spawn(self._reload_logged(), name="edge[runtime].reload")

    async def _start(self) -> None:
        config = self._config
        mqtt = config.mqtt
        path = config.outbox_path
        if mqtt is None or path is None:  # pragma: no cover - checked in __init__
            raise ValueError("no mqtt section")
        path.parent.mkdir(parents=True, exist_ok=True)
        outbox_cfg = config.outbox
        self._outbox = await asyncio.to_thread(
            SqliteOutbox,
            path=path,
            gateway=config.gateway,
            max_bytes=outbox_cfg.max_bytes,
            max_messages=outbox_cfg.max_messages,
            sync=outbox_cfg.sync,
            compress=outbox_cfg.compress == "gzip",
            first_seq=self._wall_ms(),
        )
        loop = asyncio.get_running_loop()
        self._publisher = MqttPublisher(
            config=mqtt,
            outbox=self._outbox,
            site=config.site,
            gateway=config.gateway,
            agent_version=__version__,
            prefix=config.topic_prefix,
            wall_clock_ms=self._wall_ms,
            subscriptions=(f"{self._base}/cmd/+",),
            on_message=lambda incoming: self._from_thread(loop, incoming),
        )
        self._publisher.start()
        topic = build_topic(
            "telemetry", site=config.site, gateway=config.gateway, prefix=config.topic_prefix
        )
        self._delivery = DeliverySink(
            outbox=self._outbox,
            topic=topic,
            max_readings=config.batch.max_readings,
            linger_s=config.batch.linger_s,
            on_dropped=self._on_dropped,
            wall_clock_ms=self._wall_ms,
            monotonic_s=self._now_s,
        )
        self._delivery.start()
        if (listen := config.health.listen) is not None:
            server = MetricsServer(collect=self.metrics, host=listen[0], port=listen[1])
            self.metrics_port = await server.start()
            self._metrics_server = server
        compiled = compile_agent(config, source=self._source)
        await self._start_agent(compiled)
        self._spawn(self._supervise(), name="edge[runtime].supervise")
        self._spawn(self._health_timer(), name="edge[runtime].health")
        stats = self._outbox.stats(self._wall_ms())
        self._event(
            "agent_started",
            detail={
                "agent_version": __version__,
                "devices": len(config.devices),
                "next_seq": stats.next_seq,
                "backlog_messages": stats.depth_messages,
            },
        )
        _log.info(
            "delivery_started",
            outbox=str(path),
            next_seq=stats.next_seq,
            backlog_messages=stats.depth_messages,
            broker=f"{mqtt.host}:{mqtt.effective_port}",
            metrics_port=self.metrics_port,
        )

    async def _start_agent(self, compiled: CompiledAgent) -> None:
        if self._delivery is None:  # pragma: no cover - started first
            raise RuntimeError("the delivery sink is not started")
        agent = Agent(compiled=compiled, sink=self._delivery)
        try:
            await agent.start()
        except BaseException:
            await agent.stop()
            raise
        self._agent = agent
        self._agent_watch = asyncio.create_task(self._watch_agent(agent), name="edge[agent].watch")

    async def _stop_agent(self) -> None:
        agent, self._agent = self._agent, None
        watch, self._agent_watch = self._agent_watch, None
        if watch is not None:
            await cancel_and_wait([watch])
        if agent is not None:
            await agent.stop()

    async def _shutdown(self) -> None:
        await cancel_and_wait(list(self._tasks))
        await self._stop_agent()
        if self._metrics_server is not None:
            await self._metrics_server.stop()
        if self._delivery is not None:
            await self._delivery.aclose()
        if self._publisher is not None:
            await asyncio.to_thread(self._publisher.stop)
        if self._outbox is not None:
            self._outbox.close()

    def _spawn(self, coro: Any, *, name: str) -> None:  # noqa: ANN401 - any coroutine
        task: asyncio.Task[None] = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _fail(self, exc: BaseException) -> None:
        if self._failure is None:
            self._failure = exc
        self._stop.set()

    async def _watch_agent(self, agent: Agent) -> None:
        try:
            await agent.wait()
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # noqa: BLE001 - the agent's failure ends the run
            self._fail(exc)

    async def _supervise(self) -> None:
        """Rule 1 for the publisher and the writer; availability events (Rule 3)."""
        while True:
            await asyncio.sleep(_WATCH_S)
            publisher, delivery = self._publisher, self._delivery
            if publisher is not None and (fatal := publisher.fatal_error) is not None:
                self._fail(AgentFailed(f"the MQTT publisher stopped: {fatal}"))
                return
            if delivery is not None and delivery.done.is_set() and not self._stop.is_set():
                cause = delivery.failure or RuntimeError("ended")
                path = self._config.outbox_path
                self._fail(AgentFailed(f"writing to the outbox {path} failed: {cause}"))
                return
            self._check_availability()

    def _check_availability(self) -> None:
        agent = self._agent
        if agent is None:
            return
        for name, state in agent.states.items():
            now = state.available
            if now is None:
                continue
            before = self._available.get(name)
            self._available[name] = now
            if before is None and now:
                continue
            if before is not None and before == now:
                continue
            if now:
                self._event("device_recovered", asset=state.asset, detail={"device": name})
            else:
                detail: dict[str, object] = {"device": name}
                if state.last_error:
                    detail["reason"] = _short(state.last_error)
                self._event("device_unreachable", asset=state.asset, detail=detail)

    def _event(
        self, kind: EventKind, *, asset: str | None = None, detail: Mapping[str, object] = {}
    ) -> None:
        if self._publisher is None:
            return
        event = Event(
            gateway=self._config.gateway,
            ts=self._wall_ms(),
            kind=kind,
            asset=asset,
            detail=dict(detail),  # type: ignore[arg-type]
        )
        self._publisher.publish_event(event)

    def _on_dropped(self, result: EnqueueResult) -> None:
        self._event(
            "outbox_dropped",
            detail={
                "dropped_messages": result.dropped_messages,
                "dropped_readings": result.dropped_readings,
                "seq": result.seq,
                "policy": "drop_oldest",
            },
        )

    # ------------------------------------------------------------ health

    def metrics(self) -> dict[str, float]:
        """Every figure of the agent, for the health topic and `/metrics` (see `_health`)."""
        out: dict[str, float] = {}
        if self._outbox is not None:
            st = self._outbox.stats(self._wall_ms())
            out |= {
                "outbox_depth_messages": st.depth_messages,
                "outbox_depth_readings": st.depth_readings,
                "outbox_depth_bytes": st.depth_bytes,
                "outbox_in_flight_messages": st.in_flight_messages,
                "outbox_oldest_age_seconds": st.oldest_age_ms / 1000,
                "outbox_next_seq": st.next_seq,
                "outbox_enqueued_messages_total": st.enqueued_messages,
                "outbox_enqueued_readings_total": st.enqueued_readings,
                "outbox_published_messages_total": st.published_messages,
                "outbox_published_readings_total": st.published_readings,
                "outbox_rejected_messages_total": st.rejected_messages,
                "outbox_rejected_readings_total": st.rejected_readings,
                "outbox_dropped_messages_total": st.dropped_messages,
                "outbox_dropped_readings_total": st.dropped_readings,
            }
        if self._delivery is not None:
            out["delivery_buffered_readings"] = self._delivery.buffered_readings
            out["delivery_invalid_readings_total"] = self._delivery.invalid_readings
        if self._publisher is not None:
            out |= self._publisher.stats().metrics()
        if self._agent is not None:
            for name, state in sorted(self._agent.states.items()):
                label = f'{{device="{name}"}}'
                out[f"poll_errors_total{label}"] = state.counters.polls_failed
                out[f"polls_total{label}"] = state.counters.polls
                if state.available is not None:
                    out[f"device_available{label}"] = float(state.available)
        out["commands_total"] = self.commands_run
        out["commands_refused_total"] = self.commands_refused
        out |= process_metrics(self._cpu)
        return {key: float(value) for key, value in out.items()}

    async def _health_timer(self) -> None:
        while True:
            await asyncio.sleep(self._config.health.interval_s)
            if self._publisher is not None:
                metrics = health_payload_metrics(self.metrics())
                self._publisher.publish_health(Health(ts=self._wall_ms(), metrics=metrics))

    # ------------------------------------------------------------ reload and commands

    async def reload(self) -> dict[str, object]:
        """Re-read and validate the config file; on success restart the agent on it.

        Returns:
            What was reloaded (for the command's answer).

        Raises:
            ConfigError: the file is invalid, or changes a key only a restart applies; the old
                config keeps running.
        """
        async with self._lock:
            return await self._reload_unlocked()

    async def _reload_unlocked(self) -> dict[str, object]:
        if self._path is None:
            raise ConfigError("reload: the agent was not started from a config file")
        path = self._path
        new = await asyncio.to_thread(load_config, path)
        old = self._config
        changed = [key for key in _RESTART_KEYS if getattr(new, key) != getattr(old, key)]
        if new.health.metrics_listen != old.health.metrics_listen:
            changed.append("health.metrics_listen")
        if changed:
            raise ConfigError(
                f"{path}: {', '.join(changed)} changed; only a restart applies them. "
                "Kept running with the previous config.",
                path=str(path),
            )
        compiled = compile_agent(new, source=str(path))
        await self._swap(compiled)
        self._config = new
        self._event("config_reloaded", detail={"devices": len(new.devices)})
        _log.info("config_reloaded", path=str(path), devices=len(new.devices))
        return {"devices": len(new.devices)}

    async def _reload_logged(self) -> None:
        try:
            await self.reload()
        except ConfigError as exc:
            _log.error("config_reload_failed", error=str(exc))

    async def _swap(self, compiled: CompiledAgent) -> None:
        """Replace the running agent by one on `compiled`; the old one comes back on failure."""
        old = self._agent.compiled if self._agent is not None else None
        await self._stop_agent()
        try:
            await self._start_agent(compiled)
        except Exception:
            if old is not None:
                await self._start_agent(old)
            raise

    def _from_thread(self, loop: asyncio.AbstractEventLoop, incoming: Incoming) -> None:
        loop.call_soon_threadsafe(self._on_command, incoming)

    def _on_command(self, incoming: Incoming) -> None:
        """From the publisher's thread, through the loop: run it after those before it."""
        self._spawn(self._command(incoming), name="edge[runtime].command")

    async def _command(self, incoming: Incoming) -> None:
        name = incoming.topic.rsplit("/", 1)[-1]
        command: Command | None = None
        detail: object
        async with self._lock:
            try:
                command = parse_command(name, incoming.payload)
                result = await self._execute(command)
            except (CommandError, ConfigError, ValueError, OSError) as exc:
                ok, detail = False, str(exc)
            else:
                ok, detail = True, result
        cid = command.id if command is not None else None
        if ok:
            self.commands_run += 1
            _log.info("command_done", command=name, id=cid)
        else:
            self.commands_refused += 1
            _log.warning("command_refused", command=name, id=cid, error=detail)
        topic = incoming.response_topic or f"{self._base}/cmd-result/{name}"
        payload = answer(cid, ok=ok, detail=detail, now_ms=self._wall_ms())
        if self._publisher is not None:
            self._publisher.publish_answer(
                topic, payload, correlation_data=incoming.correlation_data
            )

    async def _execute(self, command: Command) -> object:
        if command.name == "reload":
            return await self._reload_unlocked()
        agent = self._agent
        if agent is None:
            raise CommandError(f"{command.name}: the agent is not running")
        if command.device is not None and command.device not in agent.profiles:
            known = ", ".join(sorted(agent.profiles))
            raise CommandError(f"{command.name}: unknown device {command.device!r} ({known})")
        if command.name == "poll-now":
            return {"devices_polled": await agent.poll_now(command.device)}
        if command.name == "set-interval":
            return await self._set_interval(command)
        return await self._write(command, agent)

    async def _set_interval(self, command: Command) -> object:
        devices = [
            d.model_copy(update={"interval_s": command.interval_s})
            if d.name == command.device
            else d
            for d in self._config.devices
        ]
        new = self._config.model_copy(update={"devices": devices})
        compiled = compile_agent(new, source=self._source)
        await self._swap(compiled)
        self._config = new
        return {"device": command.device, "interval_s": command.interval_s}

    async def _write(self, command: Command, agent: Agent) -> object:
        name, signal_name, value = command.device, command.signal, command.value
        if name is None or signal_name is None or value is None:  # pragma: no cover - parsed
            raise CommandError("write: device, signal and value are required")
        device = agent.device(name)
        if device.config.writes != "enabled":
            raise CommandError(f"write: device {name!r} has writes: disabled in its config")
        profile = agent.profiles.get(name)
        if profile is None:
            raise CommandError(f"write: device {name!r} has no identified profile")
        try:
            signal_ = profile.signal(signal_name)
        except KeyError:
            raise CommandError(f"write: device {name!r} has no signal {signal_name!r}") from None
        if signal_.access != "read_write":
            raise CommandError(
                f"write: signal {signal_name!r} of {name!r} is not writable (profile "
                f"{profile.profile_id}: access {signal_.access})"
            )
        data = encode_write(signal_, value)
        link = agent.link_of(name)
        unit = getattr(device.config.transport, "unit", None)
        if link is None or unit is None:
            raise CommandError(f"write: device {name!r} is not a running Modbus device")
        if signal_.kind not in ("coil", "holding"):
            raise CommandError(f"write: {signal_name!r} is a {signal_.kind} signal; not writable")
        # Through the running link: serialised with the polls (one frame on a bus at a time).
        failed = await link.write(unit=unit, kind=signal_.kind, address=signal_.address, data=data)
        if failed is not None:
            raise CommandError(f"write: device {name!r} did not confirm the write: {failed}")
        _log.info("device_written", device=name, signal=signal_name, value=value)
        return {"device": name, "signal": signal_name, "value": value}
