"""`prognos api`: serve the REST API (uvicorn), manage its tokens, print its OpenAPI document."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import SecretStr, ValidationError

from cloud._logging import configure_logging
from cloud.api._auth import Role, TokenFileError, add_token, read_tokens, revoke_token
from cloud.api._settings import ApiSettings

TOKENS_ENV = "PROGNOS_API_TOKENS"


def _tokens_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--tokens",
        type=Path,
        default=os.environ.get(TOKENS_ENV),
        required=TOKENS_ENV not in os.environ,
        help=f"the token file, JSON or YAML (default: ${TOKENS_ENV})",
    )


def add_serve_arguments(serve: argparse.ArgumentParser) -> None:
    """The server's options, shared by `prognos api serve` and `prognos serve` (the web page)."""
    serve.add_argument("--db", type=Path, required=True, help="the work-order/alert SQLite file")
    serve.add_argument("--assets", type=Path, required=True, help="the asset registry file")
    serve.add_argument("--profiles", type=Path, help="the firmware profiles folder")
    _tokens_arg(serve)
    serve.add_argument("--audit", type=Path, help="the audit log (default: DB + .audit.jsonl)")
    serve.add_argument(
        "--influx-url",
        default=os.environ.get("PROGNOS_INFLUX_URL", "http://127.0.0.1:8086"),
        help="InfluxDB v1 API base URL (default: $PROGNOS_INFLUX_URL)",
    )
    serve.add_argument("--influx-db", default="prognos", help="the InfluxDB database")
    serve.add_argument(
        "--influx-user",
        default=os.environ.get("PROGNOS_INFLUX_USER"),
        help="InfluxDB user (default: $PROGNOS_INFLUX_USER; password: $PROGNOS_INFLUX_PASSWORD;"
        " a token instead: $PROGNOS_INFLUX_TOKEN)",
    )
    serve.add_argument("--host", default="127.0.0.1", help="listen address")
    serve.add_argument("--port", type=int, default=8080, help="listen port")
    serve.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    serve.add_argument("--root-path", default="", help="the path prefix behind a proxy")
    serve.add_argument("--log-level", default="info", help="debug, info, warning, error")
    serve.add_argument("--log-format", choices=["console", "json"], default="console")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="prognos api", description="The REST API for planners (docs/api.md)."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = sub.add_parser("serve", help="serve the API with uvicorn")
    add_serve_arguments(serve)

    token = sub.add_parser("token", help="add, list or revoke API tokens")
    tsub = token.add_subparsers(dest="action", required=True, metavar="ACTION")
    add = tsub.add_parser("add", help="make a token; it is printed once, only its hash is kept")
    _tokens_arg(add)
    add.add_argument("--name", required=True, help="who holds it (unique)")
    add.add_argument("--role", required=True, choices=[r.value for r in Role])
    listing = tsub.add_parser("list", help="names, roles and creation times")
    _tokens_arg(listing)
    listing.add_argument("--json", action="store_true", help="machine-readable")
    revoke = tsub.add_parser("revoke", help="remove a name's token")
    _tokens_arg(revoke)
    revoke.add_argument("--name", required=True)

    sub.add_parser("openapi", help="print the OpenAPI document (docs/openapi.json)")
    return parser


def _settings(args: argparse.Namespace) -> ApiSettings:
    password = os.environ.get("PROGNOS_INFLUX_PASSWORD")
    token = os.environ.get("PROGNOS_INFLUX_TOKEN")
    return ApiSettings(
        db=args.db,
        assets=args.assets,
        profiles=args.profiles,
        tokens=args.tokens,
        audit=args.audit,
        influx_url=args.influx_url,
        influx_db=args.influx_db,
        influx_user=args.influx_user,
        influx_password=SecretStr(password) if password else None,
        influx_token=SecretStr(token) if token else None,
    )


def serve(
    args: argparse.Namespace,
    make_app: Callable[[ApiSettings], Any],
    *,
    prog: str = "prognos api",
) -> int:
    """Serve the application `make_app` builds from the parsed `add_serve_arguments` options.

    Returns:
        The exit code: 2 for invalid settings or token file (the message names it).
    """
    import uvicorn  # noqa: PLC0415 - only the server needs it

    configure_logging(args.log_format, args.log_level)
    try:
        settings = _settings(args)
        read_tokens(settings.tokens)
    except (ValidationError, TokenFileError) as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 2
    app = make_app(settings)
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        workers=None if args.workers == 1 else args.workers,
        root_path=args.root_path,
        log_level=args.log_level,
        proxy_headers=True,
    )
    return 0


def _serve(args: argparse.Namespace) -> int:
    from cloud.api._app import create_app  # noqa: PLC0415 - keeps `token` light

    return serve(args, create_app)


def _token(args: argparse.Namespace) -> int:
    path: Path = args.tokens
    try:
        if args.action == "add":
            token = add_token(
                path, name=args.name, role=Role(args.role), now=dt.datetime.now(dt.UTC)
            )
            print(token)
            print(
                f"prognos api: token for {args.name!r} ({args.role}) added to {path}; "
                "it is shown only now",
                file=sys.stderr,
            )
            return 0
        if args.action == "revoke":
            if not revoke_token(path, name=args.name):
                print(f"prognos api: {args.name!r} has no token in {path}", file=sys.stderr)
                return 1
            print(f"prognos api: token of {args.name!r} revoked", file=sys.stderr)
            return 0
        tokens = read_tokens(path).tokens
    except (TokenFileError, ValidationError) as exc:
        print(f"prognos api: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps([t.model_dump(mode="json", exclude={"sha256"}) for t in tokens]))
    else:
        for t in tokens:
            print(f"{t.name}\t{t.role.value}\t{t.created_at.isoformat()}")
    return 0


def main(argv: list[str]) -> int:
    """Run `prognos api`; returns the exit code."""
    args = _parser().parse_args(argv)
    if args.command == "serve":
        return _serve(args)
    if args.command == "token":
        return _token(args)
    from cloud.api._app import openapi_document  # noqa: PLC0415 - FastAPI only when asked

    sys.stdout.write(openapi_document())
    return 0
