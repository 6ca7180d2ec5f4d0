"""The running plant: every device's server, the socat pty pair, the outputs (the I/O shell).

`Plant.start()` starts one pymodbus server per device (TCP on loopback; the serial device as
Modbus RTU on one end of a socat pty pair), then writes the outputs for the rest of the pipeline
into its folder:

- ``edge-<gateway>.yaml``: edge-agent configs, checked with the agent's own loader;
- ``assets.yaml``: the asset registry of the fleet;
- ``manifest.json``: the clock, every device's endpoint, the planned failures;
- ``ground_truth.jsonl``: appended as failures and consumable replacements happen;
- ``served.json``: what every device served, per signal (rewritten by `write_counts`).

`Plant.step()` is one supervision pass at the current simulated time: it takes devices offline
and back as their schedules say, and records the events that became due. It logs on every such
change of state, and nothing else.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import shutil
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import structlog
import yaml

from cloud.registry import load_registry
from cloud.sim._clock import SimClock
from cloud.sim._fleet import PROFILES_DIR, Member
from cloud.sim._outputs import (
    Endpoint,
    MqttTarget,
    asset_records,
    edge_configs,
    event_record,
    manifest,
)
from cloud.sim._server import DeviceServer
from cloud.sim._trajectory import Event
from edge_agent._config import load_config

log = structlog.get_logger("cloud.sim")


def wall_ms() -> float:
    """The wall clock, epoch milliseconds (the default time source of a running plant)."""
    return time.time() * 1000.0


def events_between(
    members: Sequence[Member], after_s: float, until_s: float
) -> list[tuple[Member, Event]]:
    """Events with `after_s < t_s <= until_s`, in time order (pure)."""
    due = [
        (member, event)
        for member in members
        for event in member.device.trajectory.events
        if after_s < event.t_s <= until_s
    ]
    return sorted(due, key=lambda pair: (pair[1].t_s, pair[0].device.asset))


@dataclass(frozen=True, slots=True)
class PlantStatus:
    """A snapshot for the progress line."""

    t_s: float
    devices: int
    listening: int
    failures: int
    failed_assets: tuple[str, ...]
    replacements: int
    requests: int


class Plant:
    """A fleet of simulated devices served over real Modbus.

    Args:
        members: The fleet (`cloud.sim.build_fleet`).
        clock: Wall to simulated time.
        out_dir: Where the outputs go (created).
        now_ms: The wall clock in epoch ms (injectable: tests freeze it).
        mqtt: The broker the edge configs publish to (None: the agents print to stdout).
        poll_interval_s: The edge agents' poll interval.
        baudrate: Of the RTU device.
    """

    def __init__(
        self,
        members: Sequence[Member],
        *,
        clock: SimClock,
        out_dir: Path,
        now_ms: Callable[[], float] = wall_ms,
        mqtt: MqttTarget | None = None,
        poll_interval_s: float = 1.0,
        baudrate: int = 38400,
    ) -> None:
        self.members = list(members)
        self.clock = clock
        self.out_dir = out_dir
        self.now_ms = now_ms
        self.mqtt = mqtt
        self.poll_interval_s = poll_interval_s
        self.baudrate = baudrate
        self.servers: dict[str, DeviceServer] = {}
        self.endpoints: dict[str, Endpoint] = {}
        self.edge_config_paths: list[Path] = []
        self._socat: subprocess.Popen[bytes] | None = None
        # Every event of the run, computed once: `step` only walks forward through it.
        self._timeline = events_between(self.members, -math.inf, math.inf)
        self._next_event = 0
        self._failures: list[str] = []
        self._replacements = 0

    def now_s(self) -> float:
        """The current simulated time, seconds."""
        return self.clock.sim_s(self.now_ms())

    @property
    def ground_truth_path(self) -> Path:
        """The ground-truth JSONL file."""
        return self.out_dir / "ground_truth.jsonl"

    async def start(self) -> None:
        """Start every device's server and write the outputs.

        Raises:
            RuntimeError: socat is missing or did not create the pty pair (serial device only).
        """
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.ground_truth_path.write_text("")
        serial_agent_side: str | None = None
        for member in self.members:
            device = member.device
            if member.transport == "rtu":
                sim_side, serial_agent_side = self._start_socat()
                server = DeviceServer(
                    device,
                    now_s=self.now_s,
                    transport="rtu",
                    serial_port=sim_side,
                    baudrate=self.baudrate,
                )
                await server.start()
                self.endpoints[device.name] = Endpoint(
                    "rtu", serial_port=serial_agent_side, baudrate=self.baudrate, unit=device.unit
                )
            else:
                server = DeviceServer(device, now_s=self.now_s)
                await server.start()
                self.endpoints[device.name] = Endpoint("tcp", port=server.port, unit=device.unit)
            self.servers[device.name] = server
        log.info("plant_started", devices=len(self.servers), out_dir=str(self.out_dir))
        self._write_outputs()
        await self.step()

    def _start_socat(self) -> tuple[str, str]:
        if self._socat is not None:
            raise RuntimeError("only one serial device is supported")
        socat = shutil.which("socat")
        if socat is None:
            raise RuntimeError("socat is not installed (Debian package socat): needed for the pty")
        sim_side, agent_side = self.out_dir / "pty-sim", self.out_dir / "pty-agent"
        for stale in (sim_side, agent_side):
            stale.unlink(missing_ok=True)
        with (self.out_dir / "socat.log").open("wb") as socat_log:
            self._socat = subprocess.Popen(
                [
                    socat,
                    "-d",
                    "-d",
                    f"pty,raw,echo=0,link={sim_side}",
                    f"pty,raw,echo=0,link={agent_side}",
                ],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=socat_log,
            )
        deadline = time.monotonic() + 10
        while not (sim_side.exists() and agent_side.exists()):
            if self._socat.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    f"socat did not create the ptys: see {self.out_dir / 'socat.log'}"
                )
            time.sleep(0.01)
        return str(sim_side), str(agent_side)

    def _write_outputs(self) -> None:
        configs = edge_configs(
            self.members,
            self.endpoints,
            profiles_dir=str(PROFILES_DIR),
            state_root=str((self.out_dir / "edge-state").resolve()),
            poll_interval_s=self.poll_interval_s,
            mqtt=self.mqtt,
        )
        self.edge_config_paths = []
        for gateway, config in configs.items():
            path = self.out_dir / f"edge-{gateway}.yaml"
            path.write_text(yaml.safe_dump(config, sort_keys=False))
            load_config(path)  # the agent's own loader: a config it refuses is a simulator bug
            self.edge_config_paths.append(path)
        firmware = {
            m.device.profile_id: (m.device.image.profile.model, m.device.image.firmware)
            for m in self.members
        }
        assets = {"assets": asset_records(self.members, firmware=firmware)}
        assets_path = self.out_dir / "assets.yaml"
        assets_path.write_text(yaml.safe_dump(assets, sort_keys=False))
        load_registry(assets_path, profiles_dir=PROFILES_DIR)  # the registry's own loader, too
        (self.out_dir / "manifest.json").write_text(
            json.dumps(manifest(self.members, self.endpoints, self.clock), indent=2) + "\n"
        )
        self.write_counts()

    async def step(self) -> list[dict[str, object]]:
        """One supervision pass at the current simulated time.

        Returns:
            The ground-truth records of the events that became due (also appended to the file).
        """
        t_s = self.now_s()
        for member in self.members:
            server = self.servers[member.device.name]
            online = member.device.online_at(t_s)
            if online and not server.listening:
                await server.go_online()
            elif not online and server.listening:
                await server.go_offline()
        records = []
        while self._next_event < len(self._timeline):
            member, event = self._timeline[self._next_event]
            if event.t_s > t_s:
                break
            self._next_event += 1
            record = event_record(member, event, self.clock)
            records.append(record)
            if event.kind == "failure":
                self._failures.append(member.device.asset)
                log.info(
                    "device_failed", asset=member.device.asset, mode=event.name, t_sim_s=event.t_s
                )
            else:
                self._replacements += 1
                log.info("consumable_replaced", asset=member.device.asset, consumable=event.name)
        if records:
            with self.ground_truth_path.open("a") as fh:
                fh.writelines(json.dumps(r) + "\n" for r in records)
        return records

    def status(self) -> PlantStatus:
        """What the plant looks like now."""
        return PlantStatus(
            t_s=self.now_s(),
            devices=len(self.servers),
            listening=sum(s.listening for s in self.servers.values()),
            failures=len(self._failures),
            failed_assets=tuple(self._failures),
            replacements=self._replacements,
            requests=sum(s.counts.requests for s in self.servers.values()),
        )

    def counts(self) -> dict[str, object]:
        """Per device, requests, exceptions and values served until now (a copy)."""
        return {
            "t_sim_s": max(self.now_s(), 0.0),
            "wall_ms": round(self.now_ms()),
            "devices": {name: s.counts.as_json() for name, s in self.servers.items()},
        }

    def write_counts(self, data: dict[str, object] | None = None) -> None:
        """Rewrite ``served.json`` with `data` (default: the `counts` now)."""
        data = self.counts() if data is None else data
        tmp = self.out_dir / "served.json.tmp"
        tmp.write_text(json.dumps(data, indent=1) + "\n")
        tmp.replace(self.out_dir / "served.json")

    async def stop(self) -> None:
        """Stop every server and socat; write the final counts.

        The final counts are taken before the first server stops: an answer counted while the
        servers shut down may never reach its agent (its connection closes under it), and a
        value the agent never read would be counted lost. What is answered after the snapshot
        and still stored is reported as stored-not-served, never as lost.
        """
        final = self.counts()
        for server in self.servers.values():
            await server.stop()
        if self._socat is not None:
            self._socat.terminate()
            try:
                self._socat.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._socat.kill()
                self._socat.wait()
            self._socat = None
        self.write_counts(final)
        log.info("plant_stopped", failures=len(self._failures))


async def run_plant(
    plant: Plant,
    *,
    duration_s: float | None,
    stop: asyncio.Event,
    on_progress: Callable[[PlantStatus], None] | None = None,
    tick_s: float = 0.1,
    progress_every_s: float = 1.0,
    counts_every_s: float = 5.0,
) -> PlantStatus:
    """Run a started plant until `stop` is set or `duration_s` (wall) has passed; then stop it."""
    loop = asyncio.get_running_loop()
    began = loop.time()
    next_progress = next_counts = began
    try:
        while not stop.is_set():
            now = loop.time()
            if duration_s is not None and now - began >= duration_s:
                break
            await plant.step()
            if on_progress is not None and now >= next_progress:
                on_progress(plant.status())
                next_progress = now + progress_every_s
            if now >= next_counts:
                plant.write_counts()
                next_counts = now + counts_every_s
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=tick_s)
    finally:
        status = plant.status()
        await plant.stop()
    return status
