"""The scoring plan: which champion models score which profile, over which window (config).

One pydantic model validated at load (``extra="forbid"``, STYLE.md 4); an empty file gives
`DEFAULT_PLANS`, the shipped fleet (config/scoring.example.yaml shows every key). Durations are
written ``30m``, ``2h``, ``10d``; they are canonicalised here, once. Errors name the file, the key
and the value::

    scoring.yaml: profiles.turbomon_tm21_1.0.window must be a duration like '90s', '30m',
    '2h' or '10d'. Got 'long' instead. Got 'long' instead.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Annotated, Any, Final, Literal, Self

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator

from cloud._validation import format_validation_error
from cloud.alerting import AlertPolicy

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)\s*(s|m|min|h|d)$")
_UNITS: Final = {"s": 1, "m": 60, "min": 60, "h": 3600, "d": 86400}


class ScoringConfigError(ValueError):
    """The scoring configuration is invalid; startup stops with this message (never retried).

    Attributes:
        source: The file at fault.
    """

    def __init__(self, message: str, *, source: str) -> None:
        super().__init__(message)
        self.source = source


def parse_duration(value: object) -> object:
    """``90s``, ``30m``, ``2h``, ``10d`` (or a number of seconds) as a `datetime.timedelta`."""
    if isinstance(value, dt.timedelta):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return dt.timedelta(seconds=float(value))
    if isinstance(value, str) and (m := _DURATION.match(value.strip().casefold())):
        return dt.timedelta(seconds=float(m[1]) * _UNITS[m[2]])
    raise ValueError(f"must be a duration like '90s', '30m', '2h' or '10d'. Got {value!r} instead")


Duration = Annotated[dt.timedelta, BeforeValidator(parse_duration)]
Name = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")]
ModelKind = Literal["rul", "horizon_failure", "failure", "consumable", "consumable_online"]
Derive = Literal["none", "ai4i"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)


class ModelPlan(_Model):
    """One model applied to a profile: what it scores and how its output is read."""

    kind: ModelKind
    """``rul`` (a `models.RulPipeline`), ``horizon_failure`` (a `models.HorizonFailureModel`),
    ``failure`` (a `models.FailureClassifier` on the latest row), ``consumable`` (a registered
    `models.ConsumableLifeModel`, refitted per asset), ``consumable_online`` (a
    `models.ConsumableLifeModel` built from ``trend``/``noise``, fitted per asset)."""
    name: Name | None = None
    """The registry name of the champion; ``consumable_online`` has none."""
    target: Name
    """The failure mode or consumable scored (the ``target`` tag, the alert key)."""
    horizon: Duration | None = None
    """``failure``: the horizon its probability is for (AI4I: the next product)."""
    health_ref: Duration | None = None
    """RUL-like kinds: a lower bound of remaining life at or above which health is 100; default
    125 cycles for ``rul`` (the training cap), 7 days for consumables."""
    derive: Derive = "none"
    """``failure``: derived inputs computed from the latest row (``ai4i``: machine-type one-hot,
    temperature difference, power, overstrain)."""
    trend: Literal["linear", "exponential"] = "exponential"
    """``consumable_online``: the trend of the wear indicator."""
    noise: Literal["measurement", "random_walk"] = "measurement"
    """``consumable_online``: the noise model."""
    coverage: Annotated[float, Field(gt=0, lt=1)] = 0.8
    """Interval coverage of ``rul_lo``/``rul_hi``."""

    @model_validator(mode="after")
    def _named(self) -> Self:
        if self.kind == "consumable_online":
            if self.name is not None:
                raise ValueError("consumable_online is fitted per asset: it takes no name")
        elif self.name is None:
            raise ValueError(f"a {self.kind} model needs the registry name of its champion")
        if self.kind == "failure" and self.horizon is None:
            raise ValueError("a failure model needs its horizon (e.g. '1h')")
        return self

    @property
    def model_name(self) -> str:
        """The ``model_name`` tag: the registry name, or ``consumable_life_online``."""
        return self.name or "consumable_life_online"


class ProfilePlan(_Model):
    """How the assets of one firmware profile are scored."""

    window: Duration = dt.timedelta(hours=48)
    """How much telemetry to read, ending at the scoring time."""
    consumable_window: Duration = dt.timedelta(days=30)
    """How far back consumable kinds look for the history since the last replacement."""
    stale_after: Duration = dt.timedelta(hours=6)
    """A newest reading older than this is stale: the asset is skipped (``stale``)."""
    min_rows: Annotated[int, Field(ge=1)] = 5
    """Fewer rows (after de-duplication) is ``too_few_rows``."""
    cycle: Duration | None = None
    """C-MAPSS-like models count in cycles: the duration of one cycle in telemetry time. The
    window is re-laid on the model's axis (one cycle = one hour, as trained) from the cycle
    column, and remaining life is converted: ``rul_h = rul_cycles * cycle``."""
    cycle_signal: Name | None = None
    """The column that counts cycles (after ``rename``); rows are de-duplicated by it (the agent
    polls twice per cycle) and ordered by it."""
    rename: dict[Name, Name] = {}
    """Telemetry signal -> model input name (``cycle_count: cycle``)."""
    hours_signal: Name | None = None
    """A signal holding operating hours (or cycles, with ``hours_per_unit``), for usage rules;
    none: the asset record's ``operating_hours``."""
    hours_per_unit: Annotated[float, Field(gt=0)] = 1.0
    """Hours per unit of ``hours_signal``."""
    models: tuple[ModelPlan, ...] = ()
    """The models that score this profile."""

    @model_validator(mode="after")
    def _cycles(self) -> Self:
        if (self.cycle is None) != (self.cycle_signal is None):
            raise ValueError("cycle and cycle_signal go together")
        return self

    @property
    def cycle_h(self) -> float:
        """Hours per cycle (1.0 without cycles)."""
        return 1.0 if self.cycle is None else self.cycle.total_seconds() / 3600.0


