"""The REST API: auth and roles on every route, filters and paging, alert and work-order actions.

A real store file populated through `cloud.alerting` and `cloud.workorders`, a real registry
file, a real token file; InfluxDB is an `httpx.MockTransport` that answers like influxd 1.x
(tests/integration/test_api_influx.py runs the same queries against a real influxd).
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import urllib.parse
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.exceptions import StarletteDeprecationWarning

with warnings.catch_warnings():
    # Starlette 1.x asks for `httpx2` under its TestClient; httpx (0.28) is what we ship and it
    # works: the warning is about a future switch, not a defect.
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from fastapi.testclient import TestClient

from cloud.alerting import AlertEngine, AlertEvent, AlertPolicy
from cloud.api import ApiSettings, Role, add_token, create_app, openapi_document
from cloud.api._cli import main as api_main
from cloud.api._influx import auto_every, every_seconds
from cloud.registry import load_registry
from cloud.store import InfluxClient
from cloud.workorders import (
    Admission,
    ServicePolicy,
    Store,
    WoState,
    alert_window,
    build_from_prediction,
)

T0 = dt.datetime(2026, 11, 23, 12, tzinfo=dt.UTC)
ROOT = Path(__file__).resolve().parents[2]
ASSETS = """
assets:
  - {asset_id: pump-07, site: plant1, customer: Northwater, tier: VIP, model: CPV-150,
     firmware: "2.4", profile: aquaflo_cpv150_2.x, serial: S1, asset_class: pump,
     team: north, criticality: critical, commissioned: 2021-05-17}
  - {asset_id: pump-08, site: plant1, customer: Eastwater, tier: Gold, model: CPV-150,
     firmware: "2.4", profile: aquaflo_cpv150_2.x, serial: S2, asset_class: pump,
     team: north, criticality: high, commissioned: 2022-03-09}
  - {asset_id: comp-1, site: plant2, customer: Acme, tier: Regular, model: SC-75,
     firmware: "4.2.3", profile: airtek_sc75_4.2, serial: S3, asset_class: compressor,
     team: south, criticality: medium, commissioned: 2019-11-04}
"""

# The latest score per (asset, target, model), as influxd answers the fleet query.
LATEST: list[tuple[str, str, dict[str, float | None]]] = [
    ("pump-07", "bearing_wear", {"health": 20.0, "probability": 0.9, "rul": 30.0, "rul_lo": 12.0}),
    ("pump-07", "seal_wear", {"health": 70.0, "probability": 0.2, "rul": 400.0, "rul_lo": 300.0}),
    ("pump-08", "seal_wear", {"health": 55.0, "probability": 0.4, "rul": 90.0, "rul_lo": 60.0}),
    ("comp-1", "valve_leak", {"health": 90.0, "probability": None, "rul": None, "rul_lo": None}),
]
FIELDS = ["health", "probability", "horizon_h", "rul", "rul_lo", "rul_hi"]


def _series(name: str, tags: dict[str, str], columns: list[str], values: list[list[Any]]) -> Any:
    return {"name": name, "tags": tags, "columns": columns, "values": values}


def influx_answer(request: httpx.Request) -> httpx.Response:
    """A small influxd: the fleet query, a score history, field keys, a telemetry downsample."""
    q = request.url.params.get("q") or urllib.parse.parse_qs(request.content.decode())["q"][0]
    series: list[Any] = []
    ms = int(T0.timestamp() * 1000)
    if q.startswith("SHOW FIELD KEYS"):
        series = [
            _series(
                "telemetry",
                {},
                ["fieldKey", "fieldType"],
                [["bearing_temp_c", "float"], ["run_hours", "integer"], ["state", "string"]],
            )
        ]
    elif '"scores"' in q and "LIMIT 1" in q:
        bound: dict[str, str] = json.loads(request.url.params.get("params", "{}"))
        asset = bound.get("asset")
        series = [
            _series(
                "scores",
                {"asset": a, "target": t, "model_name": "m", "model_version": "1"},
                ["time", *FIELDS],
                [[ms - 60_000, *(f.get(c) for c in FIELDS)]],
            )
            for a, t, f in LATEST
            if asset in {None, a}
        ]
    elif '"scores"' in q:
        series = [
            _series(
                "scores",
                {
                    "asset": "pump-07",
                    "target": "bearing_wear",
                    "model_name": "m",
                    "model_version": "1",
                },
                ["time", *FIELDS],
                [
                    [ms - 7_200_000, 60.0, 0.5, 48.0, 60.0, 40.0, 80.0],
                    [ms - 3_600_000, 40.0, 0.7, 48.0, 45.0, 30.0, 60.0],
                ],
            )
        ]
    elif '"telemetry"' in q:
        series = [
            _series(
                "telemetry",
                {},
                ["time", "bearing_temp_c"],
                [[ms - 7_200_000, 70.5], [ms - 3_600_000, None]],
            )
        ]
    body = {"results": [{"statement_id": 0, **({"series": series} if series else {})}]}
    return httpx.Response(200, json=body)


class World:
    """The app and what it reads: store, tokens, audit (files copied from one built template)."""

    def __init__(self, tmp: Path, template: tuple[Path, dict[Role, str]]) -> None:
        folder, self.tokens = template
        for name in ("assets.yaml", "tokens.json", "decisions.db"):
            shutil.copyfile(folder / name, tmp / name)
        self.settings = settings_in(tmp)
        self.influx = InfluxClient(
            url="http://influx.test:8086", transport=httpx.MockTransport(influx_answer)
        )
        self.app = create_app(self.settings, influx=self.influx, clock=lambda: T0)

    def client(self, role: Role | None = None) -> TestClient:
        """A client with `role`'s token (none without)."""
        client = TestClient(self.app)
        if role is not None:
            client.headers["Authorization"] = f"Bearer {self.tokens[role]}"
        return client

    def store(self) -> Store:
        """The store file, opened for the caller to close."""
        return Store(self.settings.db)


