#!/usr/bin/env python3
"""Benchmark a full scoring cycle (issue 7): N assets with their windows in a real InfluxDB.

What one ``prognos score`` pass does, timed phase by phase, for N = 1,000 and 10,000 assets
(``--assets``; ``--quick``: 50 and 200):

1. The script starts its own influxd (``scripts/services.py start`` in a temporary folder, as
   ``ingest.py`` does, through its ``services`` helper) and writes the telemetry of the largest N
   into a fresh database **the way the ingester stores it**: contract-v1 telemetry payloads (up
   to 500 readings each, one gateway per 10 assets) go through the ingester's own core
   (`cloud.ingest.Classifier`: same validation, measurement, tags ``site/gateway/asset/model``,
   field types and line protocol, plus its ``ingest_batches`` bookkeeping points), and its lines
   are written as they are. Not timed.
2. Each asset is a TurboMon TM-21 engine (profile ``turbomon_tm21_1.0``, C-MAPSS signals): asset
   *i* replays FD001 training engine *u* (seeded) up to a cycle *c* of its life, the 72 cycles of
   the shipped plan's 72 h window, one cycle an hour, polled twice per cycle (20 min apart, as the
   agent does), the last poll 20 min before the scoring time. 10 sites, 10 assets a gateway.
   The fleet is mostly healthy: ``--degraded`` (default 0.1) of the engines are in the last
   ``DEGRADED_CYCLES`` (50) cycles of their run to failure, the others at a random cycle at least
   ``HEALTHY_MARGIN`` (100) cycles before it, replaying a run long enough for that (a maintained
   fleet; a uniform point of life, as before, put about half the engines within 60 cycles of
   failure). What share of scores gets explained (``at_risk``) then depends on the champions:
   the RUL interval's lower bound is what counts.
3. The assets are registered (`cloud.registry.AssetRegistry`); the champions ``cmapss_rul`` and
   ``cmapss_failure`` are trained by ``prognos train`` (its own code path, quick parameters:
   ``--max-units 20``, 30 boosting rounds x 3 folds for RUL, 20 rounds for the failure model) into
   a temporary registry and promoted, or taken from ``--models DIR`` (e.g. ``var/models``, the
   full-size champions).
4. A `Scorer` with the shipped plans, a `Decider` on a fresh SQLite store (alerts and work orders,
   as ``prognos score --state``) scores the first N assets: one untimed first pass (model load,
   alert warm-up), then ``--repeats`` timed passes (median, min-max), one minute apart. Each pass is
   split into the scorer's phases (`PassReport.phases`): **read** (``batch_assets`` assets per
   InfluxDB query, ``read_match``), **features** (windows and feature rows), **inference** (each
   model once over every asset's row: predictions, then the explanations ``explain.mode`` wants,
   ``--explain``, default ``at_risk``; consumable fits), **write** (``scores`` in batched line
   protocol), **decide** (alert engine, work orders, rules). The table shows the explained
   fraction of each pass's scores (``expl``).
5. **Baseline**, in the same run: the per-asset path (``batch_inference: false``, one predict and
   one explanation per asset and model, as before issue 7's batching) on the first
   ``--baseline-assets`` assets (default 100: about 0.2-1.5 s an asset), after its own untimed
   first pass. The script checks that both paths wrote the same scores for those assets (exit 1
   if not).
6. **Explain baseline** (``--always-assets``, default 200; 0: none): ``explain: always`` (every
   score explained, the behaviour before ``at_risk``) on the first assets, batched, to compare the
   cost per asset; the script checks that its scores equal the main run's for those assets, and
   that every score the main run explained carries the same explanation (exit 1 if not).
7. **Read strategies** (``--read-sweep``, on by default): the read phase alone for the largest
   N <= 1,000, per query form (``OR`` list or one regular expression) and assets per query.

Output: per N the median pass, its phases, assets/s, queries, scores, peak RSS (Linux ``VmHWM``
of this process, reset before each N: it includes the N windows, features and scores in memory),
then the growth ratio time(largest N) / time(smallest N) with its ideal (N ratio), and the
batched/per-asset ratio per asset. Timings are reported, never asserted.

    .venv/bin/python scripts/bench/scoring_cycle.py                 # 1,000 and 10,000 assets
    .venv/bin/python scripts/bench/scoring_cycle.py --quick         # smoke run, a few minutes
    .venv/bin/python scripts/bench/scoring_cycle.py --models var/models --assets 1000
    .venv/bin/python scripts/bench/scoring_cycle.py --batch-assets 100 --read-match regex
    .venv/bin/python scripts/bench/scoring_cycle.py --assets 200 --always-assets 100 \
        --baseline-assets 20 --no-read-sweep                        # a few minutes
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import io
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

# This folder's helpers: the services of ingest.py, the RSS probes of scoring.py.
from ingest import Services, services  # noqa: E402
from scoring import peak_rss_mb, reset_peak_rss  # noqa: E402

from cloud._logging import configure_logging  # noqa: E402
from cloud.ingest import Classifier, FieldTypes, SeqWindow  # noqa: E402
from cloud.registry import Asset, AssetRegistry  # noqa: E402
from cloud.scoring import Decider, PassReport, Scorer, ScoringConfig  # noqa: E402
from cloud.scoring._scorer import PHASES  # noqa: E402
from cloud.sim._trajectory import read_cmapss_units  # noqa: E402 - the simulator's C-MAPSS reader
from cloud.store import InfluxAuth, InfluxClient  # noqa: E402
from cloud.workorders import ServicePolicy, Store  # noqa: E402
from edge_agent._profile import ProfileLibrary  # noqa: E402
from models import Registry  # noqa: E402
from models._cli import train_main  # noqa: E402 - `prognos train` itself
from prognos_contract import TELEMETRY_SCHEMA_ID  # noqa: E402

DATA = ROOT.parent / "shared" / "datasets" / "cmapss"
PROFILE = "turbomon_tm21_1.0"
SIZES = (1_000, 10_000)
QUICK_SIZES = (50, 200)
NOW = dt.datetime(2026, 11, 20, 12, 0, tzinfo=dt.UTC)
CYCLES = 72  # the shipped plan's window: 72 h at one cycle an hour
POLLS_MIN = (0, 20)  # two polls per cycle
LAST_POLL_BEFORE = dt.timedelta(minutes=20)
SITES = 10
ASSETS_PER_GATEWAY = 10
READINGS_PER_MESSAGE = 500
LINES_PER_WRITE = 5_000
PREFIX = "prognos/v1"
QUICK_TRAIN = (
    ["cmapss_rul", "--max-units", "20", "--param", "max_iter=30", "--param", "n_folds=3"],
    ["cmapss_failure", "--max-units", "20", "--param", "max_iter=20", "--param", "folds=2"],
)
DEGRADED = 0.1
"""The default share of engines near the end of their life."""
DEGRADED_CYCLES = 50
"""A degraded engine is within this many cycles of failure."""
HEALTHY_MARGIN = 100
"""A healthy engine is at least this many cycles from failure (or at its 72nd cycle)."""
SWEEP_MAX = 1_000
"""The read sweep runs on the largest N up to this."""
SWEEP = (("or", 20), ("or", 100), ("or", 500), ("regex", 100), ("regex", 500), ("regex", 1000))


# ------------------------------------------------------------------------------------ fleet


def site_of(i: int) -> str:
    """Asset *i*'s site."""
    return f"site-{i % SITES:02d}"


