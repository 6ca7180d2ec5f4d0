"""Retention and downsampling on InfluxDB 1.x: retention policies, continuous queries, backfill.

Theory of operation
-------------------
Raw readings stay ``raw_days`` in the raw retention policy (``autogen`` by default: the policy
every writer without ``rp=`` uses). Continuous queries roll `telemetry` up into one-minute
points (policy ``rollup_1m``, kept ``rollup_1m_days``) and one-hour points (``rollup_1h``, kept
``rollup_1h_days``, forever by default); ``scores`` are rolled up per hour. A rollup point carries,
for every field ``f`` of the raw points, ``mean_f``, ``min_f``, ``max_f``, ``last_f`` and
``count_f`` (InfluxQL's names for ``SELECT mean(*), min(*), ...``), and the raw point's tags.
Both rollups are computed from raw data, never the hour from the minutes, so each is exact.

A continuous query only sees new data: it runs at the end of each interval and, with
``RESAMPLE ... FOR``, recomputes a few recent intervals to catch readings that arrive late. Older
data (an outbox replayed after a long outage, or data written before ``db init``) is rolled up by
`backfill`, which runs the same ``SELECT ... INTO`` over a past range, in chunks.

Rules:
1. Planning is pure: `plan_init` compares the wanted policies and queries with what the server
   has (`ServerState`) and returns only the statements that change something. Running ``init``
   twice runs nothing the second time; changing a duration alters the policy.
2. InfluxDB 1.x cannot alter a continuous query. Each query this module manages is named
   ``prognos_<rollup>_<measurement>_<fingerprint>``, the fingerprint a hash of its text: a
   changed query is dropped and created under its new name. Queries without the ``prognos_``
   prefix are never touched.
3. The shard group duration follows InfluxDB's own default for the policy's duration (1 h under
   2 days, 1 day up to 6 months, 7 days above), so a short policy never has longer shards.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Annotated, Final, Literal

import structlog
from pydantic import BaseModel, ConfigDict, Field, model_validator

from cloud.store._client import InfluxClient
from cloud.store._influxql import quote_ident

log = structlog.get_logger(__name__)

Aggregate = Literal["mean", "min", "max", "last", "count", "first", "sum"]
MANAGED_PREFIX: Final = "prognos_"
"""Name prefix of the continuous queries this module creates and may drop."""
_DAY_S: Final = 86_400
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(h|m|s|ms|us|µs|ns)")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)


class Rollup(_Model):
    """One downsampling level: an interval, the policy its points go to, what it covers."""

    policy: Annotated[str, Field(pattern=r"^[A-Za-z0-9_]{1,64}$")]
    """The retention policy of the rollup points (``rollup_1m``)."""
    interval_s: Annotated[int, Field(ge=1)]
    """The GROUP BY interval, in seconds."""
    days: Annotated[int, Field(ge=1)] | None
    """How long the rollup points are kept, in days; None keeps them forever."""
    measurements: tuple[Annotated[str, Field(min_length=1)], ...]
    """The raw measurements rolled up (``telemetry``, ``scores``)."""
    resample_for_s: Annotated[int, Field(ge=1)]
    """How far back each run of the continuous query recomputes (late data), in seconds; at
    least ``interval_s``."""

    @model_validator(mode="after")
    def _resample_covers_interval(self) -> Rollup:
        if self.resample_for_s < self.interval_s:
            raise ValueError(
                f"resample_for_s must be at least interval_s ({self.interval_s}). "
                f"Got {self.resample_for_s} instead"
            )
        return self


def _default_rollups() -> tuple[Rollup, ...]:
    return (
        Rollup(
            policy="rollup_1m",
            interval_s=60,
            days=400,
            measurements=("telemetry",),
            resample_for_s=600,
        ),
        Rollup(
            policy="rollup_1h",
            interval_s=3600,
            days=None,
            measurements=("telemetry", "scores"),
            resample_for_s=7200,
        ),
    )


class RetentionConfig(_Model):
    """How long data is kept and how it is downsampled (docs/retention.md)."""

    database: Annotated[str, Field(min_length=1)] = "prognos"
    """The database."""
    raw_policy: Annotated[str, Field(pattern=r"^[A-Za-z0-9_]{1,64}$")] = "autogen"
    """The default retention policy, which every writer without ``rp=`` writes raw data to."""
    raw_days: Annotated[int, Field(ge=1)] | None = 30
    """How long raw data is kept, in days; None keeps it forever."""
    rollups: tuple[Rollup, ...] = Field(default_factory=_default_rollups)
    """The downsampling levels."""
    aggregates: tuple[Aggregate, ...] = ("mean", "min", "max", "last", "count")
    """What each rollup point holds per raw field, as ``<aggregate>_<field>``."""

    @model_validator(mode="after")
    def _distinct_policies(self) -> RetentionConfig:
        names = [self.raw_policy, *(r.policy for r in self.rollups)]
        if len(set(names)) != len(names):
            raise ValueError(f"retention policy names must differ. Got {names} instead")
        return self

    def with_days(
        self,
        *,
        raw_days: int | None,
        rollup_days: Mapping[str, int | None],
    ) -> RetentionConfig:
        """A copy with other durations: ``rollup_days`` maps a rollup's policy to its days."""
        unknown = set(rollup_days) - {r.policy for r in self.rollups}
        if unknown:
            raise ValueError(f"no rollup policy {sorted(unknown)}")
        rollups = tuple(
            r.model_copy(update={"days": rollup_days[r.policy]}) if r.policy in rollup_days else r
            for r in self.rollups
        )
        return RetentionConfig.model_validate(
            {
                **self.model_dump(),
                "raw_days": raw_days,
                "rollups": [r.model_dump() for r in rollups],
            }
        )