def settings_in(folder: Path) -> ApiSettings:
    return ApiSettings(
        db=folder / "decisions.db", assets=folder / "assets.yaml", tokens=folder / "tokens.json"
    )


def populate(folder: Path) -> dict[Role, str]:
    """Registry, tokens and a store with three alerts (through the public APIs)."""
    (folder / "assets.yaml").write_text(ASSETS)
    settings = settings_in(folder)
    tokens = {
        role: add_token(settings.tokens, name=f"{role.value}-user", role=role, now=T0)
        for role in Role
    }
    registry = load_registry(settings.assets)
    engine = AlertEngine(policy=AlertPolicy(open_after=1))
    store = Store(settings.db)
    opened = [
        ("pump-07", "bearing_wear", 3, WoState.PROPOSED),
        ("comp-1", "valve_leak", 2, WoState.PENDING),
        ("pump-08", "seal_wear", 1, None),
    ]
    for asset_id, target, hours_ago, wo_state in opened:
        at = T0 - dt.timedelta(hours=hours_ago)
        (change,) = engine.observe(asset_id, target, at, 0.9, now=at)
        store.save_alert(change.alert)
        if wo_state is not None:
            asset = registry.get(asset_id)
            assert asset is not None
            wo = build_from_prediction(
                asset=asset,
                profile=None,
                failure_mode=target,
                window=alert_window(change.alert.alert_id),
                created_at=at,
                policy=ServicePolicy(),
                probability=0.9,
                horizon_h=48.0,
                alert_id=change.alert.alert_id,
            )
            store.add(wo, Admission(wo_state, "suggest"), now=at)
    store.save_alert(engine.act("pump-08/seal_wear/1", AlertEvent.ACKNOWLEDGE, now=T0).alert)
    store.close()
    return tokens


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[Role, str]]:
    folder = tmp_path_factory.mktemp("api-template")
    return folder, populate(folder)


@pytest.fixture
def world(tmp_path: Path, template: tuple[Path, dict[Role, str]]) -> Iterator[World]:
    w = World(tmp_path, template)
    yield w
    w.influx.close()


@pytest.fixture
def planner(world: World) -> Iterator[TestClient]:
    with world.client(Role.PLANNER) as client:
        yield client


