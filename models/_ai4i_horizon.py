"""AI4I 2020: probability that a machine fails within its next N products.

`models._failure.train_ai4i_failure` answers "does *this* product fail?" from the product's own
process values. A maintenance planner needs warning: "will the machine fail within the next N
products?". In AI4I 2020 (Matzka 2020) a failure is decided by the product's values: tool wear
(TWF, and OSF with torque), the temperature difference at low speed (HDF), power out of range
(PWF). Some of them change slowly from one product to the next (the tool wears by 2, 3 or 5 min
per product of type L, M or H; the temperatures follow slow random walks), others are drawn anew
for every product (speed and torque).

`Ai4iHorizonRisk` rolls the slow state forward and averages the per-product classifier over the
fast inputs: for each of the next N products k = 1..N, tool wear grows by k steps of the type's
wear rate, the temperatures and the type stay, and speed and torque are `n_draws` pairs sampled
once from the training products (product k's wear is that of the middle product of its block
of `stride` products: a third of the classifier calls). With p_k the mean failure probability
of product k,

    P(failure within N products) = 1 - prod_k (1 - p_k).

It takes the same inputs as the per-product classifier (`models._ai4i.FEATURES` of the newest
product), so the online scorer uses it unchanged (``derive: ai4i``). What it cannot do: warn of
a power failure, which depends only on the failing product's own speed and torque (random here).

`train_ai4i_horizon` evaluates it on the *later* part of the file (products in UDI order, the
order they were milled), against what happened to the next N products, beside the per-product
probability of the newest product (``row_*``: what the scorer used before) as the baseline.
"""

from __future__ import annotations

from typing import Any, Self

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from sklearn.base import BaseEstimator, ClassifierMixin

from models import _ai4i
from models._base import DataSource, TrainRequest, TrainResult, fingerprint
from models._failure import FailureClassifier, binary_metrics, calibration_png

WEAR_PER_PRODUCT_MIN: dict[float, float] = {0.0: 2.0, 1.0: 3.0, 2.0: 5.0}
"""Tool wear added by one product, by ``type_ordinal`` (L, M, H): the data set's generation rule."""

BACKGROUND_ROWS = 5
"""Reference rows kept for `models.explain` (the scorer explains every score it writes)."""

DEFAULT_HORIZON = 12
"""Products ahead (with one product an hour, as the simulator replays them: half a day)."""


