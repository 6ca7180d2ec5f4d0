"""The scorer's I/O shell: read windows from InfluxDB, score, write ``scores``, decide.

Theory of operation
-------------------
One pass (`Scorer.run_once`) at time ``now``, in phases (each timed, `PassReport.phases`):

1. the champions are (re)loaded when the registry's ``CHAMPION`` pointer moved;
2. the decider restores the saved alerts (docs/alerts.md);
3. **read**: this shard's assets (a stable hash of the asset id, `stable_shard`) are grouped by
   site and profile, ``batch_assets`` at a time; each group's telemetry is read in **one** query
   (``asset = 'a' OR asset = 'b' ...`` or one regular expression, ``read_match``; ``GROUP BY *``
   so that InfluxDB returns one series per asset, decoded straight into one frame per asset);
4. **features**: each asset's window is prepared and each model's feature row computed
   (`prepare_batch`);
5. **inference**: each model runs once over the rows of every asset of the pass, predictions and
   then the explanations ``explain.mode`` wants (`infer_batch`; the consumables' per-asset fits
   run here too). ``at_risk`` explains a target's scores when its highest risk reaches its alert
   policy's ``clear_level`` or its alert is active (`Scorer.explain_rule`); the others are
   written without ``explain`` (`PassReport.explained` counts the explained);
6. **write**: every score of the pass as ``scores`` points (DESIGN.md tags and fields, ``explain``
   a JSON string), ``write_points`` lines per request;
7. **decide**: per asset, the decider feeds the alert engine, creates work orders and applies
   the calendar and usage rules.

``batch_inference: false`` scores, writes and decides asset by asset instead (the path before
batching, kept as the benchmark's baseline): the results are the same (tested).

A replay (`Scorer.replay`) runs passes at ``since + step, since + 2 step, ... until`` with
``now`` set to each: the same code, on past data.

Rules:
1. One asset's failure (no data, a model that cannot take the window, a write error) is counted
   and logged once per change of state; the pass goes on with the next asset.
2. InfluxDB's and the store's errors are the only I/O errors here; nothing else is caught.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
from collections.abc import Iterator, Mapping, Sequence

import numpy as np
import pandas as pd
import structlog
from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

from cloud.registry import Asset, AssetRegistry
from cloud.scoring._config import ProfilePlan, ScoringConfig
from cloud.scoring._core import (
    AssetInput,
    AssetOutcome,
    ConsumableSpec,
    ExplainRule,
    Score,
    explain_rule,
    infer_batch,
    prepare_batch,
    score_asset,
    stable_shard,
)
from cloud.scoring._decide import Decider, Decisions
from cloud.scoring._metrics import ScorerMetrics
from cloud.store import (
    InfluxClient,
    InfluxError,
    Point,
    QueryResult,
    quote_ident,
    quote_literal,
    tag_in,
)
from edge_agent._profile import Profile, ProfileError, ProfileLibrary
from models import LoadedModel, Registry, RegistryError

log = structlog.get_logger("prognos.scoring")

SCORES = "scores"
TELEMETRY = "telemetry"


@dataclasses.dataclass(frozen=True, slots=True)
class Shard:
    """This process's part of the fleet: shard ``index`` of ``count`` (``--shard 0/3``)."""

    index: int = 0
    count: int = 1

    def __post_init__(self) -> None:
        if self.count < 1 or not 0 <= self.index < self.count:
            raise ValueError(f"shard must be i/N with 0 <= i < N. Got {self.index}/{self.count}")

    @classmethod
    def parse(cls, text: str) -> Shard:
        """``"i/N"``.

        Raises:
            ValueError: Not two integers with ``0 <= i < N``.
        """
        index, sep, count = text.partition("/")
        try:
            if not sep:
                raise ValueError(text)  # noqa: TRY301 - one message for every malformed shard
            return cls(int(index), int(count))
        except ValueError:
            raise ValueError(
                f"shard must be i/N with 0 <= i < N, e.g. 0/3. Got {text!r} instead"
            ) from None

    def owns(self, asset_id: str) -> bool:
        """Whether this shard scores `asset_id`."""
        return stable_shard(asset_id, self.count) == self.index


