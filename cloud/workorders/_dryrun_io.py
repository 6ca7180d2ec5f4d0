"""The dry run's I/O: stored scores streamed from InfluxDB, real failures from the store and files.

Scores are read a batch of assets and a span of time per query (``GROUP BY asset, target``), so
memory holds one batch's span, never the whole history; each (asset, target) comes out in time
order, which is all `cloud.workorders.AlertReplay` needs.

Failures come from (a) the store's feedback labels with *failure confirmed* (the work order's
asset and failure mode, at the time of the feedback), and (b) files: a CSV with the columns
``asset``, ``failed_at`` (ISO 8601) and optionally ``failure_mode``, or the plant simulator's
``ground_truth.jsonl`` (lines with ``"event": "failure"``, their ``wall_ms`` and
``failure_mode``: the simulated plant's readings carry wall-clock time). No InfluxDB measurement
holds failures: ``edge_events`` carries device and threshold events, not confirmed failures.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path

from cloud._args import parse_time
from cloud.store import InfluxClient, quote_ident, quote_literal
from cloud.workorders._dryrun import Failure, ScoreAt
from cloud.workorders._store import Store

SCORES = "scores"
FIELDS = ("health", "probability", "horizon_h", "rul_lo")


class FailureFileError(ValueError):
    """A failures file cannot be read; the message names the file, the line and the value."""


def _ms(ts: dt.datetime) -> int:
    return int(ts.timestamp() * 1000)


def _float(value: object) -> float | None:
    return None if value is None or isinstance(value, str) else float(value)  # type: ignore[arg-type]


def scores_query(assets: Sequence[str], *, since: dt.datetime, until: dt.datetime) -> str:
    """The InfluxQL of one batch and span: ``[since, until)``, one series per (asset, target)."""
    match = " OR ".join(f"{quote_ident('asset')} = {quote_literal(a)}" for a in assets)
    columns = ", ".join(quote_ident(f) for f in FIELDS)
    return (
        f"SELECT {columns} FROM {quote_ident(SCORES)} WHERE ({match}) "  # noqa: S608 - quoted
        f"AND time >= {_ms(since)}ms AND time < {_ms(until)}ms "
        f"GROUP BY {quote_ident('asset')}, {quote_ident('target')}"
    )


def group_rows(asset: str, target: str, rows: Sequence[Mapping[str, object]]) -> list[ScoreAt]:
    """One series' rows as the scorer's decider sees them: one `ScoreAt` per time.

    Per time (several models may score one target): the risk of the lowest health; the
    probability and horizon of the riskiest score that has one; the lowest remaining-life bound
    (`cloud.scoring.Decider.on_scores`).
    """
    by_time: dict[int, list[Mapping[str, object]]] = {}
    for row in rows:
        if row.get("health") is not None:
            by_time.setdefault(int(row["time"]), []).append(row)  # type: ignore[call-overload]
    out = []
    for ms in sorted(by_time):
        group = sorted(by_time[ms], key=lambda r: _float(r["health"]) or 0.0)
        health = _float(group[0]["health"]) or 0.0
        prob = next((r for r in group if r.get("probability") is not None), None)
        bounds = [b for r in group if (b := _float(r.get("rul_lo"))) is not None]
        out.append(
            ScoreAt(
                asset=asset,
                target=target,
                ts=dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC),
                risk=1.0 - health / 100.0,
                probability=None if prob is None else _float(prob["probability"]),
                horizon_h=None if prob is None else _float(prob.get("horizon_h")),
                rul_lo_h=min(bounds) if bounds else None,
            )
        )
    return out


def stream_scores(
    influx: InfluxClient,
    assets: Sequence[str],
    *,
    since: dt.datetime,
    until: dt.datetime,
    batch_assets: int = 20,
    span: dt.timedelta = dt.timedelta(days=7),
    progress: Callable[[int, int], None] | None = None,
) -> Iterator[ScoreAt]:
    """Every stored score of `assets` in ``[since, until)``; each key's in time order.

    Args:
        influx: The client (its database holds ``scores``).
        assets: Asset ids.
        since: Inclusive start.
        until: Exclusive end.
        batch_assets: Assets per query.
        span: Time per query.
        progress: Called with (assets done, assets) after each batch.

    Raises:
        cloud.store.InfluxError: A query failed.
    """
    done = 0
    for start in range(0, len(assets), batch_assets):
        batch = assets[start : start + batch_assets]
        lo = since
        while lo < until:
            hi = min(lo + span, until)
            result = influx.query(scores_query(batch, since=lo, until=hi), epoch="ms")
            for series in result.series:
                rows = list(series.rows())
                yield from group_rows(
                    str(series.tags.get("asset", "")), str(series.tags.get("target", "")), rows
                )
            lo = hi
        done += len(batch)
        if progress is not None:
            progress(done, len(assets))


def label_failures(store: Store) -> list[Failure]:
    """The store's feedback labels with *failure confirmed*."""
    return [
        Failure(
            asset=str(row["asset"]),
            at=dt.datetime.fromisoformat(str(row["at"])),
            failure_mode=str(row["target"]),
            source="label",
        )
        for row in store.labels()
        if row["failure_confirmed"] == 1
    ]


def _when(text: str, where: str) -> dt.datetime:
    try:
        return parse_time(text)
    except ValueError as exc:
        raise FailureFileError(f"{where}: failed_at: {exc}.") from None


def file_failures(path: Path) -> list[Failure]:
    """Failures from a CSV (``asset,failed_at[,failure_mode]``) or a ``ground_truth.jsonl``.

    Raises:
        FailureFileError: Unreadable, a missing column, or a bad time (names file and line).
    """
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise FailureFileError(f"{path}: cannot read the failures: {exc}") from exc
    out = []
    if path.suffix in {".jsonl", ".json"}:
        for n, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                if record.get("event") != "failure":
                    continue
                at = dt.datetime.fromtimestamp(int(record["wall_ms"]) / 1000, tz=dt.UTC)
                mode = record.get("failure_mode")
                out.append(Failure(str(record["asset"]), at, mode and str(mode), path.name))
            except (ValueError, KeyError, TypeError, AttributeError) as exc:
                raise FailureFileError(f"{path}:{n}: not a failure record: {exc}") from None
        return out
    reader = csv.DictReader(text.splitlines())
    missing = {"asset", "failed_at"} - set(reader.fieldnames or ())
    if missing:
        raise FailureFileError(
            f"{path}: the header must name asset and failed_at (and optionally failure_mode). "
            f"Got {reader.fieldnames!r} instead."
        )
    for n, row in enumerate(reader, 2):
        mode = (row.get("failure_mode") or "").strip() or None
        at = _when(row["failed_at"] or "", f"{path}:{n}")
        out.append(Failure(row["asset"].strip(), at, mode, path.name))
    return out