def gateway_of(i: int) -> str:
    """Asset *i*'s gateway (10 assets per gateway)."""
    return f"gw-{i % SITES:02d}-{i // (SITES * ASSETS_PER_GATEWAY)}"


def asset_record(i: int) -> Asset:
    """Asset *i* as the registry holds it."""
    return Asset.model_validate(
        {
            "asset_id": f"engine-{i:05d}",
            "site": site_of(i),
            "customer": "Bench Airlines",
            "tier": "Regular",
            "model": "TM-21",
            "firmware": "1.0",
            "profile": PROFILE,
            "serial": f"SN-{i:05d}",
            "asset_class": "engine",
            "team": "engine-shop",
            "criticality": "medium",
            "commissioned": "2026-01-01",
        }
    )


def engine_readings(
    i: int, units: dict[int, list[dict[str, float]]], seed: int, degraded: float = DEGRADED
) -> Iterator[dict[str, Any]]:
    """Asset *i*'s window: 72 cycles of a seeded FD001 engine, two polls per cycle.

    With probability `degraded` the engine is within `DEGRADED_CYCLES` of failure, otherwise
    at least `HEALTHY_MARGIN` from it (module docstring, 2).

    Contract-v1 readings as JSON-ready dicts (the shape `prognos_contract.encode_telemetry`
    writes; building `Reading`s, which check every field, took longer than the whole write).
    """
    rng = np.random.default_rng([seed, i])
    # The cycle the engine is at now (FD001 runs last 128-362 cycles): a healthy engine replays a
    # run long enough for its window to end `HEALTHY_MARGIN` cycles before the failure.
    if rng.random() < degraded:
        rows = units[sorted(units)[int(rng.integers(len(units)))]]
        end = int(rng.integers(max(CYCLES, len(rows) - DEGRADED_CYCLES), len(rows) + 1))
    else:
        long = sorted(u for u, r in units.items() if len(r) >= CYCLES + HEALTHY_MARGIN)
        rows = units[long[int(rng.integers(len(long)))]]
        end = int(rng.integers(CYCLES, len(rows) - HEALTHY_MARGIN + 1))
    last = NOW - LAST_POLL_BEFORE - dt.timedelta(minutes=POLLS_MIN[-1])
    for cycle in range(end - CYCLES + 1, end + 1):
        at = last - dt.timedelta(hours=end - cycle)
        values: dict[str, float | int | str] = {k: float(v) for k, v in rows[cycle - 1].items()}
        values |= {"engine_state": "running", "fault_code": 0, "cycle_count": cycle}
        for poll in POLLS_MIN:
            ms = int((at + dt.timedelta(minutes=poll)).timestamp() * 1000)
            yield {"asset": f"engine-{i:05d}", "ts": ms, "values": values}