class Rules(_Model):
    """Calendar and usage rules (profile consumables with ``interval_h`` / ``interval_days``)."""

    enabled: bool = True
    lookahead: Duration = dt.timedelta(days=30)
    """A rule fires this long before it is due (parts can be ordered)."""


ExplainMode = Literal["at_risk", "always", "never"]


class Explain(_Model):
    """Per-feature contributions stored with a score (issue 6): which scores, and how."""

    mode: ExplainMode = "at_risk"
    """``at_risk``: only the scores that could open, hold or re-open an alert: the target's
    highest risk at or above its alert policy's ``clear_level`` (the same policy the alert engine
    applies; a remaining life counts through its risk, ``1 - rul_lo / health_ref``), or an alert
    of the (asset, target) still active. ``always``: every score (the former behaviour, about
    5,000 model rows per C-MAPSS engine). ``never``: none (scores without ``explain``)."""
    top_k: Annotated[int, Field(ge=1, le=50)] = 5
    n_permutations: Annotated[int, Field(ge=2, le=64)] = 4
    max_background: Annotated[int, Field(ge=1, le=500)] = 20


class ScoringConfig(_Model):
    """The whole scoring configuration."""

    profiles: dict[Name, ProfilePlan] = {}
    """Profile id -> plan; profiles not named here are not scored (counted ``no_plan``)."""
    alert: AlertPolicy = AlertPolicy()
    """The default alert policy (docs/alerts.md); scores fed to it are risks in [0, 1]."""
    alerts: dict[Name, AlertPolicy] = {}
    """Per-target alert policies."""
    rules: Rules = Rules()
    explain: Explain = Explain()
    """Which scores carry an explanation (``mode``) and its settings; ``explain: never`` is
    short for ``explain: {mode: never}``."""
    warm_up: Duration = dt.timedelta(days=7)
    """At start, the alert engine re-observes the stored scores of this past span (the engine keeps
    scores only in memory; docs/alerts.md)."""
    batch_assets: Annotated[int, Field(ge=1, le=5000)] = 500
    """Assets of one site and profile per telemetry query; 1 = one query per asset. Measured
    (docs/scoring.md, 1,000 engines x 144 rows, real influxd 1.6): 47 s twenty at a time, 20 s
    five hundred at a time (regular expression)."""
    read_match: Literal["or", "regex"] = "regex"
    """How a query names its assets: one regular expression ``asset =~ /^(a|b|...)$/`` (measured
    the faster), or ``asset = 'a' OR asset = 'b' ...``."""
    batch_inference: bool = True
    """Each model runs once per pass over every asset's feature row (predictions and
    explanations); false: asset by asset, score, write, decide (the former path, same results)."""
    write_points: Annotated[int, Field(ge=1, le=100_000)] = 5000
    """``scores`` points per InfluxDB write request."""
    openmp_threads: Annotated[int, Field(ge=0, le=256)] = 1
    """OpenMP threads of the boosted trees, set once per scorer process; 0 leaves the library's
    default (one per core). One is right on shared cores: spinning threads made one engine's
    scoring 14x slower here."""

    def alert_policy(self, target: str) -> AlertPolicy:
        """The alert policy of `target` (as `cloud.alerting.AlertEngine.policy_for`)."""
        return self.alerts.get(target, self.alert)

    @model_validator(mode="before")
    @classmethod
    def _defaults(cls, data: Any) -> Any:  # noqa: ANN401 - pydantic's before-validator
        # An empty file is the shipped fleet; a file with `profiles` replaces it whole.
        if not isinstance(data, dict):
            return data
        if "profiles" not in data:
            data = {**data, "profiles": DEFAULT_PLANS}
        # AlertPolicy takes seconds or ISO 8601; this file takes '24h' like every other duration.
        # `explain: never` is short for `explain: {mode: never}`.
        if isinstance(data.get("explain"), str):
            data = {**data, "explain": {"mode": data["explain"]}}
        if isinstance(data.get("alert"), dict):
            data = {**data, "alert": _durations(data["alert"])}
        if isinstance(data.get("alerts"), dict):
            data = {**data, "alerts": {k: _durations(v) for k, v in data["alerts"].items()}}
        return data