A1 = "pump-07/bearing_wear/1"  # open, its work order proposed
A2 = "comp-1/valve_leak/1"  # open, its work order pending
A3 = "pump-08/seal_wear/1"  # acknowledged, no work order
UNTIL = (T0 + dt.timedelta(hours=4)).isoformat()

ROUTES: list[tuple[str, str, dict[str, Any] | None, Role]] = [
    ("GET", "/api/v1/me", None, Role.VIEWER),
    ("GET", "/api/v1/assets", None, Role.VIEWER),
    ("GET", "/api/v1/assets/pump-07", None, Role.VIEWER),
    ("GET", "/api/v1/assets/pump-07/scores", None, Role.VIEWER),
    ("GET", "/api/v1/assets/pump-07/telemetry", None, Role.VIEWER),
    ("GET", "/api/v1/alerts", None, Role.VIEWER),
    ("GET", f"/api/v1/alerts/{A1}", None, Role.VIEWER),
    ("GET", "/api/v1/workorders", None, Role.VIEWER),
    ("GET", "/api/v1/openapi.json", None, Role.VIEWER),
    ("POST", f"/api/v1/alerts/{A1}/acknowledge", {"reason": "seen"}, Role.PLANNER),
    ("POST", f"/api/v1/alerts/{A1}/snooze", {"until": UNTIL}, Role.PLANNER),
    ("POST", f"/api/v1/alerts/{A1}/dismiss", {"reason": "sensor swap"}, Role.PLANNER),
    ("POST", f"/api/v1/alerts/{A1}/approve", {}, Role.PLANNER),
    ("GET", "/api/v1/audit", None, Role.ADMIN),
]


def _wo_key(world: World, alert_id: str) -> str:
    with world.client(Role.VIEWER) as c:
        return str(c.get(f"/api/v1/alerts/{alert_id}").json()["work_order"]["key"])


@pytest.mark.parametrize(("method", "path", "body", "needed"), ROUTES)
@pytest.mark.parametrize("role", [None, "bad", *Role])
def test_every_route_needs_a_token_and_enough_role(  # noqa: PLR0917 - pytest parameters
    world: World,
    method: str,
    path: str,
    body: dict[str, Any] | None,
    needed: Role,
    role: Role | str | None,
) -> None:
    """No or an unknown token is 401 (with WWW-Authenticate), a lower role 403, else served."""
    with world.client() as client:
        if role == "bad":
            client.headers["Authorization"] = "Bearer prg_not-a-token"
        elif isinstance(role, Role):
            client.headers["Authorization"] = f"Bearer {world.tokens[role]}"
        answer = client.request(method, path, json=body)
    if not isinstance(role, Role):
        assert answer.status_code == 401
        assert answer.headers["www-authenticate"].startswith("Bearer")
        assert answer.json()["error"] == "unauthorized"
    elif not role.allows(needed):
        assert answer.status_code == 403
        assert answer.json()["error"] == "forbidden"
    else:
        assert answer.status_code == 200, answer.text


@pytest.mark.parametrize("role", [None, *Role])
@pytest.mark.parametrize(
    ("method", "suffix", "body"),
    [
        ("GET", "", None),
        ("POST", "/approve", {}),
        ("POST", "/reject", {"reason": "not needed"}),
    ],
)
def test_work_order_routes_by_role(
    world: World, role: Role | None, method: str, suffix: str, body: dict[str, Any] | None
) -> None:
    """Reading a work order needs viewer; approving and rejecting need planner."""
    key = _wo_key(world, A1)
    needed = Role.VIEWER if method == "GET" else Role.PLANNER
    with world.client(role) as client:
        answer = client.request(method, f"/api/v1/workorders/{key}{suffix}", json=body)
    expected = 401 if role is None else 200 if role.allows(needed) else 403
    assert answer.status_code == expected, answer.text


def test_only_the_health_check_is_public(world: World) -> None:
    """/healthz answers without a token; the docs UIs and the OpenAPI document do not."""
    with world.client() as client:
        assert client.get("/healthz").json()["status"] == "ok"
        for path in ("/docs", "/redoc", "/openapi.json"):
            assert client.get(path).status_code == 404
        assert client.get("/api/v1/openapi.json").status_code == 401