def load_fleet(
    influx: InfluxClient, n: int, registry: AssetRegistry, seed: int, degraded: float = DEGRADED
) -> int:
    """Write `n` assets' windows through the ingester's core; returns the points written."""
    units = read_cmapss_units(DATA / "train_FD001.txt")
    classifier = Classifier(
        prefix=PREFIX,
        ingester="bench",
        types=FieldTypes(),
        seen=SeqWindow(1_000_000),
        registry=registry,
    )
    now_ms = int(NOW.timestamp() * 1000)
    seqs: dict[str, int] = {}
    lines: list[str] = []
    written = 0

    def flush() -> None:
        nonlocal written
        influx.write(("\n".join(lines) + "\n").encode(), precision="ns")
        written += len(lines)
        lines.clear()

    for first in range(0, n, ASSETS_PER_GATEWAY):
        gateway = gateway_of(first)
        readings = [
            r
            for i in range(first, min(first + ASSETS_PER_GATEWAY, n))
            for r in engine_readings(i, units, seed, degraded)
        ]
        for start in range(0, len(readings), READINGS_PER_MESSAGE):
            seqs[gateway] = seqs.get(gateway, 0) + 1
            payload = {
                "schema": TELEMETRY_SCHEMA_ID,
                "gateway": gateway,
                "seq": seqs[gateway],
                "readings": readings[start : start + READINGS_PER_MESSAGE],
            }
            out = classifier.classify(
                f"{PREFIX}/{site_of(first)}/{gateway}/telemetry",
                json.dumps(payload, separators=(",", ":")).encode(),
                content_type=None,
                now_ms=now_ms,
            )
            if out.rejects or out.whole or out.unknown_assets:
                raise SystemExit(f"the ingester's core refused bench data: {out.rejects[:3]}")
            lines.extend(out.lines)
            classifier.seen.add(classifier.pending)
            classifier.pending.clear()
            if len(lines) >= LINES_PER_WRITE:
                flush()
    if lines:
        flush()
    return written


# ------------------------------------------------------------------------------------ models


