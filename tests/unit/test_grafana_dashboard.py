"""The Grafana dashboard's JSON: importable structure, one data-source input, known layout.

Its queries are run against a real influxd with demo data in
tests/integration/test_grafana_queries.py.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

DASHBOARD = Path(__file__).resolve().parents[2] / "config" / "grafana" / "prognos-dashboard.json"
DS_UID = "${DS_INFLUXDB}"
MEASUREMENTS = {"telemetry", "scores", "gateway_status", "ingest_batches"}
"""DESIGN.md's layout plus what the ingester writes (docs/ingest.md)."""


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return data


def _panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for p in dashboard["panels"] if p["type"] != "row"]


def test_the_data_source_is_an_import_input(dashboard: dict[str, Any]) -> None:
    """Grafana asks for the InfluxDB data source on import: one `DS_INFLUXDB` input."""
    (ds,) = dashboard["__inputs"]
    assert ds["name"] == "DS_INFLUXDB"
    assert ds["type"] == "datasource"
    assert ds["pluginId"] == "influxdb"
    assert dashboard["id"] is None
    assert dashboard["uid"]
    assert dashboard["schemaVersion"] >= 36
    grafana = next(r for r in dashboard["__requires"] if r["id"] == "grafana")
    assert int(grafana["version"].split(".")[0]) >= 10


def test_every_panel_and_query_uses_that_data_source(dashboard: dict[str, Any]) -> None:
    for panel in _panels(dashboard):
        assert panel["datasource"] == {"type": "influxdb", "uid": DS_UID}, panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == DS_UID
            assert target["rawQuery"] is True
    for var in dashboard["templating"]["list"]:
        assert var["datasource"]["uid"] == DS_UID


def test_panels_have_unique_ids_and_fit_the_grid(dashboard: dict[str, Any]) -> None:
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dashboard["panels"]:
        pos = panel["gridPos"]
        assert pos["x"] >= 0
        assert pos["w"] > 0
        assert pos["x"] + pos["w"] <= 24
        assert pos["h"] > 0


def test_the_dashboard_has_the_panels_sites_need(dashboard: dict[str, Any]) -> None:
    titles = " | ".join(p["title"] for p in _panels(dashboard)).lower()
    for wanted in ("$signal", "failure probability", "remaining life", "per minute", "gateway"):
        assert wanted in titles
    rul = next(p for p in _panels(dashboard) if p["title"].startswith("Remaining life"))
    fields = {re.search(r'mean\("(\w+)"\)', t["query"]).group(1) for t in rul["targets"]}  # type: ignore[union-attr]
    assert fields == {"rul", "rul_lo", "rul_hi"}
    fills = [
        prop["value"]
        for o in rul["fieldConfig"]["overrides"]
        for prop in o["properties"]
        if prop["id"] == "custom.fillBelowTo"
    ]
    assert fills, "the remaining-life interval is drawn as a band"


def test_queries_read_the_known_layout_with_the_time_filter(dashboard: dict[str, Any]) -> None:
    names = {v["name"] for v in dashboard["templating"]["list"]}
    assert {"site", "asset"} <= names
    for panel in _panels(dashboard):
        for target in panel["targets"]:
            q = target["query"]
            assert q.startswith("SELECT ")
            assert "$timeFilter" in q
            (measurement,) = re.findall(r'FROM "(\w+)"', q)
            assert measurement in MEASUREMENTS
            for used in re.findall(r"\$(\w+)", q):
                assert used in names | {"timeFilter", "__interval"}, used
    for var in dashboard["templating"]["list"]:
        assert var["query"].startswith("SHOW ")
