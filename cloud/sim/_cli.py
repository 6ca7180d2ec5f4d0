"""`prognos sim plant`: the simulated plant, served over real Modbus until stopped.

Starts every device of the fleet config as a real Modbus server (TCP on loopback, one as Modbus
RTU on a socat pty pair), writes the edge-agent configs, the asset registry, the manifest and the
ground truth into `--out`, shows progress, and stops cleanly on Ctrl-C, SIGTERM or after
`--duration` seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import os
import signal
import sys
from pathlib import Path

from cloud.sim._clock import SimClock
from cloud.sim._fleet import (
    FleetConfig,
    FleetConfigError,
    build_fleet,
    default_fleet,
    load_fleet,
)
from cloud.sim._outputs import MqttTarget
from cloud.sim._plant import Plant, PlantStatus, run_plant, wall_ms


def build_parser() -> argparse.ArgumentParser:
    """Arguments of `prognos sim`."""
    parser = argparse.ArgumentParser(prog="prognos sim", description="The simulated plant.")
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    plant = sub.add_parser(
        "plant",
        help="serve the fleet over Modbus and write the pipeline's inputs",
        description=(__doc__ or "").split("\n\n")[1].replace("\n", " "),
    )
    plant.add_argument("--fleet", type=Path, help="fleet config YAML (default: built-in fleet)")
    plant.add_argument(
        "--speed",
        type=float,
        help="simulated seconds per wall second (3600 with 1 h cycles: one cycle a second)",
    )
    plant.add_argument(
        "--duration", type=float, default=None, help="stop after this many wall seconds"
    )
    plant.add_argument(
        "--out", type=Path, default=Path("sim-out"), help="output folder (default %(default)s)"
    )
    plant.add_argument("--seed", type=int, help="override the fleet config's seed")
    plant.add_argument(
        "--mqtt-host",
        default=os.environ.get("PROGNOS_MQTT_HOST"),
        help="broker for the edge configs (default $PROGNOS_MQTT_HOST; none: agents print)",
    )
    plant.add_argument(
        "--mqtt-port", type=int, default=int(os.environ.get("PROGNOS_MQTT_PORT", "1883"))
    )
    return parser


def format_status(status: PlantStatus) -> str:
    """One progress line."""
    hours = max(status.t_s, 0.0) / 3600
    failed = ", ".join(status.failed_assets[-3:])
    more = "..." if len(status.failed_assets) > 3 else ""  # noqa: PLR2004 - shown names
    return (
        f"sim +{hours:7.1f} h | devices {status.listening}/{status.devices} listening | "
        f"requests {status.requests} | failures {status.failures}"
        + (f" ({more}{failed})" if failed else "")
        + f" | replacements {status.replacements}"
    )


async def _run(args: argparse.Namespace, config: FleetConfig) -> int:
    speed = args.speed if args.speed is not None else config.speed
    members = build_fleet(config, start=dt.datetime.now(tz=dt.UTC).date())
    # The clock starts once the data sets are loaded, so the first cycles are not skipped.
    clock = SimClock(wall_start_ms=round(wall_ms()), speed=speed)
    mqtt = None if not args.mqtt_host else MqttTarget(args.mqtt_host, args.mqtt_port)
    plant = Plant(
        members,
        clock=clock,
        out_dir=args.out,
        mqtt=mqtt,
        poll_interval_s=config.poll_interval_s,
        baudrate=config.serial.baudrate,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await plant.start()
    except (RuntimeError, OSError) as exc:
        await plant.stop()
        print(f"prognos sim: cannot start the plant: {exc}", file=sys.stderr)
        return 1
    print(f"prognos sim: {len(members)} devices, speed x{speed:g}, outputs in {args.out}")
    for path in plant.edge_config_paths:
        print(f"  edge config: {path}")
    tty = sys.stdout.isatty()

    def progress(status: PlantStatus) -> None:
        line = format_status(status)
        print(f"\r{line}" if tty else line, end="" if tty else "\n", flush=True)

    status = await run_plant(plant, duration_s=args.duration, stop=stop, on_progress=progress)
    print(("\n" if tty else "") + "stopped: " + format_status(status))
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run `prognos sim`; returns the exit code (1: the plant could not start; 2: invalid usage)."""
    args = build_parser().parse_args(argv)
    if args.speed is not None and args.speed <= 0:
        print(
            f"prognos sim: --speed must be greater than 0. Got {args.speed} instead.",
            file=sys.stderr,
        )
        return 2
    try:
        config = load_fleet(args.fleet) if args.fleet else default_fleet()
        if args.seed is not None:
            config = config.model_copy(update={"seed": args.seed})
        with contextlib.suppress(KeyboardInterrupt):
            return asyncio.run(_run(args, config))
    except FleetConfigError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    return 0
