"""The web page's login, session cookie, CSRF guard and redirects (`cloud.web`), in-process.

The browser tests (tests/integration/test_web.py) drive the page in Chromium; these check the
security rules one by one, with a fixed clock and InfluxDB answered by `httpx.MockTransport`.
"""

from __future__ import annotations

import datetime as dt
import stat
import warnings
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from starlette.exceptions import StarletteDeprecationWarning

from cloud.api import ApiSettings, Role, add_token, revoke_token
from cloud.api._auth import SessionSigner, load_session_key, session_key_path
from cloud.store import InfluxClient
from cloud.web import create_web_app

with warnings.catch_warnings():
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from fastapi.testclient import TestClient

T0 = dt.datetime(2026, 11, 23, 12, tzinfo=dt.UTC)
ASSETS = """
assets:
  - {asset_id: pump-07, site: plant1, customer: Northwater, tier: VIP, model: CPV-150,
     firmware: "2.4", profile: aquaflo_cpv150_2.x, serial: S1, asset_class: pump,
     team: north, criticality: critical, commissioned: 2021-05-17}
"""


def empty_influx(_request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, json={"results": [{"statement_id": 0}]})


class World:
    """The web app over a registry, a token file and an empty InfluxDB; the clock is settable."""

    def __init__(self, tmp: Path) -> None:
        (tmp / "assets.yaml").write_text(ASSETS)
        self.settings = ApiSettings(
            db=tmp / "decisions.db", assets=tmp / "assets.yaml", tokens=tmp / "tokens.json"
        )
        self.tokens = {
            role: add_token(self.settings.tokens, name=f"{role.value}-1", role=role, now=T0)
            for role in Role
        }
        self.now = T0
        self.influx = InfluxClient(
            url="http://influx.test:8086", transport=httpx.MockTransport(empty_influx)
        )
        self.app = create_web_app(self.settings, influx=self.influx, clock=lambda: self.now)

    def client(self, base_url: str = "http://testserver") -> TestClient:
        """A client that keeps cookies and does not follow redirects."""
        return TestClient(self.app, base_url=base_url, follow_redirects=False)


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    w = World(tmp_path)
    yield w
    w.influx.close()


def log_in(client: TestClient, token: str, next_path: str = "/") -> httpx.Response:
    answer: httpx.Response = client.post(
        "/login",
        content=f"token={token}&next={next_path}",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    return answer


def test_login_sets_a_strict_httponly_cookie_and_pages_need_it(world: World) -> None:
    """No session: pages redirect to /login; a good token: 303 to `next` with the cookie."""
    with world.client() as client:
        assert client.get("/alerts").headers["location"] == "/login?next=/alerts"
        assert client.get("/static/app.css").headers["location"] == "/login?next=/static/app.css"
        assert client.get("/nowhere").status_code == 303
        assert client.get("/healthz").status_code == 200
        bad = log_in(client, "prg_wrong")
        assert bad.status_code == 401
        assert "set-cookie" not in bad.headers
        answer = log_in(client, world.tokens[Role.PLANNER], "/alerts")
        assert (answer.status_code, answer.headers["location"]) == (303, "/alerts")
        cookie = answer.headers["set-cookie"]
        assert cookie.startswith("prognos_session=v1.")
        assert "HttpOnly" in cookie
        assert "SameSite=strict" in cookie
        assert "Secure" not in cookie  # plain http here
        page = client.get("/alerts")
        assert page.status_code == 200
        assert "default-src 'self'" in page.headers["content-security-policy"]
        assert 'data-can-act="true"' in page.text
        assert client.get("/static/app.css").status_code == 200
        assert client.get("/api/v1/me").json() == {"name": "planner-1", "role": "planner"}
        assert client.get("/static/../_app.py").status_code == 404


def test_the_cookie_is_secure_over_https_and_next_stays_on_this_site(world: World) -> None:
    with world.client("https://prognos.example") as client:
        answer = log_in(client, world.tokens[Role.VIEWER], "//evil.example/x")
        assert answer.headers["location"] == "/"
        assert "Secure" in answer.headers["set-cookie"]


def test_state_changes_with_the_cookie_need_the_header_and_this_origin(world: World) -> None:
    """CSRF: without X-Prognos-Request, or from another origin, 403 before any action."""
    with world.client() as client:
        log_in(client, world.tokens[Role.PLANNER])
        url = "/api/v1/alerts/pump-07/bearing_wear/1/acknowledge"
        bare = client.post(url, json={})
        assert (bare.status_code, bare.json()["error"]) == (403, "csrf")
        foreign = client.post(
            url, json={}, headers={"X-Prognos-Request": "1", "Origin": "https://evil.example"}
        )
        assert (foreign.status_code, foreign.json()["error"]) == (403, "csrf")
        ours = client.post(
            url, json={}, headers={"X-Prognos-Request": "1", "Origin": "http://testserver"}
        )
        assert (ours.status_code, ours.json()["error"]) == (404, "not_found")  # got through


def test_viewers_are_refused_actions_and_see_disabled_controls(world: World) -> None:
    with world.client() as client:
        log_in(client, world.tokens[Role.VIEWER])
        assert 'data-can-act="false"' in client.get("/alerts").text
        answer = client.post(
            "/api/v1/alerts/pump-07/bearing_wear/1/acknowledge",
            json={},
            headers={"X-Prognos-Request": "1"},
        )
        assert (answer.status_code, answer.json()["error"]) == (403, "forbidden")


def test_sessions_expire_and_end_with_their_token_and_logout(world: World) -> None:
    with world.client() as client:
        log_in(client, world.tokens[Role.PLANNER])
        assert client.get("/api/v1/me").status_code == 200
        world.now = T0 + dt.timedelta(hours=13)  # past the 12 h lifetime
        assert client.get("/api/v1/me").status_code == 401
        world.now = T0
        assert client.get("/api/v1/me").status_code == 200
        assert revoke_token(world.settings.tokens, name="planner-1")
        assert client.get("/api/v1/me").status_code == 401
        log_in(client, world.tokens[Role.ADMIN])
        assert client.get("/api/v1/me").json()["role"] == "admin"
        out = client.post("/logout")
        assert out.headers["location"] == "/login"
        assert client.get("/api/v1/me").status_code == 401


def test_session_cookies_are_signed_with_a_private_key(tmp_path: Path) -> None:
    """The key file is made once, 0600, and reused; a cookie signed with another key fails."""
    path = session_key_path(tmp_path / "tokens.json")
    key = load_session_key(path)
    assert load_session_key(path) == key
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    signer = SessionSigner(key)
    cookie = signer.issue("prg_x", now=T0)
    assert signer.open(cookie, now=T0) is not None
    assert SessionSigner(b"k" * 32).open(cookie, now=T0) is None
    assert signer.open(cookie.replace("v1.", "v2.", 1), now=T0) is None
    assert signer.open("garbage", now=T0) is None


def test_serve_takes_the_options_of_api_serve(capsys: pytest.CaptureFixture[str]) -> None:
    """`prognos serve --help` lists the same options as `prognos api serve --help`."""
    from cloud._cli import main  # noqa: PLC0415 - the command line under test

    options = {}
    for argv in (["serve", "--help"], ["api", "serve", "--help"]):
        with pytest.raises(SystemExit) as stop:
            main(argv)
        assert stop.value.code == 0
        text = capsys.readouterr().out
        options[argv[0]] = {w.strip("[],") for w in text.split() if w.startswith(("--", "[--"))}
    assert options["serve"] == options["api"]
    assert {"--db", "--assets", "--tokens", "--influx-url", "--port"} <= options["serve"]
