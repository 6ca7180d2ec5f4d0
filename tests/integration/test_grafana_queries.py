"""Every query of the Grafana dashboard returns series from a real influxd with demo data.

The demo data is laid out by the project's own writers (the ingester's classifier, the scorer's
`Score` points; `_reports_demo`), so a query that names a wrong measurement, field or tag finds
nothing and fails here. Template variables are substituted the way Grafana does: a multi-value
variable inside a regex becomes ``(a|b)`` with regex characters escaped, ``$timeFilter`` a time
range in epoch milliseconds, ``$__interval`` an interval.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _reports_demo import ASSETS_YAML, OUTAGE, write_influx

from cloud.registry import parse_registry_yaml
from cloud.store import InfluxAuth, InfluxClient, QueryResult

DASHBOARD = Path(__file__).resolve().parents[2] / "config" / "grafana" / "prognos-dashboard.json"
DAY = (
    dt.datetime.combine(OUTAGE[0].date(), dt.time(), tzinfo=dt.UTC),
    dt.datetime.combine(OUTAGE[0].date(), dt.time(), tzinfo=dt.UTC) + dt.timedelta(days=1),
)
"""The dashboard's time range: the day of plant2's gateway outage."""
VALUES = {
    "site": ["plant1", "plant2"],
    "asset": ["pump-07", "mill-1"],
    "signal": ["bearing_temp_c"],
}


def _regex(values: list[str]) -> str:
    escaped = [re.sub(r"([\\/^$.|?*+()\[\]{}-])", r"\\\1", v) for v in values]
    return escaped[0] if len(escaped) == 1 else "(" + "|".join(escaped) + ")"


def substitute(query: str, values: dict[str, list[str]]) -> str:
    """The query as Grafana sends it for these variable values and `DAY`."""
    start, end = (int(t.timestamp() * 1000) for t in DAY)
    q = query.replace("$timeFilter", f"time >= {start}ms and time <= {end}ms")
    q = q.replace("$__interval", "1h")
    for name, vals in values.items():
        q = q.replace(f"/^${name}$/", f"/^{_regex(vals)}$/")
        q = q.replace(f'"${name}"', json.dumps(vals[0]))
    assert re.search(r"\$\w", q) is None, q
    return q


@pytest.fixture(scope="module")
def influx(services: Any) -> Iterator[InfluxClient]:
    database = f"test_grafana_{uuid.uuid4().hex[:8]}"
    services.influx_query(f'CREATE DATABASE "{database}"')
    services.databases.append(database)
    auth = InfluxAuth.basic(services.influx_user, services.influx_password)
    client = InfluxClient(url=services.influx_url, database=database, auth=auth, timeout_s=60)
    try:
        write_influx(client, parse_registry_yaml(ASSETS_YAML))
        yield client
    finally:
        client.close()
        services.influx_query(f'DROP DATABASE "{database}"')


def _values(result: QueryResult) -> list[object]:
    return [v for s in result.series for row in s.values for v in row[1:] if v is not None]


def _queries() -> list[tuple[str, str]]:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return [
        (f"{p['title']} [{t['refId']}]", t["query"])
        for p in dashboard["panels"]
        if p["type"] != "row"
        for t in p["targets"]
    ]


@pytest.mark.parametrize(("panel", "query"), _queries(), ids=[n for n, _ in _queries()])
def test_every_panel_query_returns_series(influx: InfluxClient, panel: str, query: str) -> None:
    result = influx.query(substitute(query, VALUES))
    assert result.series, f"{panel}: no series"
    assert _values(result), f"{panel}: only empty values"


def test_the_template_variables_list_the_fleet(influx: InfluxClient) -> None:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    found = {}
    for var in dashboard["templating"]["list"]:
        rows = influx.query(substitute(var["query"], {"site": ["plant1"]})).rows()
        found[var["name"]] = {str(r.get("value", r.get("fieldKey"))) for r in rows}
    assert found["site"] == {"plant1", "plant2"}
    assert found["asset"] == {"pump-07", "pump-08", "comp-1"}  # plant1's assets only
    assert {"bearing_temp_c", "spindle_torque_nm"} <= found["signal"]


def test_the_gateway_panel_shows_the_outage(influx: InfluxClient) -> None:
    """plant2's gateway is offline from 06:00 to 14:00 on the outage day, online otherwise."""
    (_, query) = next(q for q in _queries() if q[0].startswith("Gateway status"))
    result = influx.query(substitute(query, {"site": ["plant2"]}))
    (series,) = result.series
    states = {
        dt.datetime.fromtimestamp(float(str(row[0])) / 1000, tz=dt.UTC).hour: row[1]
        for row in series.values
        if row[1] is not None
    }
    assert states[7] is False
    assert states[15] is True
