"""Alert updates are compare-and-set: racing writers never lose each other's transitions.

Real SQLite files shared by several `Store` connections (threads) or processes, as the API and
the scorer share the decision-state file in production.
"""

from __future__ import annotations

import concurrent.futures
import datetime as dt
import multiprocessing
import random
import sqlite3
import threading
import time
import warnings
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from starlette.exceptions import StarletteDeprecationWarning

with warnings.catch_warnings():
    # Starlette asks for `httpx2` under its TestClient; httpx 0.28 works (see test_api.py).
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from fastapi.testclient import TestClient

import itertools

from cloud.alerting import (
    TRANSITIONS,
    AlertChange,
    AlertEngine,
    AlertEvent,
    AlertPolicy,
    AlertState,
    IllegalAlertTransition,
)
from cloud.api import ApiSettings, Role, add_token, create_app
from cloud.store import InfluxClient
from cloud.workorders import Store

T0 = dt.datetime(2026, 11, 23, 12, tzinfo=dt.UTC)
ALERT = "pump-07/bearing_wear/1"
ASSETS = """
assets:
  - {asset_id: pump-07, site: plant1, customer: Northwater, tier: VIP, model: CPV-150,
     firmware: "2.4", profile: aquaflo_cpv150_2.x, serial: S1, asset_class: pump,
     team: north, criticality: critical, commissioned: 2021-05-17}
"""
PLANNER_EVENTS = (AlertEvent.ACKNOWLEDGE, AlertEvent.SNOOZE, AlertEvent.SUPPRESS)
PLANNER_UNDO = (AlertEvent.UNSUPPRESS,)
SCORER_EVENTS = (AlertEvent.RESOLVE, AlertEvent.REOPEN, AlertEvent.WAKE)
"""Every event but close (terminal): the alert keeps moving for the whole run."""


def raise_alert(path: Path) -> None:
    engine = AlertEngine(policy=AlertPolicy(open_after=1))
    (change,) = engine.observe("pump-07", "bearing_wear", T0, 0.9, now=T0)
    with _opened(path) as store:
        assert store.insert_alert(change.alert, source="scorer")


class _opened:  # noqa: N801 - a tiny context manager for a Store
    def __init__(self, path: Path) -> None:
        self.store = Store(path)

    def __enter__(self) -> Store:
        return self.store

    def __exit__(self, *exc: object) -> None:
        self.store.close()


def hammer(
    path: str, seed: int, events: tuple[AlertEvent, ...], n: int, pause_s: float = 0.0
) -> dict[str, Any]:
    """Apply `n` random events from `events`; count what was applied and what was refused.

    `pause_s` between events lets a slower writer in (SQLite's busy wait is not fair).
    """
    rng = random.Random(seed)
    applied: Counter[str] = Counter()
    refused: list[tuple[str, str]] = []
    store = Store(path)
    try:
        for i in range(n):
            event = rng.choice(events)
            now = T0 + dt.timedelta(seconds=i)
            until = now + dt.timedelta(hours=1) if event is AlertEvent.SNOOZE else None
            try:
                store.apply_alert_event(
                    ALERT, event, now=now, source=f"w{seed}", until=until, reason=f"w{seed}"
                )
            except IllegalAlertTransition as exc:
                refused.append((event.value, exc.state.value))
            else:
                applied[event.value] += 1
            if pause_s:
                time.sleep(pause_s)
    finally:
        store.close()
    return {"applied": applied, "refused": refused}


def check_history(path: Path, results: list[dict[str, Any]]) -> None:
    """Every success is one history row, the rows chain, and the final state is the last one."""
    with _opened(path) as store:
        rows = store.alert_events(ALERT)
        final = store.get_alert(ALERT)
    assert final is not None
    alert, version = final
    applied = sum(sum(r["applied"].values()) for r in results)
    assert rows[0]["event"] == "raise"
    changes = rows[1:]
    assert len(changes) == applied  # no lost (or invented) transitions
    assert version == 1 + applied
    assert [r["version"] for r in rows] == list(range(1, version + 1))
    for before, after in itertools.pairwise(rows):
        assert after["old"] == before["new"]  # each applied to the state the previous left
        assert (
            TRANSITIONS[AlertState(after["old"])][AlertEvent(after["event"])].value
            == (after["new"])
        )
    assert alert.state.value == rows[-1]["new"]
    per_source = Counter(r["source"] for r in changes)
    for seed, r in enumerate(results):
        assert per_source[f"w{seed}"] == sum(r["applied"].values())
        for event, state in r["refused"]:
            assert AlertEvent(event) not in TRANSITIONS[AlertState(state)]
    assert applied > 50  # the run really moved the alert