@dataclasses.dataclass(frozen=True, slots=True)
class PolicyInfo:
    """A retention policy as the server reports it (``SHOW RETENTION POLICIES``).

    Attributes:
        name: The policy's name.
        duration_s: How long data is kept, in seconds; 0 is forever (InfluxDB's ``INF``).
        shard_duration_s: The shard group duration, in seconds.
        replication: The replication factor.
        default: Whether writes without ``rp=`` go to it.
    """

    name: str
    duration_s: int
    shard_duration_s: int
    replication: int
    default: bool


@dataclasses.dataclass(frozen=True, slots=True)
class ServerState:
    """What `plan_init` compares the wanted set-up with.

    Attributes:
        database_exists: Whether the database exists.
        policies: Its retention policies.
        continuous_queries: Its continuous queries, name to text.
    """

    database_exists: bool
    policies: tuple[PolicyInfo, ...] = ()
    continuous_queries: Mapping[str, str] = dataclasses.field(default_factory=dict)


# ---------------------------------------------------------------------------------------------
# Pure planning


def parse_go_duration(text: str) -> int:
    """Seconds in a Go duration as InfluxDB prints it (``720h0m0s``; ``0s`` is forever).

    Raises:
        ValueError: not such a duration.
    """
    parts = _DURATION_PART.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"not a duration: {text!r}")
    scale = {"h": 3600, "m": 60, "s": 1, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9}
    return round(sum(float(number) * scale[unit] for number, unit in parts))


def shard_duration_s(duration_s: int) -> int:
    """InfluxDB's default shard group duration for a policy of ``duration_s`` (0: forever)."""
    if duration_s == 0 or duration_s > 182 * _DAY_S:
        return 7 * _DAY_S
    if duration_s < 2 * _DAY_S:
        return 3600
    return _DAY_S


def _days_s(days: int | None) -> int:
    return 0 if days is None else days * _DAY_S


def _duration_literal(seconds: int) -> str:
    if seconds == 0:
        return "INF"
    if seconds % _DAY_S == 0:
        return f"{seconds // _DAY_S}d"
    if seconds % 3600 == 0:
        return f"{seconds // 3600}h"
    return f"{seconds}s"