class Ai4iHorizonRisk(ClassifierMixin, BaseEstimator):  # type: ignore[misc]
    """P(a machine failure within the next `horizon` products) from the newest product.

    Parameters
    ----------
    horizon : int
        Products ahead, >= 1.
    n_draws : int
        Speed and torque pairs sampled from the training products, >= 1 (16 score as well as 64
        on the test split, at a quarter of the cost).
    stride : int
        Products per evaluation of the classifier: the wear of a block's middle product stands
        for the block (3: a third of the cost; tool wear moves 2-5 min per product).
    learning_rate, max_iter, max_leaf_nodes, calibration :
        Of the per-product `models.FailureClassifier`.
    random_state : int
        Seed of the classifier's folds and of the draws.

    Attributes
    ----------
    classifier_ : FailureClassifier
        P(this product fails), fitted on the training products.
    draws_ : ndarray of shape (n_draws, 2)
        Speed (rpm) and torque (Nm) pairs.
    feature_names_in_ : ndarray of str
        `models._ai4i.FEATURES`.
    classes_ : ndarray
        ``[0, 1]``.
    background_ : pandas.DataFrame
        `BACKGROUND_ROWS` of the classifier's training sample (the reference of
        `models.explain`).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> raw = pd.DataFrame({
    ...     "type": rng.choice(["L", "M", "H"], 400), "air_temp_k": 300.0,
    ...     "process_temp_k": 310.0, "speed_rpm": rng.normal(1500, 150, 400),
    ...     "torque_nm": rng.normal(40, 8, 400), "tool_wear_min": rng.integers(0, 240, 400)})
    >>> X = _ai4i.features(raw)
    >>> y = (X["overstrain_min_nm"] > 9000).astype(int)
    >>> model = Ai4iHorizonRisk(horizon=5, n_draws=16, max_iter=20).fit(X, y)
    >>> risk = model.predict_proba(X)[:, 1]
    >>> worn = X["tool_wear_min"].to_numpy() > 230
    >>> bool(risk[worn].mean() > risk[X["tool_wear_min"].to_numpy() < 50].mean())
    True
    """

    def __init__(
        self,
        *,
        horizon: int = DEFAULT_HORIZON,
        n_draws: int = 16,
        stride: int = 3,
        learning_rate: float = 0.1,
        max_iter: int = 200,
        max_leaf_nodes: int = 15,
        calibration: str = "isotonic",
        random_state: int = 0,
    ) -> None:
        self.horizon = horizon
        self.n_draws = n_draws
        self.stride = stride
        self.learning_rate = learning_rate
        self.max_iter = max_iter
        self.max_leaf_nodes = max_leaf_nodes
        self.calibration = calibration
        self.random_state = random_state

    def fit(self, X: pd.DataFrame, y: ArrayLike) -> Self:
        """Fit the per-product classifier on `X` (`FEATURES`) and `y` (this product failed).

        Raises
        ------
        ValueError
            On ``horizon`` or ``n_draws`` below 1, a missing feature, or the classifier's errors.
        """
        if int(self.horizon) < 1 or int(self.n_draws) < 1:
            raise ValueError(
                f"Ai4iHorizonRisk: horizon and n_draws must be >= 1. "
                f"Got {self.horizon!r} and {self.n_draws!r} instead."
            )
        missing = [f for f in _ai4i.FEATURES if f not in X.columns]
        if missing:
            raise ValueError(f"Ai4iHorizonRisk: X lacks the features {missing}")
        frame = X[list(_ai4i.FEATURES)]
        self.classifier_ = FailureClassifier(
            learning_rate=self.learning_rate,
            max_iter=self.max_iter,
            max_leaf_nodes=self.max_leaf_nodes,
            calibration=self.calibration,  # type: ignore[arg-type]
            random_state=self.random_state,
        ).fit(frame, y)
        fast = frame[["speed_rpm", "torque_nm"]].sample(
            n=int(self.n_draws),
            replace=len(frame) < int(self.n_draws),
            random_state=self.random_state,
        )
        self.draws_ = fast.to_numpy(dtype=float)
        self.feature_names_in_ = np.asarray(_ai4i.FEATURES, dtype=object)
        self.classes_ = np.array([0, 1])
        # A short reference for explanations: each of its rows costs blocks x n_draws rows.
        self.background_ = self.classifier_.background_.iloc[:BACKGROUND_ROWS]
        return self

    def per_product(self, X: pd.DataFrame) -> np.ndarray:
        """P(product k fails), k = 1..horizon after each row of `X`: shape (len(X), horizon)."""
        frame = X[list(_ai4i.FEATURES)].to_numpy(dtype=float)
        names = list(_ai4i.FEATURES)
        col = {n: i for i, n in enumerate(names)}
        n, h, d = len(frame), int(self.horizon), len(self.draws_)
        # Tool wear moves by a few minutes per product: one evaluation per block of `stride`
        # products (at its middle product) stands for the whole block.
        stride = max(1, int(self.stride))
        block = np.arange(h) // stride
        starts = np.arange(0, h, stride)
        ends = np.minimum(starts + stride, h)
        ahead = ((starts + 1 + ends) // 2).astype(float)
        kind = frame[:, col["type_ordinal"]]
        rate = np.array([WEAR_PER_PRODUCT_MIN.get(float(t), 2.0) for t in kind], dtype=float)
        # (n, blocks, d): every row, every block of products ahead, every speed and torque draw.
        grid = np.repeat(frame[:, None, None, :], len(ahead), axis=1).repeat(d, axis=2)
        wear = frame[:, col["tool_wear_min"]][:, None] + rate[:, None] * ahead[None, :]
        grid[..., col["tool_wear_min"]] = wear[:, :, None]
        grid[..., col["speed_rpm"]] = self.draws_[None, None, :, 0]
        grid[..., col["torque_nm"]] = self.draws_[None, None, :, 1]
        grid[..., col["power_w"]] = (
            grid[..., col["torque_nm"]] * grid[..., col["speed_rpm"]] * (2.0 * np.pi / 60.0)
        )
        grid[..., col["overstrain_min_nm"]] = (
            grid[..., col["tool_wear_min"]] * grid[..., col["torque_nm"]]
        )
        flat = pd.DataFrame(grid.reshape(-1, len(names)), columns=names)
        p = self.classifier_.predict_proba(flat)[:, 1] if n else np.zeros(0)
        per_block = np.asarray(p, dtype=float).reshape(n, len(ahead), d).mean(axis=2)
        per: np.ndarray = per_block[:, block]
        return per

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        """``[[1 - r, r], ...]``, r = P(a failure within the next `horizon` products)."""
        per = self.per_product(X)
        risk = 1.0 - np.prod(1.0 - np.clip(per, 0.0, 1.0), axis=1)
        return np.column_stack([1.0 - risk, risk])

    def score(self, X: pd.DataFrame, y: Any = None) -> np.ndarray:  # noqa: ANN401, ARG002 - sklearn's signature
        """The risk, higher = worse (as `models.FailureClassifier.score`)."""
        return self.predict_proba(X)[:, 1]


def failure_within(failed: ArrayLike, horizon: int) -> np.ndarray:
    """1 where one of the next `horizon` products fails (the product itself not counted).

    The last `horizon` products have an incomplete look-ahead: they get -1 (left out).

    Examples
    --------
    >>> failure_within([0, 0, 1, 0, 0, 0], 2).tolist()
    [1, 1, 0, 0, -1, -1]
    """
    f = np.asarray(failed, dtype=int)
    out = np.full(len(f), -1, dtype=int)
    for i in range(len(f) - horizon):
        out[i] = int(f[i + 1 : i + 1 + horizon].any())
    return out


def train_ai4i_horizon(request: TrainRequest) -> TrainResult:
    """Train and evaluate P(machine failure within the next N products) on AI4I 2020.

    Protocol: products in UDI order (the order they were milled); the first ``1 - test_size``
    (default 0.75) train the per-product classifier (label: ``Machine failure``), the rest are
    the test split. On every test product with a complete look-ahead, the risk is compared with
    what happened to the next ``horizon`` products (default 12); the newest product's own
    failure probability (``row_*``) is the baseline. No threshold is tuned.

    Parameters
    ----------
    request : TrainRequest
        ``data`` holds ``ai4i2020.csv``. ``params`` may set ``horizon``, ``n_draws``, ``stride``,
        ``test_size`` and ``max_iter``.

    Returns
    -------
    TrainResult
        The fitted `Ai4iHorizonRisk`, its metrics, the split by ``product_id`` and a calibration
        PNG.
    """
    path = next((p for p in request.data if p.name == "ai4i2020.csv"), None)
    if path is None:
        raise FileNotFoundError(f"ai4i2020.csv is not among {[str(p) for p in request.data]}")
    raw = _ai4i.load_ai4i(path, max_units=request.max_units).sort_values("udi")
    raw = raw.reset_index(drop=True)
    X = _ai4i.features(raw)
    y = raw["machine_failure"].to_numpy(dtype=int)
    horizon = int(request.params.get("horizon", DEFAULT_HORIZON))
    n_draws = int(request.params.get("n_draws", 16))
    stride = int(request.params.get("stride", 3))
    test_size = float(request.params.get("test_size", 0.25))
    cut = round(len(raw) * (1.0 - test_size))
    model = Ai4iHorizonRisk(
        horizon=horizon,
        n_draws=n_draws,
        stride=stride,
        max_iter=int(request.params.get("max_iter", 200)),
        random_state=request.seed,
    ).fit(X.iloc[:cut], y[:cut])
    test_X = X.iloc[cut:]
    label = failure_within(y[cut:], horizon)
    keep = label >= 0
    risk = model.predict_proba(test_X[keep])[:, 1]
    row_p = model.classifier_.predict_proba(test_X[keep])[:, 1]
    metrics = binary_metrics(label[keep], risk)
    metrics.update(binary_metrics(label[keep], row_p, prefix="row_"))
    params = {
        "horizon": horizon,
        "n_draws": n_draws,
        "stride": stride,
        "test_size": test_size,
        **{k: v for k, v in model.classifier_.get_params().items() if k != "monotonic_cst"},
    }
    notes = (
        f"AI4I 2020, {len(raw)} products in UDI (milling) order; the first {cut} train the "
        f"per-product classifier, the last {len(raw) - cut} are the test split. Target: a "
        f"machine failure among the next {horizon} products. The risk rolls tool wear forward "
        f"at the type's rate and averages the per-product probability over {n_draws} speed and "
        "torque pairs drawn from the training products; `row_*` figures are the newest "
        "product's own failure probability against the same target (the baseline). Power "
        "failures depend on the failing product's own speed and torque: no model of the "
        "preceding products can warn of them."
    )
    ids = raw["product_id"].astype(str)
    return TrainResult(
        name="ai4i_horizon",
        kind="failure_probability",
        estimator=model,
        features=_ai4i.FEATURES,
        params=params,
        metrics=metrics,
        data=DataSource(paths=(str(path),), sha256=fingerprint([path]), rows=len(raw)),
        split={
            "unit": "product_id",
            "order": "udi",
            "train_units": ids.iloc[:cut].tolist(),
            "test_units": ids.iloc[cut:].tolist(),
        },
        figures={
            "calibration": calibration_png(
                {
                    f"failure within {horizon} products (test)": (label[keep], risk),
                    "newest product only (baseline)": (label[keep], row_p),
                },
                title=f"AI4I 2020: failure within {horizon} products, test split",
            )
        },
        notes=notes,
    )