def champions(models: Path | None, work: Path, say: Any) -> Path:  # noqa: ANN401
    """The registry to score with: `models`, or quick champions trained by ``prognos train``."""
    if models is not None:
        return models
    root = work / "models"
    for argv in QUICK_TRAIN:
        started = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            code = train_main([*argv, "--registry", str(root), "--promote"])
        if code != 0:
            raise SystemExit(f"prognos train {' '.join(argv)} failed (exit {code})")
        say(f"trained {argv[0]} ({' '.join(argv[1:])}) in {time.perf_counter() - started:.0f} s")
    return root


def describe(root: Path) -> str:
    """Trees per model: what inference and explanations cost."""
    reg = Registry(root)
    rul, failure = reg.load("cmapss_rul"), reg.load("cmapss_failure")
    rul_trees = sum(m.n_iter_ for m in rul.estimator.regressor_.estimators_)
    cal = failure.estimator.classifier_.calibrated_.calibrated_classifiers_
    fail_trees = sum(c.estimator.n_iter_ for c in cal)
    return (
        f"cmapss_rul {rul.version} ({rul_trees} trees, {len(rul.estimator.feature_names_)} "
        f"features), cmapss_failure {failure.version} ({fail_trees} trees x "
        f"{len(failure.estimator.horizons_)} horizons, "
        f"{len(failure.estimator.feature_names_in_)} features) in {root}"
    )


# ------------------------------------------------------------------------------------ cycles


@dataclass(slots=True)
class Result:
    """One path at one N: the timed passes."""

    path: str
    n: int
    passes: list[dict[str, float]] = field(default_factory=list)
    first_pass_s: float = 0.0
    queries: int = 0
    scores: int = 0
    explained: int = 0
    scored: int = 0
    peak_rss_mb: float = 0.0

    @property
    def median_s(self) -> float:
        """Median pass duration."""
        return statistics.median(p["total"] for p in self.passes)

    def phase(self, name: str) -> float:
        """Median of one phase over the passes."""
        return statistics.median(p[name] for p in self.passes)


def make_scorer(
    config: ScoringConfig, assets: Sequence[Asset], models: Path, influx: InfluxClient, state: Path
) -> tuple[Scorer, Store]:
    """A scorer with a decider on a fresh store, as ``prognos score --state``."""
    store = Store(state)
    decider = Decider(
        store=store,
        policy=ServicePolicy(),
        alert_policy=config.alert,
        alert_policies=config.alerts,
        rules_lookahead=config.rules.lookahead,
    )
    scorer = Scorer(
        config=config,
        assets=AssetRegistry(assets),
        profiles=ProfileLibrary.load(ROOT / "firmware_profiles"),
        models=Registry(models),
        influx=influx,
        decider=decider,
    )
    return scorer, store


def run_cycles(
    path: str,
    scorer: Scorer,
    n: int,
    repeats: int,
    say: Any,  # noqa: ANN401
) -> tuple[Result, PassReport]:
    """One untimed first pass, then `repeats` timed passes a minute apart."""
    reset_peak_rss()
    result = Result(path, n)
    started = time.perf_counter()
    report = scorer.run_once(NOW)
    result.first_pass_s = time.perf_counter() - started
    say(f"  {path}, N={n:,}: first pass {result.first_pass_s:.1f} s")
    for k in range(1, repeats + 1):
        report = scorer.run_once(NOW + dt.timedelta(minutes=k))
        result.passes.append({"total": report.duration_s, **report.phases})
        say(
            f"  {path}, N={n:,}: pass {k} {report.duration_s:.1f} s, explained "
            f"{report.explained:,} of {report.scores:,} scores ({fraction(report):.1%})"
        )
    result.queries = report.queries
    result.scores = report.scores
    result.explained = report.explained
    result.scored = sum(1 for o in report.outcomes if o.scores)
    result.peak_rss_mb = peak_rss_mb()
    return result, report


