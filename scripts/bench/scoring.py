#!/usr/bin/env python3
"""Benchmark the scorer's hot path (issue 6): assets scored per second, features and inference.

N assets each bring one hour of 1 Hz telemetry (3,600 rows x the C-MAPSS columns: 3 operational
settings, 21 sensors and ``cycle``). Each asset is scored by the two champion-type models: the RUL
model (`RulPipeline`: condition normaliser, window features, a fold ensemble of boosted trees,
``rul`` plus its 80 % interval) and the failure-probability model (`HorizonFailureModel`: P(fail
within N cycles) for 4 horizons, over `models._failure.CMAPSS_SPECS` window features). Timed at
N = 1,000, 2,000, 5,000 and 10,000 (``--quick``: 100 and 1,000), three ways:

- ``per-asset``: what `RulPipeline.predict_window` does, asset after asset. Features from the
  asset's hour (`RulPipeline.transform_window` and `window_features`: each spec takes the trailing
  rows it needs), then inference on that one row (``predict`` and ``predict_interval`` of the RUL
  ensemble, ``predict_proba`` of the failure model).
- ``per-asset features, batched inference``: the same features, then inference once over the N
  feature rows (the per-asset feature time is shared with the row above and counted in both).
- ``batched``: `rolling_features_by` over the trailing window rows (`RulPipeline.window_rows`, and
  the failure specs' longest window) of all N assets in one frame, keeping each asset's last row,
  then batched inference. Stacking the assets' tails into that frame is not timed: a scorer's
  query returns it in one piece. The script checks that the batched features equal the per-asset
  ones (max abs difference, printed).

Telemetry is synthesised from the C-MAPSS FD001 training trajectories (seeded): each asset takes
an engine and a point in its life, the 60 cycles before that point are interpolated onto the hour
(one cycle a minute) and the sensors get Gaussian noise of 0.1 x their spread. Generating an
asset's hour is not timed. Without ``--registry`` the script first trains both models on
``--train-units`` engines with the champions' default sizes (the RUL trainer with one candidate of
its grid, the failure model without its search); with ``--registry`` it loads the champions
``cmapss_rul`` and ``cmapss_failure``.

The table gives, per path and N: total seconds (features + inference), each part, assets scored per
second, the time ratio against N = 1,000 (ideal N / 1,000) and the peak RSS of the process while
that N ran (Linux ``VmHWM``, reset before each N; it includes every path of that N). The last lines
give the growth ratio time(largest N) / time(smallest N) per path, ideal largest / smallest (10
for the default sizes, 10,000 / 1,000, and for ``--quick``). Timings are reported, never asserted.

    .venv/bin/python scripts/bench/scoring.py                # about 30 minutes on a busy 2-CPU box
    .venv/bin/python scripts/bench/scoring.py --quick        # about 3 minutes: N = 100, 1,000
    .venv/bin/python scripts/bench/scoring.py --sizes 1000 10000 --registry var/models
    .venv/bin/python scripts/bench/scoring.py --quick --json scoring.json

Notes for reading the figures: the C-MAPSS models count their windows in samples (30 and 10 for
the RUL model, 30 and 5 for the failure model; one sample was one cycle in training), so on 1 Hz
data they see the last 30 seconds of the hour. The hour still costs: ``transform_window`` normalises
every row it is given, and ``window_features`` locates each window over all of them. Inference
runs the boosted trees with one OpenMP thread (the models' setting).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from models import (  # noqa: E402
    FeatureSpec,
    HorizonFailureModel,
    Registry,
    RulPipeline,
    TrainRequest,
    feature_names,
    rolling_features_by,
    train_cmapss_rul,
    window_features,
)

# Not in the public API of `models`: the C-MAPSS reader and the failure model's feature specs
# (the registry stores feature names, not specs, so a scorer needs them from the code).
from models._cmapss import SENSORS, SETTINGS, as_telemetry, read_cmapss, rul_labels  # noqa: E402
from models._failure import CMAPSS_SPECS  # noqa: E402

DATA = ROOT.parent / "shared" / "datasets" / "cmapss"
SIZES = (1_000, 2_000, 5_000, 10_000)
QUICK_SIZES = (100, 1_000)
REFERENCE = 1_000
ROWS_PER_HOUR = 3_600
CYCLES_PER_HOUR = 60
NOISE = 0.1
COVERAGE = 0.8
SAME = 1e-6  # largest difference between the two feature paths still counted as equal
START = pd.Timestamp("2026-01-01", tz="UTC")
COLUMNS = (*SETTINGS, *SENSORS, "cycle")
PATHS = ("per-asset", "per-asset features, batched inference", "batched")
RUL_PARAMS = {"max_iter": 300, "learning_rate": 0.05, "max_leaf_nodes": 15, "min_samples_leaf": 50}
"""A single candidate of the trainer's default sizes: the ensemble a default champion has."""


