"""The FastAPI application: `create_app(settings)`, authentication, errors, the shared context.

Nothing happens at import or in `create_app`: the token file, the asset registry, the store file
and the InfluxDB client are opened when the application starts (its lifespan).

Every route but ``GET /healthz`` needs a Bearer token (`cloud.api._auth`) or the web page's
session cookie (``prognos_session``, set by ``POST /login`` of `cloud.web`); even the OpenAPI
document is served only to a token holder (``GET /api/v1/openapi.json``; the committed copy is
docs/openapi.json). 401 means no or an unknown token, 403 a role too low for the route, or a
cookie-authenticated request that changes state without the ``X-Prognos-Request`` header or from
another origin (CSRF).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from cloud.api._audit import AuditLog
from cloud.api._auth import (
    CSRF_HEADER,
    SESSION_COOKIE,
    Principal,
    Role,
    SessionSigner,
    TokenFileError,
    TokenVerifier,
    load_session_key,
    read_tokens,
    session_key_path,
)
from cloud.api._decisions import connect_ro
from cloud.api._latest import LatestScores
from cloud.api._models import Problem
from cloud.api._settings import ApiSettings
from cloud.registry import AssetRegistry, load_registry
from cloud.store import InfluxAuth, InfluxClient, InfluxError
from cloud.workorders import Store
from edge_agent import __version__

API_PREFIX = "/api/v1"

Clock = Callable[[], dt.datetime]


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class ApiError(Exception):
    """An error answer: status code and a `Problem` body."""

    def __init__(
        self,
        status: int,
        error: str,
        message: str,
        *,
        state: str | None = None,
        allowed: list[str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.problem = Problem(error=error, message=message, state=state, allowed=allowed)
        self.headers = headers


@dataclasses.dataclass(slots=True)
class Context:
    """What every request shares: settings, registry, InfluxDB, tokens, sessions, audit, clock."""

    settings: ApiSettings
    clock: Clock
    verifier: TokenVerifier
    audit: AuditLog
    latest: LatestScores
    registry: AssetRegistry | None = None
    influx: InfluxClient | None = None
    sessions: SessionSigner | None = None

    def assets(self) -> AssetRegistry:
        """The registry (loaded at start-up)."""
        if self.registry is None:  # pragma: no cover - the lifespan loads it
            raise RuntimeError("the application has not started")
        return self.registry

    def influx_client(self) -> InfluxClient:
        """The InfluxDB client (made at start-up)."""
        if self.influx is None:  # pragma: no cover - the lifespan makes it
            raise RuntimeError("the application has not started")
        return self.influx


def context(request: Request) -> Context:
    """The application's `Context` (a dependency)."""
    ctx: Context = request.app.state.prognos
    return ctx


Ctx = Annotated[Context, Depends(context)]

_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="bearer",
    description="A token from `prognos api token add`; roles viewer < planner < admin.",
)


_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def session_principal(request: Request, ctx: Context) -> Principal | None:
    """Who the request's session cookie belongs to; None without a valid, unexpired one."""
    cookie = request.cookies.get(SESSION_COOKIE)
    if not cookie or ctx.sessions is None:
        return None
    token_digest = ctx.sessions.open(cookie, now=ctx.clock())
    return None if token_digest is None else ctx.verifier.verify_digest(token_digest)


def _same_origin(request: Request) -> bool:
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return origin is None
    return urlsplit(origin).netloc == request.headers.get("host", request.url.netloc)


def authenticate(
    request: Request, ctx: Context, credentials: HTTPAuthorizationCredentials | None
) -> Principal:
    """The request's principal: from its Bearer token, else from its session cookie.

    A cookie-authenticated request that changes state must carry `CSRF_HEADER` and come from
    this origin (SameSite=Strict already keeps the cookie off other sites' requests).

    Raises:
        ApiError: 401 without valid credentials, 403 for a cross-site state change.
    """
    if credentials is not None and credentials.scheme.lower() == "bearer":
        principal = ctx.verifier.verify(credentials.credentials)
        if principal is None:
            raise ApiError(
                401,
                "unauthorized",
                "unknown or revoked token",
                headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
            )
        return principal
    principal = session_principal(request, ctx)
    if principal is None:
        raise ApiError(
            401,
            "unauthorized",
            "a Bearer token is required",
            headers={"WWW-Authenticate": "Bearer"},
        )
    if request.method not in _SAFE_METHODS and (
        CSRF_HEADER.lower() not in request.headers or not _same_origin(request)
    ):
        raise ApiError(
            403,
            "csrf",
            f"a state change with the session cookie needs the {CSRF_HEADER} header "
            "and this site's origin",
        )
    return principal


def require(role: Role) -> Callable[..., Principal]:
    """A dependency that lets through tokens of `role` or higher.

    Raises (in the dependency):
        ApiError: 401 without a valid Bearer token or session, 403 when the role is too low
            (or for a cross-site state change with the session cookie).
    """

    def check(
        request: Request,
        ctx: Ctx,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    ) -> Principal:
        principal = authenticate(request, ctx, credentials)
        if not principal.role.allows(role):
            raise ApiError(
                403,
                "forbidden",
                f"this needs the {role.value!r} role; "
                f"{principal.name!r} is {principal.role.value!r}",
            )
        return principal

    return check


