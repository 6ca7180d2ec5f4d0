"""`prognos`: the cloud's and the tools' command line, one subcommand per job."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable

from edge_agent import __version__

# name -> (module with a `main(argv) -> int`, or "module:function", one-line help). Modules load
# only when their command runs, so `prognos --help` stays fast and light.
COMMANDS: dict[str, tuple[str, str]] = {
    "ingest": ("cloud.ingest._cli", "the ingester: MQTT telemetry -> InfluxDB, ack after write"),
    "demo": ("cloud._demo", "the foundation flow: C-MAPSS engines -> MQTT -> InfluxDB, counted"),
    "assets": ("cloud.registry._cli", "the asset registry: check a YAML or CSV asset file"),
    "db": ("cloud.store._cli", "InfluxDB: create database, retention policies, rollups; backfill"),
    "sim": (
        "cloud.sim._cli",
        "the simulated plant: devices over real Modbus from run-to-failure data",
    ),
    "train": ("models._cli:train_main", "train a model on raw data into the model registry"),
    "evaluate": (
        "models._cli:evaluate_main",
        "recompute a registered model's metrics from raw data",
    ),
    "models": ("models._cli:models_main", "the model registry: list, show, promote"),
    "workorders": ("cloud.workorders._cli", "work orders: deliver the outbox, list, show, retry"),
    "score": ("cloud.scoring._cli", "the scorer: champion models on telemetry -> scores, alerts"),
    "api": ("cloud.api._cli", "the REST API for planners: serve, tokens, OpenAPI document"),
    "serve": ("cloud.web._cli", "the planners' web page and the REST API on one port"),
    "plant": (
        "cloud._plant",
        "the main job: simulator -> edge -> ingest -> score -> work orders, with its report",
    ),
    "report": (
        "cloud.reports._cli",
        "reports as HTML or PDF: service quality, availability, quarterly equipment health",
    ),
}


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser; each subcommand parses its own arguments."""
    parser = argparse.ArgumentParser(
        prog="prognos",
        description="Prognos cloud and tools: ingest, score, alert, work orders.",
        epilog="Run 'prognos COMMAND --help' for a command's options.",
    )
    parser.add_argument("--version", action="version", version=f"prognos {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (_module, help_text) in COMMANDS.items():
        sub.add_parser(name, help=help_text, add_help=False)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the process exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] in COMMANDS:
        module, _, func = COMMANDS[args[0]][0].partition(":")
        command: Callable[[list[str]], int] = getattr(
            importlib.import_module(module), func or "main"
        )
        return command(args[1:])
    parser = build_parser()
    parser.parse_args(args)
    parser.print_help(sys.stderr)
    return 2