def _durations(policy: object) -> object:
    if isinstance(policy, dict) and isinstance(policy.get("cooldown"), str):
        try:
            return {**policy, "cooldown": parse_duration(policy["cooldown"])}
        except ValueError:
            return policy  # pydantic reports it, naming the key
    return policy


DEFAULT_PLANS: Final[dict[str, Any]] = {
    "turbomon_tm21_1.0": {
        "window": "72h",
        "cycle": "1h",
        "cycle_signal": "cycle",
        "rename": {"cycle_count": "cycle"},
        "hours_signal": "cycle",
        "models": [
            {"kind": "rul", "name": "cmapss_rul", "target": "hpc_degradation"},
            {"kind": "horizon_failure", "name": "cmapss_failure", "target": "hpc_degradation"},
        ],
    },
    "millrite_spx12_5.1": {
        "window": "12h",
        "consumable_window": "20d",
        "hours_signal": "spindle_run_hours_h",
        "rename": {"spindle_speed_rpm": "speed_rpm", "spindle_torque_nm": "torque_nm"},
        "models": [
            {
                "kind": "failure",
                "name": "ai4i_failure",
                "target": "machine_failure",
                "horizon": "1h",
                "derive": "ai4i",
            },
            {"kind": "consumable", "name": "tool_wear", "target": "cutting_tool"},
        ],
    },
    "airtek_sc75_4.2": {
        "window": "12h",
        "consumable_window": "30d",
        "hours_signal": "run_hours_h",
        "models": [{"kind": "consumable_online", "target": "air_filter"}],
    },
    "fluidsense_hcm10_1.0": {
        "window": "1h",
        "models": [
            {
                "kind": "failure",
                "name": "hydraulic_cooler",
                "target": "cooler_failure",
                "horizon": "1m",
            }
        ],
    },
}
"""The shipped plans (the same as config/scoring.example.yaml)."""


def parse_config(data: object, *, source: str = "<scoring>") -> ScoringConfig:
    """Validate a scoring configuration mapping (``None``: the defaults).

    Raises:
        ScoringConfigError: Every problem, one line each naming the source, key and value.
    """
    try:
        return ScoringConfig.model_validate(data or {})
    except ValidationError as exc:
        raise ScoringConfigError(format_validation_error(exc, source), source=source) from None


def load_config(path: Path | str | None) -> ScoringConfig:
    """Load a scoring configuration file; ``None`` gives the defaults.

    Raises:
        ScoringConfigError: Unreadable, not YAML, or invalid (names file, key and value).
    """
    if path is None:
        return ScoringConfig()
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ScoringConfigError(
            f"{path}: cannot read the config: {exc}", source=str(path)
        ) from exc
    return parse_config(data, source=str(path))
