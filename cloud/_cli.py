"""`prognos`: the cloud's and the tools' command line, one subcommand per job."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable

from edge_agent import __version__

# name -> (module with a `main(argv) -> int`, one-line help). Modules load only when their command
# runs, so `prognos --help` stays fast and light.
COMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("cloud._demo", "the foundation flow: C-MAPSS engines -> MQTT -> InfluxDB, counted"),
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
        command: Callable[[list[str]], int] = importlib.import_module(COMMANDS[args[0]][0]).main
        return command(args[1:])
    parser = build_parser()
    parser.parse_args(args)
    parser.print_help(sys.stderr)
    return 2