# ------------------------------------------------------------------------------------ telemetry


class Telemetry:
    """Seeded synthetic hours of 1 Hz telemetry, from C-MAPSS training trajectories."""

    def __init__(self, frame: pd.DataFrame, *, seed: int) -> None:
        self._engines = [
            g.sort_values("cycle").loc[:, list(COLUMNS)].to_numpy(dtype=float)
            for _, g in frame.groupby("unit")
        ]
        spread = frame.loc[:, list(SENSORS)].std().to_numpy()
        self._noise = np.concatenate([np.zeros(len(SETTINGS)), NOISE * spread, [0.0]])
        self._seed = seed
        self.index = pd.date_range(START, periods=ROWS_PER_HOUR, freq="1s", name="time")

    def hour(self, asset: int) -> pd.DataFrame:
        """Asset `asset`'s hour: the same asset number always gives the same rows."""
        rng = np.random.default_rng([self._seed, asset])
        engine = self._engines[int(rng.integers(len(self._engines)))]
        life = len(engine)
        end = float(rng.uniform(min(CYCLES_PER_HOUR, life - 1), life - 1))
        position = np.linspace(max(end - CYCLES_PER_HOUR, 0.0), end, ROWS_PER_HOUR)
        low = np.minimum(position.astype(int), life - 2)
        frac = (position - low)[:, None]
        values = engine[low] * (1.0 - frac) + engine[low + 1] * frac
        values += rng.normal(size=values.shape) * self._noise
        return pd.DataFrame(values, index=self.index, columns=list(COLUMNS))


# ------------------------------------------------------------------------------------ models


@dataclass(frozen=True, slots=True)
class Models:
    """The two champion-type models and where they came from."""

    rul: RulPipeline
    failure: HorizonFailureModel
    failure_specs: tuple[FeatureSpec, ...]
    origin: str


def load_models(registry: Path | None, data: Path, train_units: int, seed: int) -> Models:
    """The registry's champions, or both models trained here on `train_units` engines."""
    if registry is not None:
        reg = Registry(registry)
        rul, failure = reg.load("cmapss_rul"), reg.load("cmapss_failure")
        if tuple(failure.metadata["features"]) != feature_names(CMAPSS_SPECS):
            raise SystemExit("cmapss_failure champion was not trained on CMAPSS_SPECS features")
        origin = f"champions cmapss_rul {rul.version}, cmapss_failure {failure.version}"
        return Models(rul.estimator, failure.estimator, CMAPSS_SPECS, f"{origin} in {registry}")
    files = tuple(data / f"{part}_FD001.txt" for part in ("train", "test", "RUL"))
    started = time.perf_counter()
    rul_model = train_cmapss_rul(
        TrainRequest(data=files, seed=seed, max_units=train_units, params=RUL_PARAMS)
    ).estimator
    # The failure model's default size without the trainer's hyper-parameter search (12 fits).
    train = read_cmapss(files[0], max_units=train_units)
    features = rolling_features_by(as_telemetry(train), CMAPSS_SPECS, by="unit")
    failure_model = HorizonFailureModel(random_state=seed).fit(
        features.reset_index(drop=True),
        rul_labels(train, cap=None).to_numpy(),
        groups=train["unit"].to_numpy(),
    )
    took = time.perf_counter() - started
    origin = f"trained here on {train_units} engines in {took:.0f} s (default model sizes)"
    return Models(rul_model, failure_model, CMAPSS_SPECS, origin)


def longest(specs: Sequence[FeatureSpec]) -> int:
    """Rows the longest count window needs (the C-MAPSS specs count samples)."""
    counts = [s.window for s in specs if isinstance(s.window, int)]
    if len(counts) != len(specs):
        raise SystemExit("the batched path here handles sample-count windows only")
    return max(counts)


def infer(models: Models, rul_x: pd.DataFrame, failure_x: pd.DataFrame) -> np.ndarray:
    """Scores of every row: rul, rul_lo, rul_hi and P(fail within each horizon)."""
    rul = models.rul.regressor_.predict(rul_x)
    interval = models.rul.regressor_.predict_interval(rul_x, COVERAGE)
    proba = models.failure.predict_proba(failure_x).to_numpy()
    return np.column_stack([rul, interval, proba])


# ------------------------------------------------------------------------------------ memory


def reset_peak_rss() -> bool:
    """Reset the kernel's high-water mark of this process's RSS (Linux >= 4.0)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def peak_rss_mb() -> float:
    """``VmHWM`` of this process in MB (10^6 bytes); the lifetime peak where it is missing."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024 / 1e6
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e6


