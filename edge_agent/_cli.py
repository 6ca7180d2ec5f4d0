"""`prognos-edge`: the gateway's command line."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import prognos_contract
from edge_agent._version import __version__


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


def build_parser() -> argparse.ArgumentParser:
    """The argument parser, separate so that tests and docs can inspect it."""
    parser = argparse.ArgumentParser(
        prog="prognos-edge",
        description="Prognos edge agent: poll devices, decode with profiles, publish over MQTT.",
    )
    parser.add_argument("--version", action="version", version=f"prognos-edge {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    validate = sub.add_parser(
        "validate",
        help="check telemetry payload files against the MQTT contract v1",
        description="Decode payload files (JSON or gzip) exactly as the cloud ingester does.",
    )
    validate.add_argument("files", nargs="+", metavar="FILE")
    validate.add_argument("--content-type", default=None, help="e.g. application/json+gzip")
    validate.set_defaults(func=_validate)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "func"):
        parser.print_help(sys.stderr)
        return 2
    result: int = args.func(args)
    return result