def test_two_threads_hammering_one_alert_lose_no_transition(tmp_path: Path) -> None:
    """A planner and a scorer (each its own connection) race 400 events each on one alert."""
    path = tmp_path / "d.db"
    raise_alert(path)
    jobs = [(PLANNER_EVENTS + PLANNER_UNDO), SCORER_EVENTS]
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        futures = [pool.submit(hammer, str(path), seed, ev, 400) for seed, ev in enumerate(jobs)]
        results = [f.result() for f in futures]
    check_history(path, results)


def test_three_processes_hammering_one_alert_lose_no_transition(tmp_path: Path) -> None:
    """The same across processes on the same file (the API, the scorer and a worker)."""
    path = tmp_path / "d.db"
    raise_alert(path)
    jobs = [PLANNER_EVENTS + PLANNER_UNDO, SCORER_EVENTS, SCORER_EVENTS + PLANNER_EVENTS]
    ctx = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(max_workers=3, mp_context=ctx) as pool:
        futures = [pool.submit(hammer, str(path), seed, ev, 100) for seed, ev in enumerate(jobs)]
        results = [f.result() for f in futures]
    check_history(path, results)


def test_a_stale_read_is_judged_on_the_stored_state(tmp_path: Path) -> None:
    """The API read `open`; the scorer resolved it since: acknowledge is refused as `resolved`."""
    path = tmp_path / "d.db"
    raise_alert(path)
    with _opened(path) as api, _opened(path) as scorer:
        seen = api.get_alert(ALERT)
        assert seen is not None
        assert seen[0].state is AlertState.OPEN
        scorer.apply_alert_event(ALERT, AlertEvent.RESOLVE, now=T0, source="scorer")
        with pytest.raises(IllegalAlertTransition) as refused:
            api.apply_alert_event(ALERT, AlertEvent.ACKNOWLEDGE, now=T0, source="api:alice")
        assert refused.value.state is AlertState.RESOLVED
        assert [r["event"] for r in api.alert_events(ALERT)] == ["raise", "resolve"]


def test_the_scorer_change_applies_on_top_of_a_planner_change(tmp_path: Path) -> None:
    """The planner acknowledged after the scorer's engine loaded the alert: both are kept."""
    path = tmp_path / "d.db"
    engine = AlertEngine(policy=AlertPolicy(open_after=1, clear_after=1))
    (raised,) = engine.observe("pump-07", "bearing_wear", T0, 0.9, now=T0)
    with _opened(path) as scorer, _opened(path) as api:
        scorer.save_alert_change(raised, source="scorer")
        later = T0 + dt.timedelta(minutes=5)
        api.apply_alert_event(ALERT, AlertEvent.ACKNOWLEDGE, now=later, source="api:alice")
        # The scorer's engine still holds `open`; its score clears the alert.
        (cleared,) = engine.observe("pump-07", "bearing_wear", later, 0.1, now=later)
        assert isinstance(cleared, AlertChange)
        stored = scorer.save_alert_change(cleared, source="scorer")
        assert stored is not None
        assert (stored.state, stored.last_score, stored.reason) == (
            AlertState.RESOLVED,
            0.1,
            "score_cleared",
        )
        history = [(r["event"], r["old"], r["new"]) for r in api.alert_events(ALERT)]
        assert history == [
            ("raise", "", "open"),
            ("acknowledge", "open", "acknowledged"),
            ("resolve", "acknowledged", "resolved"),
        ]
        # And the other way round: the API read `resolved`... and closes it; the scorer's
        # stale reopen is then refused (the stored close wins), not written over it.
        api.apply_alert_event(ALERT, AlertEvent.CLOSE, now=later, source="api:alice")
        (rose,) = engine.observe(
            "pump-07", "bearing_wear", later + dt.timedelta(minutes=5), 0.95, now=later
        )
        assert rose.event is AlertEvent.REOPEN
        assert scorer.save_alert_change(rose, source="scorer") is None
        assert api.alert_state(ALERT) is AlertState.CLOSED