# ------------------------------------------------------------------------------------ the runs


@dataclass(slots=True)
class Row:
    """One path at one N."""

    path: str
    n: int
    features_s: float
    inference_s: float
    peak_rss_mb: float

    @property
    def total_s(self) -> float:
        """Features plus inference."""
        return self.features_s + self.inference_s


class Stopwatch:
    """Accumulates the time spent inside ``with watch:`` blocks."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self._start = 0.0

    def __enter__(self) -> None:
        self._start = time.perf_counter()

    def __exit__(self, *exc: object) -> None:
        self.seconds += time.perf_counter() - self._start


def run_size(
    n: int,
    models: Models,
    telemetry: Telemetry,
    say: Callable[[str], None],
    *,
    single_limit: int,
) -> tuple[list[Row], float]:
    """Score `n` assets by every path; return the rows and the batched-vs-per-asset difference.

    Inference one asset at a time costs about 0.1 s per asset, so above `single_limit` assets that
    path is not run (its row is left out) and the other two paths are compared alone.
    """
    single_path = n <= single_limit
    reset_peak_rss()
    rul_tail = longest(models.rul.specs_)
    failure_tail = longest(models.failure_specs)
    tail = max(rul_tail, failure_tail)
    features, single = Stopwatch(), Stopwatch()
    rul_rows: list[np.ndarray] = []
    failure_rows: list[np.ndarray] = []
    tails: list[pd.DataFrame] = []
    one_by_one: list[np.ndarray] = []
    for asset in range(n):
        hour = telemetry.hour(asset)
        with features:
            rul_x = models.rul.transform_window(hour)
            failure_x = window_features(hour, models.failure_specs)
        if single_path:
            with single:
                one_by_one.append(infer(models, rul_x, failure_x))
        rul_rows.append(rul_x.to_numpy()[0])
        failure_rows.append(failure_x.to_numpy()[0])
        # A real copy: a slice (copy-on-write) would keep the whole hour alive.
        tails.append(hour.iloc[-tail:].copy(deep=True).assign(asset=asset))
    batched_inference = Stopwatch()
    with batched_inference:
        rul_x = pd.DataFrame(np.vstack(rul_rows), columns=list(models.rul.feature_names_))
        failure_x = pd.DataFrame(
            np.vstack(failure_rows), columns=list(feature_names(models.failure_specs))
        )
        scores = infer(models, rul_x, failure_x)
    if single_path and not np.allclose(
        scores, np.vstack(one_by_one), rtol=1e-9, atol=1e-9, equal_nan=True
    ):
        say("WARNING: batched inference differs from per-row inference")

    frame = pd.concat(tails)  # what one query for the N assets' recent rows returns: not timed
    del tails
    batch_features, batch_inference = Stopwatch(), Stopwatch()
    with batch_features:
        normal = models.rul.normalizer_.transform(frame)
        rul_b = rolling_features_by(normal, models.rul.specs_, by="asset")
        failure_b = rolling_features_by(frame, models.failure_specs, by="asset")
        last = np.flatnonzero(frame["asset"].to_numpy()[1:] != frame["asset"].to_numpy()[:-1])
        last = np.append(last, len(frame) - 1)
        rul_b, failure_b = rul_b.iloc[last], failure_b.iloc[last]
    with batch_inference:
        infer(models, rul_b, failure_b)
    difference = max(
        float(np.nanmax(np.abs(rul_b.to_numpy() - rul_x.to_numpy()))),
        float(np.nanmax(np.abs(failure_b.to_numpy() - failure_x.to_numpy()))),
    )
    rss = peak_rss_mb()
    rows = [Row(PATHS[0], n, features.seconds, single.seconds, rss)] if single_path else []
    rows += [
        Row(PATHS[1], n, features.seconds, batched_inference.seconds, rss),
        Row(PATHS[2], n, batch_features.seconds, batch_inference.seconds, rss),
    ]
    return rows, difference


# ------------------------------------------------------------------------------------ output


def table(rows: Sequence[Row], reference: int) -> Iterator[str]:
    """The report lines, grouped by path."""
    yield (
        f"  {'path':<40} {'N':>7} {'total s':>9} {'features s':>11} {'inference s':>12} "
        f"{'assets/s':>9} {f'time / N={reference:,}':>14} {'peak RSS MB':>12}"
    )
    for path in PATHS:
        mine = [r for r in rows if r.path == path]
        base = next((r.total_s for r in mine if r.n == reference), None)
        for r in mine:
            ratio = f"{r.total_s / base:.2f}" if base else "-"
            yield (
                f"  {r.path:<40} {r.n:>7,} {r.total_s:>9.2f} {r.features_s:>11.2f} "
                f"{r.inference_s:>12.2f} {r.n / r.total_s:>9,.0f} {ratio:>14} "
                f"{r.peak_rss_mb:>12.0f}"
            )


def growth(rows: Sequence[Row]) -> Iterator[str]:
    """time(largest N) / time(smallest N) per path, against the ideal (linear) ratio."""
    largest, smallest = max(r.n for r in rows), min(r.n for r in rows)
    if largest == smallest:
        return
    for path in PATHS:
        by_n = {r.n: r.total_s for r in rows if r.path == path}
        if largest not in by_n or smallest not in by_n:
            continue
        yield (
            f"growth {path}: time(N={largest:,}) / time(N={smallest:,}) = "
            f"{by_n[largest] / by_n[smallest]:.2f} (ideal {largest / smallest:g})"
        )


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """The command line (see the module docstring)."""
    p = argparse.ArgumentParser(
        description="Assets scored per second: features and inference, 1 h of 1 Hz data each."
    )
    p.add_argument("--sizes", type=int, nargs="+", help=f"asset counts (default {SIZES})")
    p.add_argument("--quick", action="store_true", help=f"sizes {QUICK_SIZES}")
    p.add_argument("--registry", type=Path, help="load the champions from this registry")
    p.add_argument("--data", type=Path, default=DATA, help="C-MAPSS folder (default: %(default)s)")
    p.add_argument("--train-units", type=int, default=10, help="engines to train on (default 10)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--single-limit",
        type=int,
        default=1000,
        help="run the one-asset-at-a-time inference path only up to this N (default 1000)",
    )
    p.add_argument("--threads", type=int, default=1, help="OpenMP threads (default 1)")
    p.add_argument("--json", help="also write the figures as JSON to this path ('-': stdout)")
    p.add_argument("--strict", action="store_true", help="accepted for `make bench`; no target")
    p.add_argument("--duration-s", type=float, help=argparse.SUPPRESS)  # `make bench` passes it
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; 0 unless the batched features disagree with the per-asset ones."""
    args = parse_args(argv)
    out = sys.stderr if args.json == "-" else sys.stdout

    def say(text: str) -> None:
        print(text, file=out, flush=True)

    say(
        f"Scoring benchmark: Python {platform.python_version()}, {os.cpu_count()} CPUs, "
        f"load average {os.getloadavg()[0]:.1f}, {platform.platform()}"
    )
    # One OpenMP thread for the trees, as the RUL model does for itself: on a shared machine,
    # OpenMP threads that spin-wait for busy cores make every small predict call far slower.
    with threadpool_limits(limits=args.threads, user_api="openmp"):
        return _run(args, say)


