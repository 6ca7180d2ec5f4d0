"""InfluxDB adapter on the v1 HTTP API (`/write` with line protocol, `/query` with InfluxQL).

One client speaks to InfluxDB 1.x natively, 2.x through its v1 compatibility API and 3.x Core
through its v1 endpoints (see docs/influxdb.md). The line-protocol encoder and the InfluxQL
quoting are pure; `InfluxClient` and `AsyncInfluxClient` only send what they build.

    from cloud.store import InfluxAuth, InfluxClient, Point

    with InfluxClient(url="http://127.0.0.1:8086", auth=InfluxAuth.basic("u", "p")) as influx:
        influx.write([Point("telemetry", {"asset": "p-1"}, {"temp_c": 21.5}, 1700000000000)])
        frame = influx.query_df('SELECT * FROM "telemetry" WHERE time > now() - 1h')
"""

from cloud.store._client import AsyncInfluxClient, InfluxClient
from cloud.store._errors import (
    DatabaseNotFound,
    InfluxAuthError,
    InfluxConnectError,
    InfluxError,
    InfluxRequestError,
    InfluxServerError,
    InfluxTimeout,
    LineProtocolError,
    PartialWriteError,
)
from cloud.store._influxql import quote_ident, quote_literal, tag_in
from cloud.store._line import FieldValue, Point, Precision, encode_lines
from cloud.store._protocol import BindValue, InfluxAuth
from cloud.store._result import (
    QueryResult,
    Series,
    StatementResult,
    Value,
    as_float,
    as_ns,
    as_time,
)
from cloud.store._retention import (
    BackfillResult,
    PolicyInfo,
    RetentionConfig,
    Rollup,
    ServerState,
    backfill,
    init_database,
    plan_init,
    read_state,
)

__all__ = [  # noqa: RUF022 - sorted with key=str.casefold, the project rule (STYLE.md 1)
    "as_float",
    "as_ns",
    "as_time",
    "AsyncInfluxClient",
    "backfill",
    "BackfillResult",
    "BindValue",
    "DatabaseNotFound",
    "encode_lines",
    "FieldValue",
    "InfluxAuth",
    "InfluxAuthError",
    "InfluxClient",
    "InfluxConnectError",
    "InfluxError",
    "InfluxRequestError",
    "InfluxServerError",
    "InfluxTimeout",
    "init_database",
    "LineProtocolError",
    "PartialWriteError",
    "plan_init",
    "Point",
    "PolicyInfo",
    "Precision",
    "QueryResult",
    "quote_ident",
    "quote_literal",
    "read_state",
    "RetentionConfig",
    "Rollup",
    "Series",
    "ServerState",
    "StatementResult",
    "tag_in",
    "Value",
]
