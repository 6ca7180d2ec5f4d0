"""The main job's set-up: champion models it trains (or reuses) and the configs it writes.

`training_plan` and `ensure_models`: the champions the plant's assets are scored with, trained
without what the simulator replays (C-MAPSS held-out units; the hydraulic rig's held-out
segments, by `models._hydraulic` itself), cached by data fingerprint. `scoring_config`: the
scorer's plans for the simulator's profiles, scaled to the plant's speed. `patch_edge_config`:
the simulator's edge configs, made run-unique. Used by `cloud._plant`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import structlog
import yaml

log = structlog.get_logger("prognos.plant")

ROOT = Path(__file__).resolve().parents[1]
DATASETS = ROOT.parent / "shared" / "datasets"
RUL_WINDOW_CYCLES = 60
"""The RUL champion's feature window: fixed so the scorer's window (72 cycles) covers it."""
AI4I_HORIZON_ROWS = 12
"""Products ahead of the mills' failure model (`models._ai4i_horizon`'s default horizon)."""


class PlantError(RuntimeError):
    """A step of the main job failed; the message says which and where its log is."""


# ------------------------------------------------------------------------------------ models


@dataclasses.dataclass(frozen=True, slots=True)
class TrainStep:
    """One `prognos train` call."""

    target: str
    args: tuple[str, ...]


def parse_units(text: str) -> list[int]:
    """``91-100`` or ``91,93,95-97`` as a sorted list of unit numbers."""
    units: set[int] = set()
    for part in text.split(","):
        lo, _, hi = part.strip().partition("-")
        units.update(range(int(lo), int(hi or lo) + 1))
    return sorted(units)


def _sha256(path: Path) -> str:
    with path.open("rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def _cmapss_units(path: Path) -> list[int]:
    with path.open() as fh:
        return sorted({int(line.split()[0]) for line in fh if line.strip()})


def training_plan(cmapss_train: Path, holdout: Sequence[int], work: Path) -> list[TrainStep]:
    """The champions' training calls; C-MAPSS without the held-out engines.

    The hydraulic cooler model holds out the rig's cycles the simulator replays by itself
    (`models._hydraulic`: every fourth segment of identical conditions).

    When the held-out engines are the file's last ones, ``--max-units`` keeps the others;
    otherwise a filtered copy of the training file (with its ``test_``/``RUL_`` siblings) is
    written under `work` (derived data, in the cache, never in the repository).
    """
    units = _cmapss_units(cmapss_train)
    keep = [u for u in units if u not in set(holdout)]
    grid = f'grid=[{{"window": {RUL_WINDOW_CYCLES}}}]'
    if keep == units[: len(keep)]:
        data: tuple[str, ...] = ("--max-units", str(len(keep)))
    else:
        work.mkdir(parents=True, exist_ok=True)
        suffix = cmapss_train.name[len("train_") :]
        filtered = work / cmapss_train.name
        with cmapss_train.open() as src, filtered.open("w") as dst:
            dst.writelines(line for line in src if line.strip() and int(line.split()[0]) in keep)
        for prefix in ("test_", "RUL_"):
            shutil.copyfile(cmapss_train.with_name(prefix + suffix), work / (prefix + suffix))
        data = ("--data", str(filtered))
    return [
        TrainStep("cmapss_rul", (*data, "--param", grid)),
        TrainStep("cmapss_failure", data),
        TrainStep("ai4i_horizon", ()),
        TrainStep("tool_wear", ()),
        TrainStep("hydraulic_cooler", ()),
    ]


def ensure_models(cache: Path, cmapss_train: Path, holdout: Sequence[int], logs: Path) -> Path:
    """A model registry with the champions of `training_plan`, from the cache or trained into it.

    The cache key is the SHA-256 of the data files' bytes, the held-out units and the training
    arguments: a second run with the same data and hold-out reuses the champions at once.
    """
    ai4i = DATASETS / "ai4i2020" / "ai4i2020.csv"
    suffix = cmapss_train.name[len("train_") :]
    hydraulic = sorted((DATASETS / "hydraulic").glob("*.txt"))
    files = [
        cmapss_train,
        *(cmapss_train.with_name(p + suffix) for p in ("test_", "RUL_")),
        ai4i,
        *hydraulic,
    ]
    key_src = {
        "data": [_sha256(p) for p in files],
        "holdout": list(holdout),
        "rul_window": RUL_WINDOW_CYCLES,
    }
    key = hashlib.sha256(json.dumps(key_src, sort_keys=True).encode()).hexdigest()[:16]
    home = cache / key
    registry = home / "registry"
    plan = training_plan(cmapss_train, holdout, home / "data")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    for step in plan:
        if (registry / step.target / "CHAMPION").exists():
            log.info("champion_cached", target=step.target, registry=str(registry))
            continue
        log.info("training", target=step.target, args=" ".join(step.args))
        with (logs / f"train-{step.target}.log").open("w") as out:
            code = subprocess.call(
                [
                    sys.executable,
                    "-m",
                    "cloud",
                    "train",
                    step.target,
                    *step.args,
                    "--registry",
                    str(registry),
                    "--promote",
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
            )
        if code != 0:
            msg = f"training {step.target} failed (exit {code}): see {out.name}"
            raise PlantError(msg)
    (home / "key.json").write_text(json.dumps(key_src, indent=1) + "\n")
    return registry


# ------------------------------------------------------------------------------------ configs


def scoring_config(speed: float, cycle_s: float, hpu_cycle_s: float = 3600.0) -> dict[str, Any]:
    """docs/scoring.md's simulator plans, scaled to `speed` (wall seconds).

    `cycle_s` is an engine cycle, `hpu_cycle_s` one replayed load cycle of the hydraulic units.
    """
    hour = 3600.0 / speed
    cycle = cycle_s / speed
    hpu_cycle = hpu_cycle_s / speed
    stale = max(30 * hour, 10.0)
    return {
        "warm_up": "1h",
        "alert": {"open_after": 3, "cooldown": 60 * hour},
        # A consumable's alert is closed when the item is replaced (cloud._technician): the
        # new item's life starts then, and the next alert must not wait out 60 h of cooldown.
        "alerts": {
            item: {"open_after": 3, "cooldown": 12 * hour}
            for item in ("air_filter", "cutting_tool")
        },
        # Lighter explanations than the shipped default (4 permutations, 20 background rows):
        # at hundreds of times real speed a pass must stay a few engine cycles long.
        "explain": {"top_k": 3, "n_permutations": 2, "max_background": 10},
        "profiles": {
            "turbomon_tm21_1.0": {
                "window": 72 * cycle,
                "stale_after": stale,
                "cycle": cycle,
                "cycle_signal": "cycle",
                "rename": {"cycle_count": "cycle"},
                "hours_signal": "cycle",
                "models": [
                    {"kind": "rul", "name": "cmapss_rul", "target": "hpc_degradation"},
                    {
                        "kind": "horizon_failure",
                        "name": "cmapss_failure",
                        "target": "hpc_degradation",
                    },
                ],
            },
            "millrite_spx12_5.1": {
                "window": 12 * hour,
                "consumable_window": 480 * hour,
                "stale_after": stale,
                "hours_signal": "spindle_run_hours_h",
                "rename": {"spindle_speed_rpm": "speed_rpm", "spindle_torque_nm": "torque_nm"},
                "models": [
                    # P(a failure within the next 12 products), one product an hour: the
                    # per-product `ai4i_failure` only says whether the newest product failed.
                    {
                        "kind": "failure",
                        "name": "ai4i_horizon",
                        "target": "machine_failure",
                        "horizon": AI4I_HORIZON_ROWS * hour,
                        "derive": "ai4i",
                    },
                    {
                        "kind": "consumable",
                        "name": "tool_wear",
                        "target": "cutting_tool",
                        "health_ref": 168 * hour,
                    },
                ],
            },
            "airtek_sc75_4.2": {
                "window": 12 * hour,
                "consumable_window": 720 * hour,
                "stale_after": stale,
                "hours_signal": "run_hours_h",
                "models": [
                    {"kind": "consumable_online", "target": "air_filter", "health_ref": 168 * hour}
                ],
            },
            "fluidsense_hcm10_1.0": {
                "window": 12 * hpu_cycle,
                "stale_after": max(30 * hpu_cycle, 10.0),
                "models": [
                    # P(the cooler is at reduced efficiency or worse) in the latest load cycle,
                    # from its sensor means: a condition, not a time to failure (the data set
                    # has levels set by the experimenters; models/_hydraulic.py).
                    {
                        "kind": "failure",
                        "name": "hydraulic_cooler",
                        "target": "cooler_failure",
                        "horizon": hpu_cycle,
                    }
                ],
            },
        },
    }


def patch_edge_config(path: Path, *, prefix: str, tag: str, metrics_port: int) -> str:
    """Set the topic prefix, a run-unique MQTT client id and a `/metrics` port; the gateway."""
    config = yaml.safe_load(path.read_text())
    config["topic_prefix"] = prefix
    config.setdefault("health", {})["metrics_listen"] = f"127.0.0.1:{metrics_port}"
    if "mqtt" in config:
        config["mqtt"]["client_id"] = f"{config['gateway']}-{tag}"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return str(config["gateway"])