def _run(args: argparse.Namespace, say: Callable[[str], None]) -> int:
    sizes = tuple(args.sizes or (QUICK_SIZES if args.quick else SIZES))
    reference = REFERENCE if REFERENCE in sizes else min(sizes)
    models = load_models(args.registry, args.data, args.train_units, args.seed)
    telemetry = Telemetry(read_cmapss(args.data / "train_FD001.txt"), seed=args.seed)
    say(
        f"models: {models.origin}; RUL: {len(models.rul.regressor_.estimators_)} fold models, "
        f"{len(models.rul.feature_names_)} features; failure: "
        f"{len(models.failure.horizons_)} horizons, {len(feature_names(models.failure_specs))} "
        f"features"
    )
    say(
        f"each asset: {ROWS_PER_HOUR:,} rows x {len(COLUMNS)} columns (1 h at 1 Hz), "
        f"seed {args.seed}"
    )
    rows: list[Row] = []
    worst = 0.0
    for n in sizes:
        started = time.perf_counter()
        mine, difference = run_size(n, models, telemetry, say, single_limit=args.single_limit)
        rows += mine
        worst = max(worst, difference)
        say(f"N={n:,} done in {time.perf_counter() - started:.0f} s (synthesis included)")
    say("")
    for line in table(rows, reference):
        say(line)
    say("")
    for line in growth(rows):
        say(line)
    say(f"batched features vs per-asset features: max abs difference {worst:.3g}")
    if args.json:
        report = {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "models": models.origin,
            "rows_per_asset": ROWS_PER_HOUR,
            "columns": len(COLUMNS),
            "runs": [
                asdict(r) | {"total_s": r.total_s, "assets_per_s": r.n / r.total_s} for r in rows
            ],
            "max_feature_difference": worst,
        }
        text = json.dumps(report, indent=2)
        if args.json == "-":
            print(text)
        else:
            Path(args.json).write_text(text + "\n", encoding="utf-8")
    if worst > SAME:
        say("FAIL: the batched features differ from the per-asset features")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