def _interval_literal(seconds: int) -> str:
    if seconds % 3600 == 0:
        return f"{seconds // 3600}h"
    if seconds % 60 == 0:
        return f"{seconds // 60}m"
    return f"{seconds}s"


def wanted_policies(config: RetentionConfig) -> list[PolicyInfo]:
    """The policies `config` asks for, the raw one first and default."""
    wanted = [(config.raw_policy, _days_s(config.raw_days), True)]
    wanted += [(r.policy, _days_s(r.days), False) for r in config.rollups]
    return [PolicyInfo(n, d, shard_duration_s(d), 1, default) for n, d, default in wanted]


def _policy_statement(verb: str, policy: PolicyInfo, database: str) -> str:
    default = " DEFAULT" if policy.default else ""
    return (
        f"{verb} RETENTION POLICY {quote_ident(policy.name)} ON {quote_ident(database)} "
        f"DURATION {_duration_literal(policy.duration_s)} REPLICATION {policy.replication} "
        f"SHARD DURATION {_duration_literal(policy.shard_duration_s)}{default}"
    )


def select_into(
    config: RetentionConfig,
    rollup: Rollup,
    measurement: str,
    *,
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
) -> str:
    """The ``SELECT ... INTO`` of one rollup of one measurement (a time range for backfill).

    Args:
        config: The set-up.
        rollup: The rollup level.
        measurement: The raw measurement.
        start: Inclusive start of the range (aware datetime), or None for a continuous query.
        end: Exclusive end of the range.

    Returns:
        The statement.
    """
    db = quote_ident(config.database)
    aggregates = ", ".join(f"{name}(*)" for name in config.aggregates)
    target = f"{db}.{quote_ident(rollup.policy)}.{quote_ident(measurement)}"
    source = f"{db}.{quote_ident(config.raw_policy)}.{quote_ident(measurement)}"
    where = ""
    if start is not None and end is not None:
        where = f" WHERE time >= '{_rfc3339(start)}' AND time < '{_rfc3339(end)}'"
    group = f"GROUP BY time({_interval_literal(rollup.interval_s)}), *"
    # Every name is quoted by quote_ident and the times are formatted here: no injection.
    return f"SELECT {aggregates} INTO {target} FROM {source}{where} {group}"  # noqa: S608


def continuous_queries(config: RetentionConfig) -> dict[str, str]:
    """The continuous queries `config` asks for: name to ``CREATE CONTINUOUS QUERY`` text."""
    wanted = {}
    for rollup in config.rollups:
        for measurement in rollup.measurements:
            body = select_into(config, rollup, measurement)
            resample = (
                f"RESAMPLE EVERY {_interval_literal(rollup.interval_s)} "
                f"FOR {_interval_literal(rollup.resample_for_s)}"
            )
            fingerprint = hashlib.sha256(f"{resample} {body}".encode()).hexdigest()[:8]
            name = f"{MANAGED_PREFIX}{rollup.policy}_{measurement}_{fingerprint}"
            wanted[name] = (
                f"CREATE CONTINUOUS QUERY {quote_ident(name)} ON {quote_ident(config.database)} "
                f"{resample} BEGIN {body} END"
            )
    return wanted