def test_an_old_store_file_gains_the_version_column(tmp_path: Path) -> None:
    """A file written before alert versions opens, keeps its alerts, and takes CAS updates."""
    path = tmp_path / "old.db"
    db = sqlite3.connect(path)
    db.executescript(
        "CREATE TABLE alerts (alert_id TEXT PRIMARY KEY, asset TEXT NOT NULL, "
        "target TEXT NOT NULL, state TEXT NOT NULL, updated_at TEXT NOT NULL, "
        "record TEXT NOT NULL);"
    )
    engine = AlertEngine(policy=AlertPolicy(open_after=1))
    (raised,) = engine.observe("pump-07", "bearing_wear", T0, 0.9, now=T0)
    with _opened(tmp_path / "new.db") as fresh:
        fresh.save_alert(raised.alert)
        (record,) = fresh._db.execute("SELECT record FROM alerts").fetchone()
    db.execute(
        "INSERT INTO alerts VALUES (?, ?, ?, ?, ?, ?)",
        (ALERT, "pump-07", "bearing_wear", "open", T0.isoformat(), record),
    )
    db.commit()
    db.close()
    with _opened(path) as store:
        assert store.get_alert(ALERT) == (raised.alert, 0)
        done = store.apply_alert_event(ALERT, AlertEvent.ACKNOWLEDGE, now=T0, source="cli")
        assert done.state is AlertState.ACKNOWLEDGED
        assert store.get_alert(ALERT) == (done, 1)
    with _opened(path) as again:  # reopening a migrated file changes nothing
        assert again.get_alert(ALERT) == (done, 1)


# ------------------------------------------------------------------------------ the API


@pytest.fixture
def api(tmp_path: Path) -> tuple[ApiSettings, str]:
    (tmp_path / "assets.yaml").write_text(ASSETS)
    settings = ApiSettings(
        db=tmp_path / "decisions.db",
        assets=tmp_path / "assets.yaml",
        tokens=tmp_path / "tokens.json",
    )
    token = add_token(settings.tokens, name="planner-user", role=Role.PLANNER, now=T0)
    raise_alert(settings.db)
    return settings, token


def test_the_api_and_the_scorer_racing_lose_nothing_and_409_only_when_illegal(
    api: tuple[ApiSettings, str],
) -> None:
    """API acknowledge/snooze against a scorer resolving and reopening, on one alert.

    Every 200 is one history row by the API user, every scorer success one by the scorer, and
    each 409 names a state in which its event is illegal.
    """
    settings, token = api
    influx = InfluxClient(url="http://127.0.0.1:9")  # the alert routes never query InfluxDB
    app = create_app(settings, influx=influx, clock=lambda: T0)
    api_done = threading.Event()
    scorer_results: list[dict[str, Any]] = []

    def scorer() -> None:
        # Keep changing the alert for as long as the API is being called.
        seed = 1
        while not api_done.is_set():
            scorer_results.append(hammer(str(settings.db), seed, SCORER_EVENTS, 20, 0.002))
            seed += 100

    answers: list[tuple[str, int, dict[str, Any]]] = []
    rng = random.Random(7)
    thread = threading.Thread(target=scorer, name="test.scorer")
    with TestClient(app) as client:
        client.headers["Authorization"] = f"Bearer {token}"
        thread.start()
        try:
            for _ in range(150):
                action = rng.choice(["acknowledge", "snooze"])
                body: dict[str, str] = {"reason": "race"}
                if action == "snooze":
                    body["until"] = (T0 + dt.timedelta(hours=2)).isoformat()
                r = client.post(f"/api/v1/alerts/{ALERT}/{action}", json=body)
                answers.append((action, r.status_code, r.json()))
        finally:
            api_done.set()
            thread.join()
    influx.close()
    assert {code for _, code, _ in answers} <= {200, 409}
    ok = sum(1 for _, code, _ in answers if code == 200)
    event_of = {"acknowledge": AlertEvent.ACKNOWLEDGE, "snooze": AlertEvent.SNOOZE}
    for action, code, body in answers:
        if code == 409:
            assert body["error"] == "illegal_transition"
            assert event_of[action] not in TRANSITIONS[AlertState(body["state"])]
    with _opened(settings.db) as store:
        rows = store.alert_events(ALERT)
    by_source = Counter(r["source"] for r in rows)
    scorer_ok = sum(sum(r["applied"].values()) for r in scorer_results)
    assert by_source["api:planner-user"] == ok
    assert sum(n for source, n in by_source.items() if source.startswith("w")) == scorer_ok
    assert len(rows) == 1 + ok + scorer_ok
    for before, after in itertools.pairwise(rows):
        assert after["old"] == before["new"]
    assert ok > 0
    assert scorer_ok > 0
