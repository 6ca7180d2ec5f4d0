"""What the simulator hands to the rest of the pipeline, as pure functions returning data.

- `edge_configs`: one edge-agent config per gateway (one gateway per site), pointing at the
  simulated devices; `write_outputs` checks each with the agent's own loader.
- `asset_records`: the fleet's asset registry (`cloud.registry` format, ``assets:`` list).
- `event_record`: one ground-truth JSONL line (failure or consumable replacement).
- `manifest`: the clock, every device's endpoint, and the planned failures.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from cloud.sim._clock import SimClock
from cloud.sim._fleet import Member
from cloud.sim._trajectory import Event


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where the edge agent reaches one device."""

    transport: str
    host: str = "127.0.0.1"
    port: int = 0
    serial_port: str | None = None
    baudrate: int = 38400
    unit: int = 1


@dataclass(frozen=True, slots=True)
class MqttTarget:
    """The broker the generated edge configs publish to (None: the agent prints to stdout)."""

    host: str
    port: int


def gateway_of(site: str) -> str:
    """The gateway id that reads a site's simulated devices."""
    return f"gw-{site}"[:64]


def edge_configs(
    members: Sequence[Member],
    endpoints: Mapping[str, Endpoint],
    *,
    profiles_dir: str,
    state_root: str,
    poll_interval_s: float,
    mqtt: MqttTarget | None = None,
) -> dict[str, dict[str, object]]:
    """Edge-agent configs by gateway id, as plain data (YAML-ready).

    Every device is polled every `poll_interval_s` with deadbands off (every poll is published,
    so readings can be counted end to end), retried fast when it goes offline, and its readings
    carry its asset id.
    """
    configs: dict[str, dict[str, object]] = {}
    for member in members:
        gateway = gateway_of(member.site)
        device = member.device
        endpoint = endpoints[device.name]
        config = configs.setdefault(
            gateway,
            {
                "site": member.site,
                "gateway": gateway,
                "profiles_dir": profiles_dir,
                "state_dir": f"{state_root}/{gateway}",
                "batch": {"max_readings": 500, "linger_s": 0.5},
                "outbox": {"sync": "normal"},
                "health": {"interval_s": 10, "metrics_listen": "off"},
                "devices": [],
            },
        )
        if endpoint.transport == "rtu":
            buses: dict[str, object] = config.setdefault("buses", {})  # type: ignore[assignment]
            buses["sim-rs485"] = {
                "port": endpoint.serial_port,
                "baudrate": endpoint.baudrate,
                "timeout_s": 0.5,
            }
            transport: dict[str, object] = {
                "type": "rtu",
                "bus": "sim-rs485",
                "unit": endpoint.unit,
            }
        else:
            transport = {
                "type": "tcp",
                "host": endpoint.host,
                "port": endpoint.port,
                "unit": endpoint.unit,
                "timeout_s": 1.0,
            }
        devices: list[object] = config["devices"]  # type: ignore[assignment]
        devices.append(
            {
                "name": device.name,
                "asset": device.asset,
                "profile": device.profile_id,
                "transport": transport,
                "interval_s": poll_interval_s,
                "startup_error_behavior": "retry",
                "backoff": {"initial_s": poll_interval_s, "max_s": max(2.0, 2 * poll_interval_s)},
                "preprocess": {"deadband": "off"},
            }
        )
    if mqtt is not None:
        for gateway, config in configs.items():
            config["mqtt"] = {
                "host": mqtt.host,
                "port": mqtt.port,
                "client_id": gateway,
                "protocol": "auto",
                "replay_rate_msgs_s": None,
                "replay_rate_bytes_s": None,
                "reconnect_backoff_max_s": 5,
            }
    return configs


def asset_records(
    members: Sequence[Member], *, firmware: Mapping[str, tuple[str, str]]
) -> list[dict[str, object]]:
    """Asset records (`cloud.registry` YAML fields) for the fleet.

    Args:
        members: The fleet.
        firmware: Profile id to (model, firmware version reported by the device).
    """
    records: list[dict[str, object]] = []
    for member in members:
        device = member.device
        rng = random.Random(f"{device.seed}|record|{device.asset}")  # noqa: S311 - simulation
        model, version = firmware[device.profile_id]
        warranty_end = member.commissioned + dt.timedelta(
            days=round(365 * member.group.warranty_years)
        )
        record: dict[str, object] = {
            "asset_id": device.asset,
            "site": member.site,
            "customer": member.group.customer,
            "tier": member.group.tier,
            "model": model,
            "firmware": version,
            "profile": device.profile_id,
            "serial": f"SIM-{device.asset.upper()}-{rng.randint(10000, 99999)}",
            "asset_class": member.asset_class,
            "team": member.group.team,
            "criticality": member.group.criticality,
            "commissioned": member.commissioned,
            "location": {
                "lat": round(52.37 + rng.uniform(-0.01, 0.01), 5),
                "lon": round(4.90 + rng.uniform(-0.01, 0.01), 5),
            },
            "gateway": gateway_of(member.site),
        }
        if member.group.warranty_years > 0:
            record["warranty_end"] = warranty_end
        records.append(record)
    return records


def event_record(member: Member, event: Event, clock: SimClock) -> dict[str, object]:
    """One ground-truth line: what happened to which asset, in simulated and wall-clock time."""
    device = member.device
    record: dict[str, object] = {
        "event": event.kind,
        "asset": device.asset,
        "site": member.site,
        "profile": device.profile_id,
        "t_sim_s": event.t_s,
        "sim_ms": clock.sim_epoch_ms_at(event.t_s),
        "wall_ms": clock.wall_ms(event.t_s),
    }
    if event.kind == "failure":
        record["failure_mode"] = event.name
        record["fault_code"] = event.fault_code
    else:
        record["consumable"] = event.name
    record["detail"] = dict(event.detail)
    return record


def manifest(
    members: Sequence[Member], endpoints: Mapping[str, Endpoint], clock: SimClock
) -> dict[str, object]:
    """The run's clock, devices and planned failures (for tools that join the outputs)."""
    devices = []
    for member in members:
        device = member.device
        endpoint = endpoints[device.name]
        failure = device.failure
        devices.append(
            {
                "name": device.name,
                "asset": device.asset,
                "site": member.site,
                "gateway": gateway_of(member.site),
                "profile": device.profile_id,
                "transport": endpoint.transport,
                "host": endpoint.host,
                "port": endpoint.port,
                "serial_port": endpoint.serial_port,
                "unit": endpoint.unit,
                "sample_s": device.trajectory.sample_s,
                "planned_failure": None
                if failure is None
                else event_record(member, failure, clock),
                "offline_windows_s": [[w.start_s, w.end_s] for w in device.faults.offline],
            }
        )
    return {
        "clock": {
            "wall_start_ms": clock.wall_start_ms,
            "speed": clock.speed,
            "sim_epoch_ms": clock.epoch_ms,
        },
        "devices": devices,
    }