def test_me_names_the_token_holder(world: World) -> None:
    """The token's name and role come back (a UI's login check)."""
    with world.client(Role.PLANNER) as client:
        assert client.get("/api/v1/me").json() == {"name": "planner-user", "role": "planner"}


def test_a_revoked_token_is_refused_by_the_running_server(world: World) -> None:
    """Revoking rewrites the token file; the server re-reads it on the next request."""
    with world.client(Role.VIEWER) as client:
        assert client.get("/api/v1/me").status_code == 200
        assert (
            api_main(
                ["token", "revoke", "--tokens", str(world.settings.tokens), "--name", "viewer-user"]
            )
            == 0
        )
        assert client.get("/api/v1/me").status_code == 401


def test_the_token_file_keeps_only_hashes(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    """`token add` prints the token once; the file holds its SHA-256, never the token."""
    assert (
        api_main(
            [
                "token",
                "add",
                "--tokens",
                str(world.settings.tokens),
                "--name",
                "bob",
                "--role",
                "admin",
            ]
        )
        == 0
    )
    token = capsys.readouterr().out.strip()
    text = world.settings.tokens.read_text()
    assert token.startswith("prg_")
    assert token not in text
    for t in world.tokens.values():
        assert t not in text
    assert api_main(["token", "list", "--tokens", str(world.settings.tokens), "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [(t["name"], t["role"]) for t in listed][-1] == ("bob", "admin")
    assert all("sha256" not in t for t in listed)
    assert (
        api_main(
            [
                "token",
                "add",
                "--tokens",
                str(world.settings.tokens),
                "--name",
                "bob",
                "--role",
                "viewer",
            ]
        )
        == 2
    )
    with world.client() as client:
        client.headers["Authorization"] = f"Bearer {token}"
        assert client.get("/api/v1/audit").status_code == 200


def test_alerts_are_newest_first_and_filtered(planner: TestClient) -> None:
    """Newest opened first; each filter keeps any of its values; filters combine."""

    def ids(**params: Any) -> list[str]:
        answer = planner.get("/api/v1/alerts", params=params)
        assert answer.status_code == 200, answer.text
        return [a["alert_id"] for a in answer.json()["items"]]

    assert ids() == [A3, A2, A1]
    assert ids(state="open") == [A2, A1]
    assert ids(state=["open", "acknowledged"]) == [A3, A2, A1]
    assert ids(site="plant1") == [A3, A1]
    assert ids(site="plant1", state="open") == [A1]
    assert ids(asset="comp-1") == [A2]
    assert ids(site="plant2", asset="pump-07") == []
    assert ids(target="seal_wear") == [A3]
    assert ids(priority=["P1", "P2", "P3"]) == [A2, A1]
    assert ids(**{"from": (T0 - dt.timedelta(hours=2)).isoformat()}) == [A3, A2]
    assert ids(to=(T0 - dt.timedelta(hours=2)).isoformat()) == [A1]
    one = planner.get(f"/api/v1/alerts/{A1}").json()
    assert (one["site"], one["tier"], one["work_order"]["state"]) == ("plant1", "VIP", "proposed")
    assert one["allowed"] == ["acknowledge", "close", "resolve", "snooze", "suppress"]


def test_alert_paging_counts_the_whole(planner: TestClient) -> None:
    """The total counts every match; limit and offset cut the page."""
    page = planner.get("/api/v1/alerts", params={"limit": 2, "offset": 1}).json()
    assert (page["total"], page["limit"], page["offset"]) == (3, 2, 1)
    assert [a["alert_id"] for a in page["items"]] == [A2, A1]
    assert planner.get("/api/v1/alerts", params={"limit": 0}).status_code == 422
    assert planner.get("/api/v1/alerts", params={"state": "bogus"}).status_code == 422


def test_an_unknown_alert_is_404(planner: TestClient) -> None:
    """Reading or acting on an alert that does not exist is 404."""
    assert planner.get("/api/v1/alerts/nope/x/1").status_code == 404
    answer = planner.post("/api/v1/alerts/nope/x/1/acknowledge", json={})
    assert (answer.status_code, answer.json()["error"]) == (404, "not_found")


def test_acknowledge_then_again_is_409_naming_state_and_allowed_events(
    world: World, planner: TestClient
) -> None:
    """The second acknowledge is refused with the alerting table's own message."""
    first = planner.post(f"/api/v1/alerts/{A1}/acknowledge", json={"reason": "on it"})
    assert first.status_code == 200, first.text
    assert first.json()["alert"]["state"] == "acknowledged"
    again = planner.post(f"/api/v1/alerts/{A1}/acknowledge")
    assert again.status_code == 409
    assert again.json() == {
        "error": "illegal_transition",
        "message": "alert event 'acknowledge' is not allowed in state 'acknowledged'; "
        "allowed: close, resolve, snooze, suppress",
        "state": "acknowledged",
        "allowed": ["close", "resolve", "snooze", "suppress"],
    }
    store = world.store()
    try:
        (saved,) = [a for a in store.alerts() if a.alert_id == A1]
    finally:
        store.close()
    assert (saved.state.value, saved.reason, saved.updated_at) == ("acknowledged", "on it", T0)


def test_snooze_needs_a_future_time_and_sets_it(planner: TestClient) -> None:
    """A past or naive until is 422; a future one snoozes until then."""
    past = (T0 - dt.timedelta(minutes=1)).isoformat()
    assert planner.post(f"/api/v1/alerts/{A1}/snooze", json={"until": past}).status_code == 422
    naive = "2026-11-24T00:00:00"
    assert planner.post(f"/api/v1/alerts/{A1}/snooze", json={"until": naive}).status_code == 422
    assert planner.post(f"/api/v1/alerts/{A1}/snooze", json={}).status_code == 422
    answer = planner.post(f"/api/v1/alerts/{A1}/snooze", json={"until": UNTIL}).json()
    assert (answer["alert"]["state"], answer["alert"]["snoozed_until"]) == (
        "snoozed",
        UNTIL.replace("+00:00", "Z"),
    )


def test_dismiss_needs_a_reason_closes_and_rejects_the_proposed_work_order(
    planner: TestClient,
) -> None:
    """Dismiss closes the alert with the reason; its proposed work order is rejected."""
    assert planner.post(f"/api/v1/alerts/{A1}/dismiss", json={}).status_code == 422
    assert planner.post(f"/api/v1/alerts/{A1}/dismiss", json={"reason": ""}).status_code == 422
    answer = planner.post(f"/api/v1/alerts/{A1}/dismiss", json={"reason": "sensor swap"})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["alert"]["state"], body["alert"]["reason"]) == ("closed", "sensor swap")
    assert body["work_order"]["state"] == "rejected"
    again = planner.post(f"/api/v1/alerts/{A1}/acknowledge").json()
    assert again["message"].endswith("allowed: none (terminal state)")
    detail = planner.get(f"/api/v1/workorders/{body['work_order']['key']}").json()
    assert detail["summary"]["reason"] == "sensor swap"
    assert detail["transitions"][-1]["source"] == "api:planner-user"


def test_dismiss_leaves_a_delivered_work_order_alone(planner: TestClient) -> None:
    """A work order already in the outbox is not touched (cancel it in the service system)."""
    body = planner.post(f"/api/v1/alerts/{A2}/dismiss", json={"reason": "duplicate"}).json()
    assert body["work_order"] is None
    assert body["alert"]["work_order"]["state"] == "pending"


def test_approve_sends_the_proposed_work_order_to_the_outbox(
    world: World, planner: TestClient
) -> None:
    """Approve = the store's approve path: pending, create queued, by api:<user>; twice is 409."""
    answer = planner.post(f"/api/v1/alerts/{A1}/approve", json={"reason": "go"})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["work_order"]["state"] == "pending"
    assert body["alert"]["state"] == "acknowledged"
    key = body["work_order"]["key"]
    store = world.store()
    try:
        assert store.get(key).state is WoState.PENDING
        (event,) = store.events(key)
        assert (event["event"], event["source"]) == ("approve", "api:planner-user")
        assert key in {i.key for i in store.due(now=T0 + dt.timedelta(days=1))}
    finally:
        store.close()
    again = planner.post(f"/api/v1/alerts/{A1}/approve")
    assert again.status_code == 409
    assert again.json()["state"] == "pending"
    assert "not allowed in state 'pending'" in again.json()["message"]


def test_approve_without_a_work_order_is_409(planner: TestClient) -> None:
    """An alert with no work order has nothing to approve."""
    answer = planner.post(f"/api/v1/alerts/{A3}/approve")
    assert (answer.status_code, answer.json()["error"]) == (409, "no_work_order")


def test_every_action_is_audited_with_user_and_reason(world: World, planner: TestClient) -> None:
    """Accepted and refused actions are both on record; only an admin reads the log."""
    planner.post(f"/api/v1/alerts/{A1}/acknowledge", json={"reason": "on it"})
    planner.post(f"/api/v1/alerts/{A1}/acknowledge", json={"reason": "again"})
    planner.post(f"/api/v1/alerts/{A2}/dismiss", json={"reason": "duplicate"})
    assert planner.get("/api/v1/audit").status_code == 403
    with world.client(Role.ADMIN) as admin:
        entries = admin.get("/api/v1/audit").json()["items"]
    assert [(e["action"], e["target"], e["reason"], e["outcome"], e["user"]) for e in entries] == [
        ("alert.dismiss", A2, "duplicate", "ok", "planner-user"),
        ("alert.acknowledge", A1, "again", "illegal_transition", "planner-user"),
        ("alert.acknowledge", A1, "on it", "ok", "planner-user"),
    ]


def test_work_orders_are_filtered_paged_and_shown_with_history(
    world: World, planner: TestClient
) -> None:
    """Filters by state, priority, site, asset; the detail has transitions and deliveries."""

    def assets(**params: Any) -> list[str]:
        answer = planner.get("/api/v1/workorders", params=params)
        assert answer.status_code == 200, answer.text
        return [w["asset"] for w in answer.json()["items"]]

    assert assets() == ["comp-1", "pump-07"]
    assert assets(state="proposed") == ["pump-07"]
    assert assets(site="plant2") == ["comp-1"]
    assert assets(asset=["pump-07", "comp-1"], state=["pending", "proposed"]) == [
        "comp-1",
        "pump-07",
    ]
    assert assets(priority="P4") == []
    page = planner.get("/api/v1/workorders", params={"limit": 1, "offset": 1}).json()
    assert (page["total"], [w["asset"] for w in page["items"]]) == (2, ["pump-07"])
    key = _wo_key(world, A1)
    assert planner.post(f"/api/v1/workorders/{key}/reject", json={}).status_code == 422
    assert planner.post(f"/api/v1/workorders/{key}/approve").status_code == 200
    detail = planner.get(f"/api/v1/workorders/{key}").json()
    assert detail["summary"]["state"] == "pending"
    assert detail["work_order"]["key"] == key
    assert [t["new"] for t in detail["transitions"]] == ["pending"]
    assert detail["deliveries"] == []
    refused = planner.post(f"/api/v1/workorders/{key}/reject", json={"reason": "late"})
    assert (refused.status_code, refused.json()["state"]) == (409, "pending")
    assert planner.get("/api/v1/workorders/wo-nope").status_code == 404
    assert planner.post("/api/v1/workorders/wo-nope/approve").status_code == 404


def test_the_fleet_has_each_assets_worst_condition(planner: TestClient) -> None:
    """Lowest health, highest probability, shortest life over targets; open alerts counted."""
    page = planner.get("/api/v1/assets").json()
    by_id = {a["asset_id"]: a for a in page["items"]}
    p7 = by_id["pump-07"]
    assert (p7["health"], p7["worst_probability"], p7["worst_target"]) == (
        20.0,
        0.9,
        "bearing_wear",
    )
    assert (p7["shortest_rul"], p7["shortest_rul_lo"]) == (30.0, 12.0)
    assert (p7["open_alerts"], p7["open_work_orders"]) == (1, 1)
    c1 = by_id["comp-1"]
    assert (c1["health"], c1["worst_probability"], c1["worst_target"], c1["shortest_rul"]) == (
        90.0,
        None,
        "valve_leak",
        None,
    )


def test_the_fleet_sorts_filters_and_pages(planner: TestClient) -> None:
    """Sort by any summary column (None last), filter by site, tier and class, page."""

    def ids(**params: Any) -> list[str]:
        answer = planner.get("/api/v1/assets", params=params)
        assert answer.status_code == 200, answer.text
        return [a["asset_id"] for a in answer.json()["items"]]

    assert ids() == ["comp-1", "pump-07", "pump-08"]
    assert ids(sort="-worst_probability") == ["pump-07", "pump-08", "comp-1"]
    assert ids(sort="worst_probability") == ["pump-08", "pump-07", "comp-1"]
    assert ids(sort="health") == ["pump-07", "pump-08", "comp-1"]
    assert ids(sort="-criticality") == ["pump-07", "pump-08", "comp-1"]
    assert ids(site="plant1") == ["pump-07", "pump-08"]
    assert ids(tier=["Gold", "Regular"]) == ["comp-1", "pump-08"]
    assert ids(**{"class": "compressor"}) == ["comp-1"]
    assert ids(sort="shortest_rul", limit=1, offset=1) == ["pump-08"]
    assert planner.get("/api/v1/assets", params={"sort": "bogus"}).status_code == 422


def test_one_asset_has_its_record_and_latest_score_per_target(planner: TestClient) -> None:
    """The detail has the registry record and one latest score per target and model."""
    body = planner.get("/api/v1/assets/pump-07").json()
    assert body["record"]["serial"] == "S1"
    assert [t["target"] for t in body["targets"]] == ["bearing_wear", "seal_wear"]
    assert planner.get("/api/v1/assets/nope").status_code == 404
    assert planner.get("/api/v1/assets/nope/scores").status_code == 404
    assert planner.get("/api/v1/assets/nope/telemetry").status_code == 404


def test_score_history_is_per_target_and_model(planner: TestClient) -> None:
    """The history groups points per series with the RUL band."""
    body = planner.get("/api/v1/assets/pump-07/scores", params={"target": "bearing_wear"}).json()
    (series,) = body["series"]
    assert (series["target"], series["model_name"]) == ("bearing_wear", "m")
    assert [(p["probability"], p["rul_lo"], p["rul_hi"]) for p in series["points"]] == [
        (0.5, 40.0, 80.0),
        (0.7, 30.0, 60.0),
    ]
    bad = {"from": T0.isoformat(), "to": (T0 - dt.timedelta(hours=1)).isoformat()}
    assert planner.get("/api/v1/assets/pump-07/scores", params=bad).status_code == 422


def test_telemetry_picks_a_bucket_width_and_refuses_unknown_signals(planner: TestClient) -> None:
    """Default signals are the numeric ones; every defaults to span / points; limits hold."""
    body = planner.get(
        "/api/v1/assets/pump-07/telemetry", params={"signals": "bearing_temp_c"}
    ).json()
    assert (body["every"], body["signals"]) == ("5m", ["bearing_temp_c"])  # 24 h / 500 = 173 s
    assert body["values"] == {"bearing_temp_c": [70.5, None]}
    both = planner.get("/api/v1/assets/pump-07/telemetry").json()
    assert both["signals"] == ["bearing_temp_c", "run_hours"]
    unknown = planner.get("/api/v1/assets/pump-07/telemetry", params={"signals": "state"})
    assert (unknown.status_code, unknown.json()["error"]) == (422, "unknown_signal")
    dense = planner.get("/api/v1/assets/pump-07/telemetry", params={"every": "1s"})
    assert (dense.status_code, dense.json()["error"]) == (422, "too_many_points")
    assert (
        planner.get("/api/v1/assets/pump-07/telemetry", params={"every": "5x"}).status_code == 422
    )
    injected = planner.get("/api/v1/assets/pump-07/telemetry", params={"signals": 'a") FROM x;'})
    assert (injected.status_code, injected.json()["error"]) == (422, "bad_signal")


@pytest.mark.parametrize(
    ("span_s", "points", "every"),
    [
        (60, 500, "1s"),
        (86400, 500, "5m"),
        (3600, 60, "1m"),
        (86400 * 365, 500, "1d"),
        (86400 * 3650, 500, "8d"),
    ],
)
def test_auto_bucket_widths_are_round_and_never_exceed_points(
    span_s: int, points: int, every: str
) -> None:
    """The width is the smallest round one that keeps the bucket count within points."""
    got = auto_every(dt.timedelta(seconds=span_s), points)
    assert got == every
    assert span_s / every_seconds(got) <= points


def test_influx_down_is_503(world: World) -> None:
    """An InfluxDB that does not answer gives 503 influx_unavailable, not a crash."""

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    influx = InfluxClient(url="http://influx.test:8086", transport=httpx.MockTransport(refuse))
    app = create_app(world.settings, influx=influx, clock=lambda: T0)
    with TestClient(app) as client:
        client.headers["Authorization"] = f"Bearer {world.tokens[Role.VIEWER]}"
        answer = client.get("/api/v1/assets")
        assert client.get("/api/v1/alerts").status_code == 200
    influx.close()
    assert (answer.status_code, answer.json()["error"]) == (503, "influx_unavailable")


def test_the_committed_openapi_document_is_current() -> None:
    """docs/openapi.json is what the code generates: regenerate with `prognos api openapi`."""
    committed = (ROOT / "docs" / "openapi.json").read_text()
    assert committed == openapi_document(), (
        "docs/openapi.json is stale: run `prognos api openapi > docs/openapi.json`"
    )


def test_the_openapi_document_declares_bearer_auth_and_error_models() -> None:
    """Every /api/v1 operation needs the bearer scheme and documents 401 and 403."""
    spec = json.loads(openapi_document())
    assert spec["components"]["securitySchemes"]["bearer"] == {
        "type": "http",
        "scheme": "bearer",
        "description": "A token from `prognos api token add`; roles viewer < planner < admin.",
    }
    for path, ops in spec["paths"].items():
        for op in ops.values():
            if path == "/healthz":
                assert "security" not in op
                continue
            assert op["security"] == [{"bearer": []}], path
            assert {"401", "403"} <= set(op["responses"]), path


def test_a_snooze_made_here_is_taken_in_and_woken_by_the_scorers_engine(
    world: World, planner: TestClient
) -> None:
    """The saved alert is what `AlertEngine.restore` reads; `tick` wakes it at `until`."""
    planner.post(f"/api/v1/alerts/{A1}/snooze", json={"until": UNTIL, "reason": "night shift"})
    engine = AlertEngine(policy=AlertPolicy(open_after=1))
    store = world.store()
    try:
        engine.restore(store.alerts())
    finally:
        store.close()
    assert engine.get(A1).state.value == "snoozed"
    (woken,) = engine.tick(T0 + dt.timedelta(hours=4))
    assert (woken.alert.alert_id, woken.alert.state.value) == (A1, "open")


def test_times_without_a_zone_are_refused(planner: TestClient) -> None:
    """A naive from/to is ambiguous: 422, never a guess."""
    answer = planner.get("/api/v1/alerts", params={"from": "2026-11-23T10:00:00"})
    assert (answer.status_code, answer.json()["error"]) == (422, "bad_range")
    answer = planner.get("/api/v1/assets/pump-07/scores", params={"to": "2026-11-23T10:00:00"})
    assert (answer.status_code, answer.json()["error"]) == (422, "bad_range")


def test_operation_ids_are_the_route_names() -> None:
    """Client generators get stable, unique names (list_alerts, approve_alert, ...)."""
    spec = json.loads(openapi_document())
    ids = [op["operationId"] for ops in spec["paths"].values() for op in ops.values()]
    assert len(ids) == len(set(ids))
    assert {"list_alerts", "approve_alert", "get_work_order", "list_assets"} <= set(ids)
