"""`prognos serve`: the REST API and the planners' web page on one port (uvicorn).

The same options as ``prognos api serve`` (`cloud.api._cli.add_serve_arguments`).
"""

from __future__ import annotations

import argparse

from cloud.api._cli import add_serve_arguments, serve


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="prognos serve",
        description="The planners' web page and the REST API on one port (docs/web.md).",
    )
    add_serve_arguments(parser)
    return parser


def main(argv: list[str]) -> int:
    """Run `prognos serve`; returns the exit code."""
    args = _parser().parse_args(argv)
    from cloud.web._app import create_web_app  # noqa: PLC0415 - FastAPI only when serving

    return serve(args, create_web_app, prog="prognos serve")
