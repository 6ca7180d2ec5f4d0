"""Prognos models: training, evaluation, the model registry and its artifacts."""

from models._base import DataSource, Trainer, TrainRequest, TrainResult, fingerprint
from models._conditions import ConditionNormalizer
from models._consumable import (
    ConsumableLifeModel,
    Crossing,
    SimulatedRun,
    simulate_filter_dp,
    train_tool_wear,
)
from models._explain import Contribution, Explanation, explain, explain_many
from models._failure import (
    FailureClassifier,
    HorizonFailureModel,
    train_ai4i_failure,
    train_cmapss_failure,
)
from models._features import (
    STATS,
    FeatureSpec,
    feature_names,
    rolling_features,
    rolling_features_by,
    window_features,
)
from models._hydraulic import SIGNALS as HYDRAULIC_SIGNALS
from models._hydraulic import cooler_replay, load_hydraulic, train_hydraulic_cooler
from models._registry import LoadedModel, Registry, RegistryError
from models._rul import RulPipeline, RulRegressor, phm08_score
from models._train_rul import evaluate_cmapss_rul, train_cmapss_rul

__all__ = [  # noqa: RUF022 - sorted with key=str.casefold, the project rule (STYLE.md 1)
    "ConditionNormalizer",
    "ConsumableLifeModel",
    "Contribution",
    "cooler_replay",
    "Crossing",
    "DataSource",
    "evaluate_cmapss_rul",
    "explain",
    "explain_many",
    "Explanation",
    "FailureClassifier",
    "feature_names",
    "FeatureSpec",
    "fingerprint",
    "HorizonFailureModel",
    "HYDRAULIC_SIGNALS",
    "load_hydraulic",
    "LoadedModel",
    "phm08_score",
    "Registry",
    "RegistryError",
    "rolling_features",
    "rolling_features_by",
    "RulPipeline",
    "RulRegressor",
    "simulate_filter_dp",
    "SimulatedRun",
    "STATS",
    "train_ai4i_failure",
    "train_cmapss_failure",
    "train_cmapss_rul",
    "train_hydraulic_cooler",
    "train_tool_wear",
    "Trainer",
    "TrainRequest",
    "TrainResult",
    "window_features",
]