@dataclasses.dataclass(frozen=True, slots=True)
class PassReport:
    """What one pass did."""

    now: dt.datetime
    outcomes: tuple[AssetOutcome, ...]
    decisions: Decisions
    duration_s: float
    read_s: float
    queries: int
    phases: Mapping[str, float] = dataclasses.field(default_factory=dict)
    """Seconds per phase: ``read``, ``features``, ``inference``, ``write``, ``decide``."""

    @property
    def scores(self) -> int:
        """Scores of the pass."""
        return sum(len(o.scores) for o in self.outcomes)

    @property
    def explained(self) -> int:
        """Scores of the pass that carry their explanation (``explain.mode``)."""
        return sum(1 for o in self.outcomes for s in o.scores if s.explained)


PHASES = ("read", "features", "inference", "write", "decide")
"""The timed phases of a pass (`PassReport.phases`)."""


def _ns(ts: dt.datetime) -> int:
    return int(pd.Timestamp(ts).value)


def _chunks(items: Sequence[Asset], size: int) -> Iterator[Sequence[Asset]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class Scorer:
    """Scores this shard's assets on a schedule; one per process.

    Args:
        config: The scoring plans.
        assets: The asset registry.
        profiles: The firmware profiles (consumables, units, parts).
        models: The model registry (champions).
        influx: The InfluxDB client (telemetry read, ``scores`` written).
        decider: Alerts and work orders; None scores without deciding.
        shard: This process's part of the fleet.
        metrics: Counters (shared with a metrics endpoint, if any).
    """

    def __init__(
        self,
        *,
        config: ScoringConfig,
        assets: AssetRegistry,
        profiles: ProfileLibrary,
        models: Registry,
        influx: InfluxClient,
        decider: Decider | None = None,
        shard: Shard | None = None,
        metrics: ScorerMetrics | None = None,
    ) -> None:
        self.config = config
        self.assets = assets
        self.profiles = profiles
        self.registry = models
        self.influx = influx
        self.decider = decider
        self.shard = shard or Shard()
        self.metrics = metrics or ScorerMetrics()
        self.models: dict[str, LoadedModel] = {}
        self._missing_models: set[str] = set()
        self._asset_state: dict[str, str] = {}
        self._warmed = False
        self._rule: ExplainRule | None = None  # set at the start of each pass
        self._threads_set = False

    # ------------------------------------------------------------------ models

    def model_names(self) -> list[str]:
        """Every registry name the plans use."""
        names = {m.name for p in self.config.profiles.values() for m in p.models if m.name}
        return sorted(names)

    def refresh_models(self) -> None:
        """Load each champion, again when its version changed; a missing one is logged once."""
        for name in self.model_names():
            try:
                version = self.registry.resolve(name)
                current = self.models.get(name)
                if current is None or current.version != version:
                    self.models[name] = self.registry.load(name, version)
                    log.info("champion_loaded", model=name, version=version)
                self._missing_models.discard(name)
            except RegistryError as exc:
                if name not in self._missing_models:
                    log.error("champion_unavailable", model=name, error=str(exc))  # noqa: TRY400 - the message names the path; no traceback
                    self._missing_models.add(name)
                self.models.pop(name, None)

    # ------------------------------------------------------------------ fleet

    def my_assets(self) -> list[Asset]:
        """This shard's assets, in registry order."""
        return [a for a in self.assets if self.shard.owns(a.asset_id)]

    def _profile(self, asset: Asset) -> Profile | None:
        try:
            return self.profiles.get(asset.profile)
        except ProfileError:
            return None

    def _read_span(self, plan: ProfilePlan) -> dt.timedelta:
        needs_long = any(m.kind.startswith("consumable") for m in plan.models)
        return max(plan.window, plan.consumable_window) if needs_long else plan.window

    def read_windows(
        self, assets: Sequence[Asset], *, since: dt.datetime, until: dt.datetime
    ) -> dict[str, pd.DataFrame]:
        """Telemetry of `assets` in ``(since, until]``, one query for all, one frame per asset.

        Raises:
            InfluxError: The query failed.
        """
        if self.config.read_match == "regex":
            match = tag_in("asset", (a.asset_id for a in assets))
        else:
            match = " OR ".join(
                f"{quote_ident('asset')} = {quote_literal(a.asset_id)}" for a in assets
            )
        # Names go through quote_ident, values through quote_literal (or tag_in): no
        # injection. GROUP BY *: one series per asset (and gateway, model), tags out of the rows.
        q = (
            f"SELECT * FROM {quote_ident(TELEMETRY)} WHERE ({match}) "  # noqa: S608
            f"AND time > {_ns(since)} AND time <= {_ns(until)} GROUP BY *"
        )
        self.metrics.queries += 1
        frames = _frames_by_asset(self.influx.query(q, epoch="ms"))
        return {a.asset_id: frames.get(a.asset_id, pd.DataFrame()) for a in assets}

    # ------------------------------------------------------------------ one pass

    def run_once(self, now: dt.datetime) -> PassReport:
        """Score every asset of this shard at `now` (one pass)."""
        started = time.perf_counter()
        queries = self.metrics.queries
        self._limit_threads()
        self.refresh_models()
        if self.decider is not None:
            if not self._warmed:
                self._warm(now)
            self.decider.restore()
        self._rule = self.explain_rule()
        phases = dict.fromkeys(PHASES, 0.0)
        decisions = Decisions()
        read: list[tuple[Asset, ProfilePlan, pd.DataFrame]] = []
        outcomes: list[AssetOutcome] = []
        order: dict[str, int] = {}
        for members, plan in self._groups():
            order.update((a.asset_id, len(order)) for a in members)
            if plan is None:
                outcomes.extend(
                    self._record(AssetOutcome(a.asset_id, skipped="no_plan")) for a in members
                )
                continue
            t0 = time.perf_counter()
            windows = self._read(members, plan, now)
            phases["read"] += time.perf_counter() - t0
            if not self.config.batch_inference:
                outcomes += self._one_by_one(
                    members, plan, windows, now, decisions=decisions, phases=phases
                )
                continue
            read.extend((a, plan, windows[a.asset_id]) for a in members if a.asset_id in windows)
        if read:
            outcomes += self._batched(read, now, decisions, phases)
            outcomes.sort(key=lambda o: order[o.asset])  # the groups' order, as asset by asset
        self.metrics.cycles += 1
        self.metrics.last_cycle_s = time.perf_counter() - started
        self.metrics.last_read_s = phases["read"]
        return PassReport(
            now=now,
            outcomes=tuple(outcomes),
            decisions=decisions,
            duration_s=self.metrics.last_cycle_s,
            read_s=phases["read"],
            queries=self.metrics.queries - queries,
            phases=phases,
        )

    def _limit_threads(self) -> None:
        """OpenMP threads of the models, set once for the process (``openmp_threads``)."""
        if self._threads_set or self.config.openmp_threads == 0:
            return
        # Process-wide, not per call: threadpoolctl's library scan costs ~10 ms a call.
        # On shared cores the boosted trees' spinning threads made one asset's scoring 14x
        # slower (measured: 2.8 s vs 0.2 s per engine) with the library default.
        threadpool_limits(limits=self.config.openmp_threads, user_api="openmp")
        self._threads_set = True

    def _groups(self) -> Iterator[tuple[Sequence[Asset], ProfilePlan | None]]:
        """This shard's assets by site and profile, ``batch_assets`` at a time, with the plan."""
        groups: dict[tuple[str, str], list[Asset]] = {}
        for asset in self.my_assets():
            groups.setdefault((asset.site, asset.profile), []).append(asset)
        for (_site, profile_id), members in groups.items():
            plan = self.config.profiles.get(profile_id)
            for chunk in _chunks(members, self.config.batch_assets):
                yield chunk, plan

    def _read(
        self, chunk: Sequence[Asset], plan: ProfilePlan, now: dt.datetime
    ) -> dict[str, pd.DataFrame]:
        """One chunk's windows; none (counted, logged) when the query failed."""
        try:
            return self.read_windows(chunk, since=now - self._read_span(plan), until=now)
        except InfluxError as exc:
            self.metrics.errors["read_failed"] += len(chunk)
            log.error(  # noqa: TRY400 - an I/O failure: the message, not a traceback
                "telemetry_read_failed", assets=[a.asset_id for a in chunk], error=str(exc)
            )
            return {}

    def _input(
        self, asset: Asset, plan: ProfilePlan, raw: pd.DataFrame, now: dt.datetime
    ) -> AssetInput:
        profile = self._profile(asset)
        consumables = [
            ConsumableSpec(c.name, c.signal, c.threshold, c.replace_when)
            for c in (profile.consumables if profile else ())
        ]
        units = {s.name: s.unit for s in (profile.signals if profile else ())}
        units.update({new: units.get(old, "") for old, new in plan.rename.items()})
        short = raw
        if not raw.empty:
            short = raw[raw.index > pd.Timestamp(now - plan.window)]
        return AssetInput(
            asset=asset.asset_id,
            site=asset.site,
            plan=plan,
            raw=short,
            raw_long=raw,
            consumables=consumables,
            units=units,
        )

    def _batched(
        self,
        read: Sequence[tuple[Asset, ProfilePlan, pd.DataFrame]],
        now: dt.datetime,
        decisions: Decisions,
        phases: dict[str, float],
    ) -> list[AssetOutcome]:
        """Features, inference, write and decide for every asset read (the batched phases)."""
        t0 = time.perf_counter()
        items = [self._input(asset, plan, raw, now) for asset, plan, raw in read]
        batch = prepare_batch(
            items, models=self.models, config=self.config, now=now, explain=self._rule
        )
        t1 = time.perf_counter()
        outcomes = [self._record(o) for o in infer_batch(batch)]
        t2 = time.perf_counter()
        self._write([s for o in outcomes for s in o.scores])
        t3 = time.perf_counter()
        for (asset, _plan, _raw), outcome in zip(read, outcomes, strict=True):
            self._decide(asset, outcome, now, decisions)
        t4 = time.perf_counter()
        phases["features"] += t1 - t0
        phases["inference"] += t2 - t1
        phases["write"] += t3 - t2
        phases["decide"] += t4 - t3
        return outcomes

    def _one_by_one(
        self,
        chunk: Sequence[Asset],
        plan: ProfilePlan,
        windows: Mapping[str, pd.DataFrame],
        now: dt.datetime,
        *,
        decisions: Decisions,
        phases: dict[str, float],
    ) -> list[AssetOutcome]:
        """Score, write and decide asset by asset (``batch_inference: false``)."""
        outcomes = []
        for asset in chunk:
            if asset.asset_id not in windows:
                continue  # its read failed
            t0 = time.perf_counter()
            outcome = self._record(self._score(asset, plan, windows[asset.asset_id], now))
            t1 = time.perf_counter()
            self._write(outcome.scores)
            t2 = time.perf_counter()
            self._decide(asset, outcome, now, decisions)
            phases["inference"] += t1 - t0  # features and inference, not separable here
            phases["write"] += t2 - t1
            phases["decide"] += time.perf_counter() - t2
            outcomes.append(outcome)
        return outcomes

    def score_history(
        self, assets: Sequence[Asset], *, since: dt.datetime, until: dt.datetime
    ) -> list[tuple[str, str, dt.datetime, float]]:
        """The stored scores in ``(since, until]`` as the alert engine saw them.

        Per asset, target and time the highest risk: ``(asset, target, ts, risk)``.

        Raises:
            InfluxError: The query failed.
        """
        out: list[tuple[str, str, dt.datetime, float]] = []
        for chunk in _chunks(assets, 50):
            match = " OR ".join(
                f"{quote_ident('asset')} = {quote_literal(a.asset_id)}" for a in chunk
            )
            q = (
                f"SELECT {quote_ident('health')}, {quote_ident('asset')}, {quote_ident('target')} "  # noqa: S608 - quoted as above
                f"FROM {quote_ident(SCORES)} WHERE ({match}) "
                f"AND time > {_ns(since)} AND time <= {_ns(until)}"
            )
            frame = self.influx.query_df(q)
            if frame.empty:
                continue
            frame = frame.reset_index()
            worst = frame.groupby(["asset", "target", "time"], sort=False)["health"].min()
            for row in worst.reset_index().itertuples(index=False):
                ts = pd.Timestamp(str(row.time)).to_pydatetime()
                risk = 1.0 - float(str(row.health)) / 100.0
                out.append((str(row.asset), str(row.target), ts, risk))
        return out

    def _warm(self, now: dt.datetime) -> None:
        assert self.decider is not None  # noqa: S101 - called only with a decider
        try:
            history = self.score_history(
                self.my_assets(), since=now - self.config.warm_up, until=now
            )
        except InfluxError as exc:
            log.error("score_history_unavailable", error=str(exc))  # noqa: TRY400 - I/O failure
            return  # tried again on the next pass
        observed = self.decider.warm(history)
        self._warmed = True
        log.info(
            "alert_engine_warmed", scores=observed, since=(now - self.config.warm_up).isoformat()
        )

    def replay(
        self, *, since: dt.datetime, until: dt.datetime, step: dt.timedelta
    ) -> list[PassReport]:
        """Passes at ``since + step``, ``since + 2 step`` ... up to `until`, at that ``now``."""
        if step <= dt.timedelta(0):
            raise ValueError(f"step must be positive. Got {step} instead")
        reports = []
        now = since + step
        while now <= until:
            reports.append(self.run_once(now))
            now += step
        return reports

    def _score(
        self, asset: Asset, plan: ProfilePlan, raw: pd.DataFrame, now: dt.datetime
    ) -> AssetOutcome:
        item = self._input(asset, plan, raw, now)
        return score_asset(
            asset=item.asset,
            site=item.site,
            plan=plan,
            raw=item.raw,
            raw_long=item.raw_long,
            models=self.models,
            config=self.config,
            now=now,
            consumables=item.consumables,
            units=item.units,
            explain=self._rule,
        )

    def explain_rule(self) -> ExplainRule:
        """Which scores this pass explains: ``explain.mode`` at the decider's alert policies.

        ``at_risk``: the levels are the decider's engine's own (`AlertEngine.policy_for`), and the
        (asset, target) of its active alerts are always explained (a score that holds an alert
        below its clear level can still build its work order). Without a decider: the
        configuration's policies, no alert held.
        """
        if self.decider is None:
            return explain_rule(self.config)
        engine = self.decider.engine
        held = [(a.asset, a.target) for a in engine.alerts() if a.active]
        return explain_rule(self.config, policy_for=engine.policy_for, held=held)

    def _record(self, outcome: AssetOutcome) -> AssetOutcome:
        state = outcome.skipped or ("scored" if outcome.scores else "no_scores")
        if outcome.skipped:
            self.metrics.assets_skipped[outcome.skipped] += 1
        elif outcome.scores:
            self.metrics.assets_scored += 1
        else:
            self.metrics.assets_skipped["no_scores"] += 1
        for model, reason in outcome.model_skips:
            self.metrics.model_skips[f"{model}/{reason}"] += 1
        self.metrics.scores_explained += sum(1 for s in outcome.scores if s.explained)
        before = self._asset_state.get(outcome.asset)
        if before != state:
            self._asset_state[outcome.asset] = state
            if state == "scored":
                log.info("asset_scoring", asset=outcome.asset, before=before)
            else:
                log.warning("asset_not_scored", asset=outcome.asset, reason=state)
        return outcome

    def _write(self, scores: Sequence[Score]) -> None:
        """The scores as ``scores`` points, ``write_points`` per request."""
        size = self.config.write_points
        for start in range(0, len(scores), size):
            part = scores[start : start + size]
            points = [
                Point(SCORES, s.tags(), s.fields(), int(pd.Timestamp(s.ts).value // 1_000_000))
                for s in part
            ]
            try:
                self.influx.write(points, precision="ms")
            except InfluxError as exc:
                self.metrics.errors["write_failed"] += 1
                assets = sorted({s.asset for s in part})
                log.error(  # noqa: TRY400 - an I/O failure: the message, not a traceback
                    "scores_write_failed", assets=assets[:20], count=len(assets), error=str(exc)
                )
                continue
            self.metrics.scores_written += len(points)

    def _decide(
        self, asset: Asset, outcome: AssetOutcome, now: dt.datetime, into: Decisions
    ) -> None:
        if self.decider is None:
            return
        profile = self._profile(asset)
        parts: list[Decisions] = []
        if outcome.scores:
            parts.append(self.decider.on_scores(asset, profile, outcome.scores, now=now))
        if self.config.rules.enabled and profile is not None:
            hours = outcome.hours_now
            if hours is None:
                hours = asset.operating_hours
            parts.append(self.decider.on_rules(asset, profile, hours_now=hours, now=now))
        for d in parts:
            into.alert_changes += d.alert_changes
            into.work_orders_created += d.work_orders_created
            into.work_orders_cancelled += d.work_orders_cancelled
            into.work_orders_updated += d.work_orders_updated
            into.rule_work_orders += d.rule_work_orders
            self.metrics.alert_changes += d.alert_changes
            self.metrics.work_orders_created += d.work_orders_created
            self.metrics.work_orders_cancelled += d.work_orders_cancelled
            self.metrics.work_orders_updated += d.work_orders_updated
            self.metrics.rule_work_orders += d.rule_work_orders


def _frames_by_asset(result: QueryResult) -> dict[str, pd.DataFrame]:
    """One frame per ``asset`` tag of a ``GROUP BY *`` answer: UTC time index, one column per field.

    Columns no row of the asset fills are dropped (the answer lists every field of the
    measurement); an asset with several series (its gateway or model changed in the window)
    gets them joined in time order.
    """
    parts: dict[str, list[pd.DataFrame]] = {}
    for series in result.series:
        asset = series.tags.get("asset")
        rows = series.values  # noqa: PD011 - a `cloud.store.Series`, not pandas
        if asset is None or not rows or series.columns[:1] != ("time",):
            continue
        frame = pd.DataFrame(list(rows), columns=list(series.columns))
        times = frame.pop("time").to_numpy(dtype=np.int64)
        frame.index = pd.DatetimeIndex(pd.to_datetime(times, unit="ms", utc=True), name="time")
        parts.setdefault(asset, []).append(frame.dropna(axis=1, how="all"))
    return {
        asset: frames[0] if len(frames) == 1 else pd.concat(frames).sort_index(kind="stable")
        for asset, frames in parts.items()
    }


def summary(report: PassReport) -> Mapping[str, object]:
    """A pass as one log line's key/values."""
    skipped: dict[str, int] = {}
    for o in report.outcomes:
        if o.skipped:
            skipped[o.skipped] = skipped.get(o.skipped, 0) + 1
    return {
        "now": report.now.isoformat(),
        "assets": len(report.outcomes),
        "scored": sum(1 for o in report.outcomes if o.scores),
        "scores": report.scores,
        "explained": report.explained,
        "skipped": skipped,
        "queries": report.queries,
        "read_s": round(report.read_s, 3),
        "phases_s": {k: round(v, 3) for k, v in report.phases.items()},
        "duration_s": round(report.duration_s, 3),
        "alert_changes": report.decisions.alert_changes,
        "work_orders": report.decisions.work_orders_created,
        "rule_work_orders": report.decisions.rule_work_orders,
    }