def read_sweep(
    influx: InfluxClient,
    assets: Sequence[Asset],
    base: ScoringConfig,
    say: Any,  # noqa: ANN401
) -> list[dict[str, Any]]:
    """The read phase alone per query form and assets per query (median of 3)."""
    rows = []
    for match, size in SWEEP:
        config = base.model_copy(update={"read_match": match, "batch_assets": size})
        scorer = Scorer(
            config=config,
            assets=AssetRegistry(assets),
            profiles=ProfileLibrary.load(ROOT / "firmware_profiles"),
            models=Registry(Path(tempfile.gettempdir()) / "no-models"),
            influx=influx,
        )
        plan = config.profiles[PROFILE]
        times = []
        for _ in range(3):
            started = time.perf_counter()
            got = 0
            for chunk, _plan in scorer._groups():  # noqa: SLF001 - the scorer's own grouping
                got += sum(1 for f in scorer._read(chunk, plan, NOW).values() if len(f))  # noqa: SLF001
            times.append(time.perf_counter() - started)
        rows.append(
            {
                "match": match,
                "batch_assets": size,
                "seconds": statistics.median(times),
                "assets_read": got,
            }
        )
        say(f"  read {match:<5} {size:>5} assets/query: {statistics.median(times):.2f} s")
    return rows


# ------------------------------------------------------------------------------------ output


def fraction(report: PassReport) -> float:
    """The explained share of a pass's scores."""
    return report.explained / report.scores if report.scores else 0.0


def table(results: Sequence[Result]) -> Iterator[str]:
    """One line per path and N."""
    head = "".join(f"{p + ' s':>12}" for p in PHASES)
    yield (
        f"  {'path':<10} {'N':>7} {'pass s':>9} {'min-max':>13}{head} {'assets/s':>9} "
        f"{'queries':>8} {'scores':>7} {'expl':>6} {'peak RSS MB':>12}"
    )
    for r in results:
        spread = f"{min(p['total'] for p in r.passes):.1f}-{max(p['total'] for p in r.passes):.1f}"
        phases = "".join(f"{r.phase(p):>12.2f}" for p in PHASES)
        yield (
            f"  {r.path:<10} {r.n:>7,} {r.median_s:>9.2f} {spread:>13}{phases} "
            f"{r.n / r.median_s:>9,.1f} {r.queries:>8,} {r.scores:>7,} "
            f"{r.explained / max(r.scores, 1):>6.1%} {r.peak_rss_mb:>12,.0f}"
        )


def same_scores(a: PassReport, b: PassReport) -> tuple[bool, int]:
    """Whether the assets of `b` got the same scores in `a` (times aside); how many compared."""
    mine = {o.asset: o for o in a.outcomes}
    compared = 0
    for o in b.outcomes:
        other = mine.get(o.asset)
        if other is None:
            return False, compared
        if [s.fields() for s in o.scores] != [s.fields() for s in other.scores]:
            return False, compared
        compared += 1
    return True, compared


