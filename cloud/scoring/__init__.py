"""Scoring: champion models on each asset's telemetry window -> ``scores``, alerts, work orders.

`prognos score` (docs/scoring.md) runs `Scorer` on a schedule: for every asset of its shard it
reads the window from InfluxDB, scores it with the champion models of the asset's profile
(`ScoringConfig`: failure probability per horizon, remaining life with its interval, consumable
life, a health score and the signals that drove each score), writes the ``scores`` measurement,
feeds the alert engine and creates work orders (`Decider`). The core (`score_asset`,
`prepare_window`) is pure; `Scorer` is the thin I/O shell.
"""

from cloud.scoring._config import (
    DEFAULT_PLANS,
    ModelPlan,
    ProfilePlan,
    ScoringConfig,
    ScoringConfigError,
    load_config,
    parse_config,
)
from cloud.scoring._core import (
    AssetOutcome,
    ConsumableSpec,
    ExplainRule,
    Score,
    explain_rule,
    health_from_life,
    health_from_probability,
    prepare_window,
    score_asset,
    specs_from_names,
    stable_shard,
)
from cloud.scoring._decide import Decider, Decisions
from cloud.scoring._metrics import ScorerMetrics
from cloud.scoring._scorer import PassReport, Scorer, Shard

__all__ = [  # noqa: RUF022 - sorted with key=str.casefold, the project rule (STYLE.md 1)
    "AssetOutcome",
    "ConsumableSpec",
    "Decider",
    "Decisions",
    "DEFAULT_PLANS",
    "explain_rule",
    "ExplainRule",
    "health_from_life",
    "health_from_probability",
    "load_config",
    "ModelPlan",
    "parse_config",
    "PassReport",
    "prepare_window",
    "ProfilePlan",
    "Score",
    "score_asset",
    "Scorer",
    "ScorerMetrics",
    "ScoringConfig",
    "ScoringConfigError",
    "Shard",
    "specs_from_names",
    "stable_shard",
]
