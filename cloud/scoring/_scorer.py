"""The scorer's I/O shell: read windows from InfluxDB, score, write ``scores``, decide.

Theory of operation
-------------------
One pass (`Scorer.run_once`) at time ``now``:

1. the champions are (re)loaded when the registry's ``CHAMPION`` pointer moved;
2. the decider restores the saved alerts (docs/alerts.md);
3. this shard's assets (a stable hash of the asset id, `stable_shard`) are grouped by site and
   profile, ``batch_assets`` at a time; each group's telemetry is read in **one** query
   (``asset = 'a' OR asset = 'b' ...``, the plan's longest window ending at ``now``);
4. the pure core scores each asset; the scores are written as ``scores`` points (DESIGN.md tags
   and fields, ``explain`` a JSON string); the decider feeds them to the alert engine, creates
   work orders, and applies the calendar and usage rules.

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

import pandas as pd
import structlog

from cloud.registry import Asset, AssetRegistry
from cloud.scoring._config import ProfilePlan, ScoringConfig
from cloud.scoring._core import AssetOutcome, ConsumableSpec, Score, score_asset, stable_shard
from cloud.scoring._decide import Decider, Decisions
from cloud.scoring._metrics import ScorerMetrics
from cloud.store import InfluxClient, InfluxError, Point, quote_ident, quote_literal
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
        """Telemetry of `assets` in ``(since, until]``, one query for all, split by asset.

        Raises:
            InfluxError: The query failed.
        """
        match = " OR ".join(f"{quote_ident('asset')} = {quote_literal(a.asset_id)}" for a in assets)
        # Names go through quote_ident, values through quote_literal: no injection.
        q = (
            f"SELECT * FROM {quote_ident(TELEMETRY)} WHERE ({match}) "  # noqa: S608
            f"AND time > {_ns(since)} AND time <= {_ns(until)}"
        )
        self.metrics.queries += 1
        frame = self.influx.query_df(q)
        if frame.empty or "asset" not in frame.columns:
            return {a.asset_id: pd.DataFrame() for a in assets}
        groups = {str(k): g for k, g in frame.groupby("asset", sort=False)}
        return {
            a.asset_id: groups.get(a.asset_id, pd.DataFrame()).dropna(axis=1, how="all")
            for a in assets
        }

    # ------------------------------------------------------------------ one pass

    def run_once(self, now: dt.datetime) -> PassReport:
        """Score every asset of this shard at `now` (one pass)."""
        started = time.perf_counter()
        queries = self.metrics.queries
        read_s = 0.0
        self.refresh_models()
        if self.decider is not None:
            if not self._warmed:
                self._warm(now)
            self.decider.restore()
        outcomes: list[AssetOutcome] = []
        decisions = Decisions()
        groups: dict[tuple[str, str], list[Asset]] = {}
        for asset in self.my_assets():
            groups.setdefault((asset.site, asset.profile), []).append(asset)
        for (_site, profile_id), members in groups.items():
            plan = self.config.profiles.get(profile_id)
            for chunk in _chunks(members, self.config.batch_assets):
                if plan is None:
                    outcomes.extend(
                        self._record(AssetOutcome(a.asset_id, skipped="no_plan")) for a in chunk
                    )
                    continue
                span = self._read_span(plan)
                t0 = time.perf_counter()
                try:
                    windows = self.read_windows(chunk, since=now - span, until=now)
                except InfluxError as exc:
                    self.metrics.errors["read_failed"] += len(chunk)
                    log.error(  # noqa: TRY400 - an I/O failure: the message, not a traceback
                        "telemetry_read_failed", assets=[a.asset_id for a in chunk], error=str(exc)
                    )
                    continue
                finally:
                    read_s += time.perf_counter() - t0
                for asset in chunk:
                    outcome = self._score(asset, plan, windows[asset.asset_id], now)
                    outcomes.append(self._record(outcome))
                    self._write(outcome.scores)
                    self._decide(asset, outcome, now, decisions)
        self.metrics.cycles += 1
        self.metrics.last_cycle_s = time.perf_counter() - started
        self.metrics.last_read_s = read_s
        return PassReport(
            now=now,
            outcomes=tuple(outcomes),
            decisions=decisions,
            duration_s=self.metrics.last_cycle_s,
            read_s=read_s,
            queries=self.metrics.queries - queries,
        )

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
        return score_asset(
            asset=asset.asset_id,
            site=asset.site,
            plan=plan,
            raw=short,
            raw_long=raw,
            models=self.models,
            config=self.config,
            now=now,
            consumables=consumables,
            units=units,
        )

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
        before = self._asset_state.get(outcome.asset)
        if before != state:
            self._asset_state[outcome.asset] = state
            if state == "scored":
                log.info("asset_scoring", asset=outcome.asset, before=before)
            else:
                log.warning("asset_not_scored", asset=outcome.asset, reason=state)
        return outcome

    def _write(self, scores: Sequence[Score]) -> None:
        if not scores:
            return
        points = [
            Point(SCORES, s.tags(), s.fields(), int(pd.Timestamp(s.ts).value // 1_000_000))
            for s in scores
        ]
        try:
            self.influx.write(points, precision="ms")
        except InfluxError as exc:
            self.metrics.errors["write_failed"] += 1
            log.error("scores_write_failed", asset=scores[0].asset, error=str(exc))  # noqa: TRY400
            return
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
        "scores": sum(len(o.scores) for o in report.outcomes),
        "skipped": skipped,
        "queries": report.queries,
        "read_s": round(report.read_s, 3),
        "duration_s": round(report.duration_s, 3),
        "alert_changes": report.decisions.alert_changes,
        "work_orders": report.decisions.work_orders_created,
        "rule_work_orders": report.decisions.rule_work_orders,
    }