def plan_init(config: RetentionConfig, state: ServerState) -> list[str]:
    """The statements that bring the server to `config`; empty when it is there already.

    Args:
        config: The wanted set-up.
        state: What the server has (`read_state`).

    Returns:
        InfluxQL statements, to run in order.
    """
    db = quote_ident(config.database)
    policies = wanted_policies(config)
    have = {policy.name: policy for policy in state.policies}
    statements = []
    if not state.database_exists:
        # The database is created with the raw policy as its default (no `autogen` to fix).
        raw = policies[0]
        statements.append(
            f"CREATE DATABASE {db} WITH DURATION {_duration_literal(raw.duration_s)} "
            f"REPLICATION {raw.replication} SHARD DURATION "
            f"{_duration_literal(raw.shard_duration_s)} NAME {quote_ident(raw.name)}"
        )
        have = {raw.name: raw}
    for policy in policies:
        current = have.get(policy.name)
        if current is None:
            statements.append(_policy_statement("CREATE", policy, config.database))
        elif _differs(current, policy):
            statements.append(_policy_statement("ALTER", policy, config.database))
    wanted = continuous_queries(config)
    statements.extend(
        f"DROP CONTINUOUS QUERY {quote_ident(name)} ON {db}"
        for name in sorted(state.continuous_queries)
        if name.startswith(MANAGED_PREFIX) and name not in wanted
    )
    statements.extend(text for name, text in wanted.items() if name not in state.continuous_queries)
    return statements


def _differs(current: PolicyInfo, wanted: PolicyInfo) -> bool:
    # Another policy being default is fixed by making the wanted one default, not by altering it.
    return (
        (current.duration_s, current.shard_duration_s, current.replication)
        != (wanted.duration_s, wanted.shard_duration_s, wanted.replication)
    ) or (wanted.default and not current.default)


