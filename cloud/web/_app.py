"""The planners' web page: login, fleet overview, alert feed, asset page, over the REST API.

`create_web_app` is `cloud.api.create_app` plus these routes, on one port:

- ``GET /login``, ``POST /login`` (form field ``token``), ``POST /logout``: a browser session
  (`cloud.api._auth.SessionSigner`; HttpOnly, SameSite=Strict, Secure over https).
- ``GET /`` (fleet overview), ``GET /alerts`` (alert feed), ``GET /assets/{asset_id}`` (asset
  page): server-rendered shells; small JavaScript modules under ``/static/`` fill them from the
  JSON API with the session cookie.
- ``/reports/...``: `cloud.reports.router`, behind the same login.
- ``GET /static/...``: the page's scripts, styles and the vendored chart library (uPlot).

Only ``GET /healthz`` and the login page answer without a session; every other page redirects
to the login page, every other API route answers 401.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Final
from urllib.parse import parse_qs, quote, urlsplit

import jinja2
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from fastapi.security import HTTPAuthorizationCredentials

from cloud.api import ApiSettings, Role, create_app
from cloud.api._app import (
    ApiError,
    Clock,
    Context,
    _bearer,
    authenticate,
    context,
    session_principal,
)
from cloud.api._auth import SESSION_COOKIE, Principal, digest
from cloud.store import InfluxClient

HERE: Final = Path(__file__).resolve().parent
STATIC: Final = HERE / "static"
MAX_LOGIN_BODY: Final = 4096
REPLACE_WITHIN_H: Final = 30 * 24.0
"""The replacement threshold drawn on the remaining-life chart: the work-order policy's default
planning horizon (`cloud.workorders` ``planning_horizon``, 30 days)."""
CSP: Final = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; "
    "form-action 'self'"
)

_templates = jinja2.Environment(
    loader=jinja2.FileSystemLoader(HERE / "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
)


class LoginRequired(Exception):  # noqa: N818 - a control-flow signal, not an error
    """A page was asked for without a valid session: answer with a redirect to the login page."""


def page_user(
    request: Request,
    ctx: Annotated[Context, Depends(context)],
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """The signed-in user of a page (a dependency); `LoginRequired` without one."""
    try:
        return authenticate(request, ctx, credentials)
    except ApiError:
        raise LoginRequired from None


PageUser = Annotated[Principal, Depends(page_user)]


PUBLIC: Final = frozenset({"/healthz", "/login", "/logout"})


def _signed_in(request: Request) -> bool:
    ctx: Context = request.app.state.prognos
    authorization = request.headers.get("authorization", "")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() == "bearer" and token:
        return ctx.verifier.verify(token.strip()) is not None
    return session_principal(request, ctx) is not None


def _local_path(request: Request) -> str:
    path = request.url.path
    root = _root(request)
    return path[len(root) :] or "/" if root and path.startswith(root) else path


def _to_login(request: Request) -> Response:
    wanted = _local_path(request)
    if request.url.query:
        wanted += "?" + request.url.query
    return RedirectResponse(
        f"{_root(request)}/login?next={quote(wanted, safe='/')}", status_code=303
    )


def _root(request: Request) -> str:
    return str(request.scope.get("root_path", "")).rstrip("/")


def _render(request: Request, name: str, status: int = 200, **values: object) -> HTMLResponse:
    html = _templates.get_template(name).render(root=_root(request), **values)
    return HTMLResponse(html, status_code=status, headers={"Cache-Control": "no-store"})


def _page(request: Request, user: Principal, name: str, title: str, **values: object) -> Response:
    return _render(
        request,
        name,
        200,
        user=user,
        can_act=user.role.allows(Role.PLANNER),
        title=title,
        **values,
    )


def _safe_next(value: str | None) -> str:
    """A local path to go to after login (never another site)."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/"
    return value


def _same_origin(request: Request) -> bool:
    origin = request.headers.get("origin")
    if origin is None:
        referer = request.headers.get("referer")
        return referer is None or urlsplit(referer).netloc == request.headers.get("host")
    return urlsplit(origin).netloc == request.headers.get("host")


pages = APIRouter(include_in_schema=False)


@pages.get("/login")
def login_form(request: Request, next: str | None = None) -> Response:  # noqa: A002 - the query name
    """The login form: paste an API token."""
    return _render(request, "login.html", next=_safe_next(next), error=None)