Viewer = Annotated[Principal, Depends(require(Role.VIEWER))]
Planner = Annotated[Principal, Depends(require(Role.PLANNER))]
Admin = Annotated[Principal, Depends(require(Role.ADMIN))]


def read_db(ctx: Ctx) -> Iterator[sqlite3.Connection]:
    """A read-only connection to the store file for one request (a dependency)."""
    db = connect_ro(ctx.settings.db)
    try:
        yield db
    finally:
        db.close()


def write_store(ctx: Ctx) -> Iterator[Store]:
    """A `Store` for one request's writes (not thread-safe: one per request)."""
    store = Store(ctx.settings.db)
    try:
        yield store
    finally:
        store.close()


ReadDb = Annotated[sqlite3.Connection, Depends(read_db)]
WriteStore = Annotated[Store, Depends(write_store)]

ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": Problem, "description": "No token, or an unknown or revoked one"},
    403: {"model": Problem, "description": "The token's role is too low"},
}


def _influx(settings: ApiSettings) -> InfluxClient:
    auth: InfluxAuth | None = None
    if settings.influx_token is not None:
        auth = InfluxAuth.token(settings.influx_token.get_secret_value())
    elif settings.influx_user is not None:
        password = settings.influx_password.get_secret_value() if settings.influx_password else ""
        auth = InfluxAuth.basic(settings.influx_user, password)
    return InfluxClient(
        url=settings.influx_url,
        database=settings.influx_db,
        auth=auth,
        timeout_s=settings.influx_timeout_s,
    )


def create_app(
    settings: ApiSettings,
    *,
    influx: InfluxClient | None = None,
    clock: Clock | None = None,
    scores_cache_s: float = 30.0,
) -> FastAPI:
    """The REST API for planners (no I/O until the application starts).

    Args:
        settings: Where the data and the tokens are.
        influx: An InfluxDB client to use instead of one made from `settings` (tests pass one
            with an `httpx.MockTransport`); the caller closes it.
        clock: The current time (tests pass a fixed one); default: the system's UTC clock.
        scores_cache_s: How long a read of the fleet's latest scores (one InfluxDB query over
            every asset) stays fresh for the fleet routes; older reads are served while one
            re-read runs in the background (`cloud.api._latest`). 0 reads on every request.

    Returns:
        The application; serve it with uvicorn (`prognos api serve`).
    """
    ctx = Context(
        settings=settings,
        clock=clock or _utcnow,
        verifier=TokenVerifier(settings.tokens),
        audit=AuditLog(settings.audit_path),
        latest=LatestScores(scores_cache_s),
        influx=influx,
    )

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        read_tokens(settings.tokens)  # An invalid token file stops start-up with its message.
        ctx.sessions = SessionSigner(load_session_key(session_key_path(settings.tokens)))
        ctx.registry = load_registry(settings.assets, profiles_dir=settings.profiles)
        Store(settings.db).close()  # Creates the file and its tables when missing.
        owned = ctx.influx is None
        if owned:
            ctx.influx = _influx(settings)
        ctx.latest.prime(ctx.influx_client(), lambda: ctx.clock() - settings.scores_lookback)
        try:
            yield
        finally:
            ctx.latest.close(settings.influx_timeout_s + 1)
            if owned and ctx.influx is not None:
                ctx.influx.close()
                ctx.influx = None

    app = FastAPI(
        title="Prognos API",
        version=__version__,
        summary="Alerts, asset health, score history and work orders for planners.",
        description=(
            "Every route but `GET /healthz` needs `Authorization: Bearer <token>`. "
            "Roles: viewer (read), planner (also act on alerts and work orders), admin (also the "
            "audit log). Errors are `Problem` objects; an illegal transition is 409 naming the "
            "current state and the allowed events. See docs/api.md."
        ),
        lifespan=lifespan,
        # operationId = the route's name (list_alerts, approve_alert...): stable client names.
        generate_unique_id_function=lambda route: route.name,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.prognos = ctx

    @app.exception_handler(ApiError)
    async def _api_error(_request: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(
            exc.problem.model_dump(exclude_none=True), status_code=exc.status, headers=exc.headers
        )

    @app.exception_handler(InfluxError)
    async def _influx_error(_request: Request, exc: InfluxError) -> JSONResponse:
        body = Problem(error="influx_unavailable", message=f"InfluxDB: {exc}")
        return JSONResponse(body.model_dump(exclude_none=True), status_code=503)

    @app.exception_handler(TokenFileError)
    async def _token_file_error(_request: Request, exc: TokenFileError) -> JSONResponse:
        body = Problem(error="token_file_invalid", message=str(exc))
        return JSONResponse(body.model_dump(exclude_none=True), status_code=500)

    from cloud.api._fleet import router as fleet  # noqa: PLC0415 - routes need the names above
    from cloud.api._routes import register  # noqa: PLC0415 - routes need the names above

    register(app)
    app.include_router(fleet, prefix=API_PREFIX)
    return app


def openapi_document() -> str:
    """The OpenAPI document, as committed in docs/openapi.json (sorted keys, 2-space indent)."""
    placeholder = ApiSettings(db=Path("db"), assets=Path("assets"), tokens=Path("tokens"))
    return json.dumps(create_app(placeholder).openapi(), indent=2, sort_keys=True) + "\n"