def backfill_ranges(
    rollup: Rollup,
    *,
    start: dt.datetime,
    end: dt.datetime,
    now: dt.datetime,
    chunk: dt.timedelta = dt.timedelta(days=1),
) -> list[tuple[dt.datetime, dt.datetime]]:
    """The chunks `backfill` runs for one rollup: aligned to its interval, inside its policy.

    ``start`` is rounded down and ``end`` up to whole intervals. The start is raised to the
    oldest interval the rollup policy still keeps at ``now`` (older points would be refused).

    Args:
        rollup: The rollup level.
        start: Start of the range (aware).
        end: End of the range (aware), after ``start``.
        now: The clock, for the policy's horizon.
        chunk: Longest range per statement (a whole number of intervals is used).

    Returns:
        Consecutive (start, end) pairs; empty when nothing is left to do.
    """
    step = rollup.interval_s
    lo = _floor(start, step)
    hi = _floor(end, step)
    if hi < end:
        hi += dt.timedelta(seconds=step)
    if rollup.days is not None:
        lo = max(
            lo, _floor(now - dt.timedelta(days=rollup.days), step) + dt.timedelta(seconds=step)
        )
    size = dt.timedelta(seconds=max(step, int(chunk.total_seconds()) // step * step))
    ranges = []
    while lo < hi:
        ranges.append((lo, min(lo + size, hi)))
        lo += size
    return ranges


def _floor(moment: dt.datetime, step_s: int) -> dt.datetime:
    seconds = int(moment.timestamp()) // step_s * step_s
    return dt.datetime.fromtimestamp(seconds, tz=dt.UTC)


def _rfc3339(moment: dt.datetime) -> str:
    if moment.tzinfo is None:
        raise ValueError(f"a naive datetime is ambiguous; give a time zone. Got {moment!r}")
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# ---------------------------------------------------------------------------------------------
# I/O: read the server, apply a plan, backfill


def read_state(client: InfluxClient, database: str) -> ServerState:
    """What the server has: whether the database exists, its policies and continuous queries."""
    if database not in client.databases():
        return ServerState(database_exists=False)
    rows = client.query(f"SHOW RETENTION POLICIES ON {quote_ident(database)}", database="").rows()
    policies = [
        PolicyInfo(
            name=str(row["name"]),
            duration_s=parse_go_duration(str(row["duration"])),
            shard_duration_s=parse_go_duration(str(row["shardGroupDuration"])),
            replication=int(str(row["replicaN"])),
            default=row["default"] is True,
        )
        for row in rows
    ]
    queries = {}
    for series in client.query("SHOW CONTINUOUS QUERIES", database="").series:
        if series.name == database:
            queries.update({str(name): str(text) for name, text in series.values})
    return ServerState(database_exists=True, policies=tuple(policies), continuous_queries=queries)


def init_database(
    client: InfluxClient, config: RetentionConfig, *, dry_run: bool = False
) -> list[str]:
    """Create or update the database, retention policies and continuous queries.

    Idempotent: what already matches `config` is left alone.

    Args:
        client: A client with rights to create databases and policies (an admin on 1.x).
        config: The wanted set-up.
        dry_run: Only plan: return the statements without running them.

    Returns:
        The statements run (or, with ``dry_run``, that would run); empty when nothing changed.

    Raises:
        InfluxError: a statement failed (the message names it); earlier ones took effect.
    """
    statements = plan_init(config, read_state(client, config.database))
    if dry_run:
        return statements
    for statement in statements:
        client.query(statement, database=config.database)
        log.info("retention_changed", database=config.database, statement=statement)
    return statements


@dataclasses.dataclass(frozen=True, slots=True)
class BackfillResult:
    """What one backfill statement wrote.

    Attributes:
        policy: The rollup policy.
        measurement: The raw measurement.
        start: Range start (inclusive).
        end: Range end (exclusive).
        written: Rollup points written.
    """

    policy: str
    measurement: str
    start: dt.datetime
    end: dt.datetime
    written: int


def backfill(
    client: InfluxClient,
    config: RetentionConfig,
    *,
    start: dt.datetime,
    end: dt.datetime,
    now: dt.datetime,
    policies: Iterable[str] | None = None,
    chunk: dt.timedelta = dt.timedelta(days=1),
) -> list[BackfillResult]:
    """Roll up a past range, as the continuous queries would have (rewriting is harmless).

    Args:
        client: The client.
        config: The set-up (`init_database` must have created the policies).
        start: Start of the range (aware); rounded down to each rollup's interval.
        end: End of the range (aware); rounded up.
        now: The clock: ranges older than a rollup policy keeps are skipped.
        policies: The rollup policies to fill; None for all.
        chunk: Longest range per statement.

    Returns:
        One result per statement run.

    Raises:
        ValueError: ``end`` is not after ``start``, or an unknown policy.
        InfluxError: a statement failed.
    """
    if end <= start:
        raise ValueError(f"end must be after start. Got start={start}, end={end} instead")
    chosen = list(config.rollups)
    if policies is not None:
        wanted = set(policies)
        unknown = wanted - {r.policy for r in chosen}
        if unknown:
            known = ", ".join(r.policy for r in chosen)
            raise ValueError(f"no rollup policy {', '.join(sorted(unknown))}; known: {known}")
        chosen = [r for r in chosen if r.policy in wanted]
    results = []
    for rollup in chosen:
        for lo, hi in backfill_ranges(rollup, start=start, end=end, now=now, chunk=chunk):
            for measurement in rollup.measurements:
                statement = select_into(config, rollup, measurement, start=lo, end=hi)
                answer = client.query(statement, database=config.database)
                written = sum(int(row.get("written", 0) or 0) for row in answer.rows())
                results.append(BackfillResult(rollup.policy, measurement, lo, hi, written))
    log.info(
        "rollup_backfilled",
        database=config.database,
        start=_rfc3339(start),
        end=_rfc3339(end),
        statements=len(results),
        written=sum(r.written for r in results),
    )
    return results


def describe(config: RetentionConfig) -> Sequence[str]:
    """One line per policy: name, duration, what it holds (for ``prognos db init``)."""

    def days(value: int | None) -> str:
        return "forever" if value is None else f"{value} days"

    lines = [f"{config.raw_policy} (default): raw points, kept {days(config.raw_days)}"]
    for rollup in config.rollups:
        interval = _interval_literal(rollup.interval_s)
        lines.append(
            f"{rollup.policy}: {interval} rollups of {', '.join(rollup.measurements)}, "
            f"kept {days(rollup.days)}; late data recomputed for "
            f"{_interval_literal(rollup.resample_for_s)}"
        )
    return lines