def same_explained(main: PassReport, always: PassReport) -> tuple[bool, int]:
    """Whether `always` (every score explained) agrees with `main` on its assets.

    The same numbers for every score, and the same explanation wherever `main` has one.
    """
    mine = {o.asset: o for o in main.outcomes}
    compared = 0
    for o in always.outcomes:
        other = mine.get(o.asset)
        if other is None or len(other.scores) != len(o.scores):
            return False, compared
        for full, part in zip(o.scores, other.scores, strict=True):
            f, g = full.fields(), part.fields()
            if not full.explained:
                return False, compared
            if g != (f if part.explained else {k: v for k, v in f.items() if k != "explain"}):
                return False, compared
        compared += 1
    return True, compared


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """The command line (see the module docstring)."""
    p = argparse.ArgumentParser(
        description="Time full scoring cycles (read, features, inference, write, decide) for N "
        "assets with their windows in a real InfluxDB."
    )
    p.add_argument("--assets", type=int, nargs="+", help=f"asset counts (default {SIZES})")
    p.add_argument("--quick", action="store_true", help=f"smoke run: sizes {QUICK_SIZES}")
    p.add_argument("--repeats", type=int, default=3, help="timed passes per N (default 3)")
    p.add_argument(
        "--baseline-assets",
        type=int,
        default=100,
        help="assets scored by the per-asset path (default 100; 0: no baseline)",
    )
    p.add_argument(
        "--explain",
        choices=["at_risk", "always", "never"],
        default="at_risk",
        help="explain.mode of the main runs (default at_risk, the shipped default)",
    )
    p.add_argument(
        "--always-assets",
        type=int,
        default=200,
        help="assets scored again with explain: always, batched (default 200; 0: none)",
    )
    p.add_argument(
        "--degraded",
        type=float,
        default=DEGRADED,
        help=f"share of engines near the end of their life (default {DEGRADED})",
    )
    p.add_argument("--models", type=Path, help="score with this registry's champions")
    p.add_argument("--batch-assets", type=int, help="assets per query (default: the config's)")
    p.add_argument("--read-match", choices=["or", "regex"], help="query form (default: config's)")
    p.add_argument("--no-read-sweep", action="store_true", help="skip the read-strategy table")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--dir", type=Path, help="work folder (default: a temporary one)")
    p.add_argument("--json", help="also write the figures as JSON to this path")
    p.add_argument("--strict", action="store_true", help="accepted for `make bench`; no target")
    p.add_argument("--duration-s", type=float, help=argparse.SUPPRESS)  # `make bench` passes it
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; 0 unless the batched and per-asset paths disagree."""
    args = parse_args(argv)
    configure_logging("console", "warning")  # per-asset state changes would flood the output

    def say(text: str) -> None:
        print(text, flush=True)

    sizes = sorted(args.assets or (QUICK_SIZES if args.quick else SIZES))
    say(
        f"Scoring-cycle benchmark: Python {platform.python_version()}, {os.cpu_count()} CPUs, "
        f"load average {os.getloadavg()[0]:.1f}, {platform.platform()}"
    )
    with contextlib.ExitStack() as stack:
        work = args.dir or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-")))
        work.mkdir(parents=True, exist_ok=True)
        svc: Services = stack.enter_context(services(work / "services"))
        return _run(args, sizes, svc, work, say)


def _run(
    args: argparse.Namespace,
    sizes: Sequence[int],
    svc: Services,
    work: Path,
    say: Any,  # noqa: ANN401
) -> int:
    auth = InfluxAuth.basic(svc.env["PROGNOS_INFLUX_USER"], svc.env["PROGNOS_INFLUX_PASSWORD"])
    database = "bench_scoring"
    influx = InfluxClient(
        url=svc.env["PROGNOS_INFLUX_URL"], database=database, auth=auth, timeout_s=600
    )
    influx.create_database(database)
    say(f"influxd {influx.ping()} at {svc.env['PROGNOS_INFLUX_URL']}")
    fleet = [asset_record(i) for i in range(max(sizes))]
    started = time.perf_counter()
    points = load_fleet(influx, len(fleet), AssetRegistry(fleet), args.seed, args.degraded)
    say(
        f"wrote {points:,} points for {len(fleet):,} assets through the ingester's core in "
        f"{time.perf_counter() - started:.0f} s ({CYCLES} cycles x {len(POLLS_MIN)} polls each)"
    )
    models = champions(args.models, work, say)
    say(f"models: {describe(models)}")
    shipped = ScoringConfig()
    update: dict[str, Any] = {
        "explain": shipped.explain.model_copy(update={"mode": args.explain}),
    }
    if args.batch_assets:
        update["batch_assets"] = args.batch_assets
    if args.read_match:
        update["read_match"] = args.read_match
    # The shipped plans, the fleet's profile only (the mills' models are not trained here).
    config = shipped.model_copy(update={"profiles": {PROFILE: shipped.profiles[PROFILE]}, **update})
    say(
        f"config: batch_assets {config.batch_assets}, read_match {config.read_match}, "
        f"write_points {config.write_points}, openmp_threads {config.openmp_threads}, explain "
        f"{config.explain.mode}: {config.explain.n_permutations} permutations x "
        f"{config.explain.max_background} background rows; fleet: {args.degraded:.0%} degraded"
    )
    sweep: list[dict[str, Any]] = []
    if not args.no_read_sweep:
        n_sweep = max([n for n in sizes if n <= SWEEP_MAX] or [min(sizes)])
        say(f"read strategies, N={n_sweep:,} (read phase only, median of 3):")
        sweep = read_sweep(influx, fleet[:n_sweep], config, say)
    results: list[Result] = []
    reports: dict[int, PassReport] = {}
    for n in sizes:
        scorer, store = make_scorer(config, fleet[:n], models, influx, work / f"state-{n}.db")
        result, reports[n] = run_cycles("batched", scorer, n, args.repeats, say)
        store.close()
        results.append(result)
    ok = True
    baseline: Result | None = None
    if args.baseline_assets > 0:
        m = min(args.baseline_assets, *sizes)
        per_asset = config.model_copy(update={"batch_inference": False})
        scorer, store = make_scorer(per_asset, fleet[:m], models, influx, work / "state-b.db")
        baseline, report = run_cycles("per-asset", scorer, m, 1, say)
        store.close()
        ok, compared = same_scores(reports[min(sizes)], report)
        say(f"  per-asset vs batched scores of {compared} assets: {'equal' if ok else 'DIFFERENT'}")
    always, same = always_baseline(
        args,
        config=config,
        fleet=fleet,
        models=models,
        influx=influx,
        work=work,
        reports=reports,
        say=say,
    )
    ok = ok and same
    summarise(results, baseline, say, always)
    if args.json:
        figures = {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "models": describe(models),
            "read_sweep": sweep,
            "runs": [
                asdict(r) | {"median_s": r.median_s, "assets_per_s": r.n / r.median_s}
                for r in [
                    *results,
                    *([baseline] if baseline else []),
                    *([always] if always else []),
                ]
            ],
            "same_scores": ok,
        }
        Path(args.json).write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    if not ok:
        say("FAIL: the scores differ between paths (batched, per-asset, explain always)")
        return 1
    return 0


def always_baseline(
    args: argparse.Namespace,
    *,
    config: ScoringConfig,
    fleet: Sequence[Asset],
    models: Path,
    influx: InfluxClient,
    work: Path,
    reports: dict[int, PassReport],
    say: Any,  # noqa: ANN401
) -> tuple[Result | None, bool]:
    """``explain: always`` on the first ``--always-assets``; whether it agrees with the main run."""
    if args.always_assets <= 0 or args.explain == "always":
        return None, True
    smallest = min(reports)
    m = min(args.always_assets, smallest)
    full = config.model_copy(
        update={"explain": config.explain.model_copy(update={"mode": "always"})}
    )
    scorer, store = make_scorer(full, fleet[:m], models, influx, work / "state-a.db")
    always, report = run_cycles("always", scorer, m, 1, say)
    store.close()
    same, compared = same_explained(reports[smallest], report)
    say(
        f"  explain always vs {args.explain} scores of {compared} assets: "
        f"{'equal' if same else 'DIFFERENT'}"
    )
    return always, same


def summarise(
    results: Sequence[Result],
    baseline: Result | None,
    say: Any,  # noqa: ANN401
    always: Result | None = None,
) -> None:
    """The table, the growth ratio, the batched / per-asset and explain-mode ratios."""
    say("")
    for line in table([*results, *([baseline] if baseline else []), *([always] if always else [])]):
        say(line)
    say("")
    small, large = results[0], results[-1]
    if large.n != small.n:
        growth = large.median_s / small.median_s
        say(
            f"growth: time(N={large.n:,}) / time(N={small.n:,}) = {growth:.2f} "
            f"(linear: {large.n / small.n:g}; per asset x{growth / (large.n / small.n):.2f})"
        )
    if baseline is not None:
        per_asset_s = baseline.median_s / baseline.n
        batched_s = small.median_s / small.n
        say(
            f"per asset: batched {batched_s * 1000:.1f} ms (N={small.n:,}), per-asset path "
            f"{per_asset_s * 1000:.1f} ms (N={baseline.n:,}): batched / per-asset = "
            f"{batched_s / per_asset_s:.2f}"
        )
    if always is not None:
        always_s = always.median_s / always.n
        main_s = small.median_s / small.n
        say(
            f"per asset: explained as configured {main_s * 1000:.1f} ms (N={small.n:,}, "
            f"{small.explained / max(small.scores, 1):.1%} of scores explained), explain always "
            f"{always_s * 1000:.1f} ms (N={always.n:,}): ratio {main_s / always_s:.2f}"
        )


if __name__ == "__main__":
    sys.exit(main())