@pages.post("/login")
async def login(request: Request) -> Response:
    """Check the pasted token; on success set the session cookie and go on."""
    ctx: Context = request.app.state.prognos
    body = (await request.body())[:MAX_LOGIN_BODY].decode("utf-8", errors="replace")
    form = parse_qs(body, max_num_fields=4)
    token = (form.get("token") or [""])[0].strip()
    target = _safe_next((form.get("next") or ["/"])[0])
    if not _same_origin(request):
        return _render(request, "login.html", 403, next=target, error="cross-site login refused")
    principal = ctx.verifier.verify(token) if token else None
    if principal is None or ctx.sessions is None:
        return _render(request, "login.html", 401, next=target, error="unknown or revoked token")
    response = RedirectResponse(_root(request) + target, status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        ctx.sessions.issue(token, now=ctx.clock()),
        max_age=int(ctx.sessions.lifetime.total_seconds()),
        path="/",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    ctx.audit.record(
        at=ctx.clock(),
        user=principal.name,
        role=principal.role.value,
        action="session.login",
        target=digest(token)[:12],
        reason=None,
        outcome="ok",
        detail={},
    )
    return response


@pages.post("/logout")
def logout(request: Request) -> Response:
    """Forget the session cookie in this browser."""
    response = RedirectResponse(_root(request) + "/login", status_code=303)
    if _same_origin(request):
        response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")
    return response


@pages.get("/")
def overview(request: Request, user: PageUser) -> Response:
    """The fleet overview: sites, and every asset sortable and filterable (paged by the API)."""
    return _page(request, user, "overview.html", "Fleet")


@pages.get("/alerts")
def alerts(request: Request, user: PageUser) -> Response:
    """The alert feed, newest first, with the planner's actions."""
    return _page(request, user, "alerts.html", "Alerts")


@pages.get("/assets/{asset_id}")
def asset(request: Request, user: PageUser, asset_id: str) -> Response:
    """One asset: charts, forecast, consumables, work orders, drivers."""
    ctx: Context = request.app.state.prognos
    if ctx.assets().get(asset_id) is None:
        return _page(request, user, "missing.html", "No such asset", asset_id=asset_id)
    return _page(
        request,
        user,
        "asset.html",
        asset_id,
        asset_id=asset_id,
        replace_within_h=REPLACE_WITHIN_H,
    )


@pages.get("/static/{path:path}")
def static(_user: PageUser, path: str) -> Response:
    """The page's own files (signed-in users only)."""
    target = (STATIC / path).resolve()
    if not target.is_relative_to(STATIC) or not target.is_file():
        return Response("not found", status_code=404, media_type="text/plain")
    return FileResponse(target, headers={"Cache-Control": "private, max-age=300"})


def create_web_app(
    settings: ApiSettings,
    *,
    influx: InfluxClient | None = None,
    clock: Clock | None = None,
) -> FastAPI:
    """The REST API and the web page on one application (`prognos serve`).

    Args:
        settings: As for `cloud.api.create_app`.
        influx: An InfluxDB client to use instead of one made from `settings`.
        clock: The current time; default: the system's UTC clock.

    Returns:
        The application, for uvicorn.
    """
    from cloud.reports import router as reports  # noqa: PLC0415 - built by its own package

    app = create_app(settings, influx=influx, clock=clock)
    app.include_router(pages)
    app.include_router(reports, prefix="/reports", dependencies=[Depends(page_user)])

    @app.exception_handler(LoginRequired)
    async def _login_required(request: Request, _exc: LoginRequired) -> Response:
        return _to_login(request)

    @app.middleware("http")
    async def _guard(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        # Everything but the health check, the login page and the API (which answers 401
        # itself) needs a session: pages, static files, reports, and paths that do not exist.
        path = _local_path(request)
        if path not in PUBLIC and not path.startswith("/api/") and not _signed_in(request):
            return _to_login(request)
        return await call_next(request)

    @app.middleware("http")
    async def _headers(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        response = await call_next(request)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        if response.headers.get("content-type", "").startswith("text/html"):
            response.headers.setdefault("Content-Security-Policy", CSP)
            response.headers.setdefault("Referrer-Policy", "same-origin")
        return response

    return app
