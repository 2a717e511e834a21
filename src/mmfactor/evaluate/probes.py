"""Method-agnostic probes on feature arrays: linear, MLP and k-nearest-neighbour.

A probe is fitted on the train split; its one hyper-parameter (regularisation strength, or
``k``) is chosen on the valid split from a fixed grid; the model kept is the one trained on
train with the selected value (valid is never trained on, and the test split is never seen
here). Features are standardised with train statistics.

Protocols (the grids and fits: :mod:`mmfactor.evaluate.probe_fits`):

- ``linear-probe``: logistic regression, ``C`` from :data:`LINEAR_C_GRID`; two classes by
  Newton's method with a float32 Hessian (:mod:`mmfactor.evaluate.logistic`), more classes
  multinomial (scikit-learn's Newton-Cholesky up to :data:`NEWTON_MAX_COEF` coefficients,
  else newton-cg),
  fitted to convergence (a fit that raises scikit-learn's ``ConvergenceWarning`` is retried
  with a larger iteration budget, and dropped from the grid if it still does not converge,
  so no such warning ever leaks). Regression: ridge on the standardised target, ``alpha``
  from :data:`RIDGE_LAMBDA_GRID` (times the number of train samples).
- ``mlp-probe``: one hidden layer of 256 ReLU units (Adam), L2 ``alpha`` from
  :data:`MLP_ALPHA_GRID`, a fixed epoch budget, no early stopping.
- ``knn``: ``k`` from :data:`KNN_K_GRID` (capped at the number of train samples).

Selection criterion on valid: accuracy for classification (ties broken by the lower valid
log-loss), R^2 for regression.
"""

from __future__ import annotations

import contextlib
from collections.abc import Hashable, Mapping
from typing import Any, TypeVar

import numpy as np
from joblib import Parallel, delayed
from threadpoolctl import ThreadpoolController

from mmfactor.errors import InputError
from mmfactor.evaluate.metrics import (
    classification_metrics,
    regression_metrics,
    sentiment_metrics,
)
from mmfactor.evaluate.probe_fits import Fitted, fit_protocol, fit_ridge

PROTOCOLS = ("linear-probe", "mlp-probe", "knn")
TASK_KINDS = ("classification", "regression")

#: Below this many train feature values (N * D), BLAS and OpenMP run single-threaded inside
#: a probe. Its products are then small enough that thread synchronisation dominates, and
#: worse, OpenBLAS / OpenMP threads spin while waiting: on 2 cores shared with another busy
#: process, the 2000 x 300, 10-class lbfgs path took 30 s with 2 threads and 1 s with one,
#: and the MLP probe ran 5x slower.
SINGLE_THREAD_BELOW = 8_000_000
#: Probes on at least this many train feature values (N * D) are worth a worker process of
#: their own (:func:`fit_probes`); smaller ones fit in less time than a transfer to one.
PARALLEL_FROM = 1_000_000


_CONTROLLER: ThreadpoolController | None = None


def thread_limit(limit: int | None) -> contextlib.AbstractContextManager[Any]:
    """BLAS / OpenMP threads capped at ``limit`` inside the block (None: unchanged).

    One controller serves every call: making one (what ``threadpool_limits`` does each
    time) scans the loaded libraries, 2.3 ms against 0.02 ms for reusing it (measured), and
    scoring a probe is often quicker than that.
    """
    global _CONTROLLER
    if limit is None:
        return contextlib.nullcontext()
    if _CONTROLLER is None:
        _CONTROLLER = ThreadpoolController()
    return _CONTROLLER.limit(limits=limit)


class _Standardizer:
    """``(x - mean) / std`` per feature, with statistics of the train split.

    A feature that is constant on train (std zero, or at rounding level relative to its
    mean) is mapped to 0 everywhere: it carries no train information, and scaling by a
    vanishing std would blow up rounding noise or any variation it has at test time.
    """

    def __init__(self, X: np.ndarray) -> None:
        X64 = X.astype(np.float64, copy=False)
        self.mean = X64.mean(axis=0)
        std = X64.std(axis=0)
        constant = std <= 1e-9 * np.abs(self.mean)
        self.inv_std = np.where(constant, 0.0, 1.0 / np.where(constant, 1.0, std))

    def __call__(self, X: np.ndarray, dtype: type = np.float64) -> np.ndarray:
        # Subtract and scale in float64 (features may be large and offset), then cast.
        return ((X - self.mean) * self.inv_std).astype(dtype, copy=False)


class Probe:
    """A fitted probe.

    Attributes:
        protocol: one of :data:`PROTOCOLS`.
        task_kind: ``"classification"`` or ``"regression"``.
        selected: the hyper-parameter chosen on valid, e.g. ``{"C": 0.1}``,
            ``{"alpha": 20.0}``, ``{"n_neighbors": 15}``.
        valid_score: the selected model's valid accuracy (classification) or R^2
            (regression).
        grid_scores: valid score of every grid value tried (``nan`` for a value whose fit did
            not converge and was dropped).
        n_features: number of input features.
        n_classes: ``K``, one more than the largest label seen in train or valid (0 for
            regression); the width of :meth:`predict_scores`.
        converged: whether the kept model's optimiser met its tolerance (always true for the
            linear probe; the MLP probe may stop at its epoch budget).
    """

    def __init__(
        self,
        protocol: str,
        task_kind: str,
        model: Any,
        scaler: _Standardizer,
        selected: dict[str, float | int],
        valid_score: float,
        grid_scores: dict[float | int, float],
        n_features: int,
        n_classes: int = 0,
        y_mean: float = 0.0,
        y_std: float = 1.0,
        converged: bool = True,
        dtype: type = np.float64,
        threads: int | None = None,
    ) -> None:
        self.protocol = protocol
        self.task_kind = task_kind
        self.model = model
        self.selected = selected
        self.valid_score = valid_score
        self.grid_scores = grid_scores
        self.n_features = n_features
        self.n_classes = n_classes
        self.converged = converged
        self._scaler = scaler
        self._y_mean = y_mean
        self._y_std = y_std
        self._dtype = dtype
        self._threads = threads

    def __repr__(self) -> str:
        return (
            f"Probe({self.protocol!r}, {self.task_kind!r}, selected={self.selected}, "
            f"valid_score={self.valid_score:.4f})"
        )

    def _features(self, X: np.ndarray) -> np.ndarray:
        X = _check_features(X, "X")
        if X.shape[1] != self.n_features:
            raise InputError(
                f"X has {X.shape[1]} features; the probe was fitted on {self.n_features}"
            )
        return self._scaler(X, self._dtype)

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Class labels ``(N,)`` (int64) or regression values ``(N,)`` (float64) for ``X``
        ``(N, D)``."""
        Z = self._features(X)
        with thread_limit(self._threads):
            out = np.asarray(self.model.predict(Z))
        if self.task_kind == "classification":
            return out.astype(np.int64)
        return out.astype(np.float64).reshape(-1) * self._y_std + self._y_mean

    def predict_scores(self, X: np.ndarray) -> np.ndarray:
        """Class probabilities ``(N, K)`` (zero columns for classes absent from train), or
        regression values ``(N,)``, for ``X`` ``(N, D)``."""
        if self.task_kind == "regression":
            return self.predict(X)
        Z = self._features(X)
        with thread_limit(self._threads):
            proba = self.model.predict_proba(Z)
        out = np.zeros((proba.shape[0], self.n_classes), dtype=np.float64)
        out[:, self.model.classes_] = proba
        return out


# --------------------------------------------------------------------------- validation


def _check_features(X: Any, name: str) -> np.ndarray:
    arr = np.asarray(X)
    if arr.dtype == bool:
        arr = arr.astype(np.float32)
    if not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)):
        raise InputError(f"{name} must be a real numeric array, got dtype {arr.dtype}")
    if arr.ndim != 2:
        raise InputError(f"{name} must be 2-D (samples, features), got shape {arr.shape}")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise InputError(f"{name} is empty: shape {arr.shape}")
    if np.issubdtype(arr.dtype, np.floating):
        finite = np.isfinite(arr)
        if not finite.all():
            bad = int(arr.size - np.count_nonzero(finite))
            raise InputError(
                f"{name} contains {bad} non-finite value(s) (NaN or inf); probes need "
                "finite features"
            )
    return arr


def _check_labels(y: Any, n: int, task_kind: str, name: str) -> np.ndarray:
    arr = np.asarray(y)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1:
        raise InputError(f"{name} must be 1-D (samples,), got shape {arr.shape}")
    if arr.shape[0] != n:
        raise InputError(f"{name} has {arr.shape[0]} labels but the features have {n} rows")
    if arr.dtype == bool:
        arr = arr.astype(np.int64)
    if not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)):
        raise InputError(f"{name} must be numeric, got dtype {arr.dtype}")
    if not np.isfinite(arr).all():
        raise InputError(f"{name} contains non-finite value(s) (NaN or inf)")
    if task_kind == "regression":
        return arr.astype(np.float64, copy=False)
    if (arr < 0).any() or (np.issubdtype(arr.dtype, np.floating) and (arr != np.round(arr)).any()):
        raise InputError(f"{name}: classification labels must be integers 0..K-1")
    return arr.astype(np.int64, copy=False)


def _check_split(split: Any, task_kind: str, name: str) -> tuple[np.ndarray, np.ndarray]:
    try:
        X, y = split
    except (TypeError, ValueError):
        raise InputError(f"{name} must be a pair (X, y)") from None
    X = _check_features(X, f"{name} X")
    return X, _check_labels(y, X.shape[0], task_kind, f"{name} y")


# --------------------------------------------------------------------------- public API


def fit_probe(
    protocol: str,
    task_kind: str,
    train: tuple[np.ndarray, np.ndarray],
    valid: tuple[np.ndarray, np.ndarray],
    seed: int = 0,
) -> Probe:
    """Fit a probe on ``train``, choosing its hyper-parameter on ``valid``.

    Args:
        protocol: ``"linear-probe"``, ``"mlp-probe"`` or ``"knn"``.
        task_kind: ``"classification"`` (labels are integers ``0..K-1``) or ``"regression"``
            (float targets).
        train: ``(X, y)`` with ``X`` ``(N, D)`` real features and ``y`` ``(N,)`` labels.
        valid: ``(X, y)`` with ``X`` ``(M, D)`` and ``y`` ``(M,)``; used only for selection.
        seed: seeds the MLP's initialisation and batch order.

    Raises:
        InputError: unknown protocol or task kind; malformed, mismatched or non-finite
            arrays; fewer than two classes in the train labels.
    """
    if protocol not in PROTOCOLS:
        raise InputError(f"unknown protocol {protocol!r}; protocols: {', '.join(PROTOCOLS)}")
    if task_kind not in TASK_KINDS:
        raise InputError(f"unknown task kind {task_kind!r}; kinds: {', '.join(TASK_KINDS)}")
    X, y = _check_split(train, task_kind, "train")
    Xv, yv = _check_split(valid, task_kind, "valid")
    if Xv.shape[1] != X.shape[1]:
        raise InputError(f"valid X has {Xv.shape[1]} features but train X has {X.shape[1]}")
    classification = task_kind == "classification"
    n_classes = 0
    if classification:
        if np.unique(y).size < 2:
            raise InputError("train y: classification needs at least 2 classes in train")
        n_classes = int(max(y.max(), yv.max())) + 1

    scaler = _Standardizer(X)
    y_mean, y_std = 0.0, 1.0
    t = y
    if not classification:
        mean, std = _target_scale(y)
        y_mean, y_std = float(mean), float(std)
        t = (y - y_mean) / y_std

    # float64 where Newton's line searches or the SVD need it; float32 halves the cost of the
    # MLP's and k-NN's dense products, where it costs no accuracy.
    dtype = np.float64 if protocol == "linear-probe" else np.float32
    Z, Zv = scaler(X, dtype), scaler(Xv, dtype)
    threads = 1 if X.size < SINGLE_THREAD_BELOW else None
    with thread_limit(threads):
        fitted = fit_protocol(protocol, task_kind, Z, t, Zv, yv, y_mean, y_std, seed)
    return _probe(
        protocol, task_kind, fitted, scaler, X.shape[1], n_classes, y_mean, y_std, dtype, threads
    )


K = TypeVar("K", bound=Hashable)
#: One probe to fit: :func:`fit_probe`'s arguments ``(protocol, task_kind, train, valid, seed)``.
ProbeJob = tuple[str, str, tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray], int]


def fit_probes(jobs: Mapping[K, ProbeJob], workers: int = 1) -> dict[K, Probe]:
    """:func:`fit_probe` of each job, keyed as ``jobs``; up to ``workers`` at a time.

    A probe on fewer than :data:`SINGLE_THREAD_BELOW` feature values runs its BLAS on one
    thread, so where there are several such probes of at least :data:`PARALLEL_FROM` values,
    they are fitted side by side in ``workers`` processes (joblib's reusable pool: its
    workers start once, about 6 s, and stay for the next call). Processes, not threads:
    warning filters, which the fits use to catch solvers that did not converge, are global to
    a process. The other probes are fitted here, one at a time. Each fit is deterministic,
    so the probes are those of one-by-one fits. On 2 cores, ``mmfactor evaluate`` of a clip
    run on Trifeatures (10000 x 256 features; four targets, three of 10 classes) took 62 s
    against 100 s one by one (``OMP_NUM_THREADS=1``: torch's thread count sets ``workers``
    in :class:`~mmfactor.evaluate.protocol.Encodings`).
    """
    parallel = [
        k for k, job in jobs.items() if PARALLEL_FROM <= job[2][0].size < SINGLE_THREAD_BELOW
    ]
    probes: dict[K, Probe] = {}
    if workers > 1 and len(parallel) > 1:
        pool = Parallel(n_jobs=min(workers, len(parallel)), backend="loky")
        probes = dict(
            zip(parallel, pool(delayed(fit_probe)(*jobs[k]) for k in parallel), strict=True)
        )
    return {k: probes[k] if k in probes else fit_probe(*job) for k, job in jobs.items()}


def _probe(
    protocol: str,
    task_kind: str,
    fitted: Fitted,
    scaler: _Standardizer,
    n_features: int,
    n_classes: int,
    y_mean: float,
    y_std: float,
    dtype: type,
    threads: int | None,
) -> Probe:
    return Probe(
        protocol,
        task_kind,
        fitted.model,
        scaler,
        fitted.selected,
        float(fitted.key[0]),
        fitted.grid_scores,
        n_features=n_features,
        n_classes=n_classes,
        y_mean=y_mean,
        y_std=y_std,
        converged=fitted.converged,
        dtype=dtype,
        threads=threads,
    )


def ridge_probes(
    train: tuple[np.ndarray, np.ndarray], valid: tuple[np.ndarray, np.ndarray]
) -> list[Probe]:
    """Linear (ridge) probes for every column of ``Y`` ``(N, J)``: the same probes as
    ``fit_probe("linear-probe", "regression", (X, Y[:, j]), (Xv, Yv[:, j]))`` for each j, from
    one SVD of the standardised features instead of J.

    Example:
        >>> X = np.random.default_rng(0).normal(size=(200, 5))
        >>> probes = ridge_probes((X, X[:, :2]), (X, X[:, :2]))
        >>> len(probes), probes[0].valid_score > 0.99
        (2, True)
    """
    X, Y = _check_targets(train, "train")
    Xv, Yv = _check_targets(valid, "valid")
    if Xv.shape[1] != X.shape[1] or Yv.shape[1] != Y.shape[1]:
        raise InputError(
            f"valid (X, Y) have widths {Xv.shape[1]}, {Yv.shape[1]}; train has "
            f"{X.shape[1]}, {Y.shape[1]}"
        )
    scaler = _Standardizer(X)
    y_mean, y_std = _target_scale(Y)
    Z, Zv = scaler(X), scaler(Xv)
    threads = 1 if X.size < SINGLE_THREAD_BELOW else None
    with thread_limit(threads):
        fitted = fit_ridge(Z, (Y - y_mean) / y_std, Zv, Yv, y_mean, y_std)
    return [
        _probe(
            "linear-probe",
            "regression",
            f,
            scaler,
            X.shape[1],
            0,
            float(y_mean[j]),
            float(y_std[j]),
            np.float64,
            threads,
        )
        for j, f in enumerate(fitted)
    ]


def _check_targets(split: Any, name: str) -> tuple[np.ndarray, np.ndarray]:
    try:
        X, Y = split
    except (TypeError, ValueError):
        raise InputError(f"{name} must be a pair (X, Y)") from None
    X = _check_features(X, f"{name} X")
    Y = _check_features(Y, f"{name} Y").astype(np.float64, copy=False)
    if Y.shape[0] != X.shape[0]:
        raise InputError(f"{name} Y has {Y.shape[0]} rows but X has {X.shape[0]}")
    return X, Y


def _target_scale(y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation of regression targets over axis 0. Probes fit the
    standardised target, so the ridge / MLP regularisation means the same for any scale; a
    constant target (up to rounding) keeps std 1 (predictions are then its mean)."""
    mean, std = y.mean(0), y.std(0)
    return mean, np.where(std <= 1e-9 * np.abs(mean), 1.0, std)


def score_probe(
    probe: Probe, X: np.ndarray, y: np.ndarray, task_kind: str, sentiment: bool = False
) -> dict[str, float]:
    """Metrics of ``probe`` on ``X`` ``(N, D)`` against labels ``y`` ``(N,)``.

    Classification: ``accuracy``, ``f1_macro``, ``f1_weighted``; regression: ``mse``,
    ``mae``, ``r2``, ``corr``, plus the sentiment metrics when ``sentiment`` (see
    :mod:`mmfactor.evaluate.metrics`).
    """
    if task_kind != probe.task_kind:
        raise InputError(f"task kind {task_kind!r} does not match the probe's {probe.task_kind!r}")
    X = _check_features(X, "X")
    y = _check_labels(y, X.shape[0], task_kind, "y")
    return prediction_metrics(y, probe.predict(X), task_kind, sentiment)


def prediction_metrics(
    y: np.ndarray, pred: np.ndarray, task_kind: str, sentiment: bool = False
) -> dict[str, float]:
    """The metrics of predicted labels (classes) or values (regression) for a target."""
    if task_kind == "classification":
        return classification_metrics(y, pred)
    scores = regression_metrics(y, pred)
    if sentiment:
        scores.update(sentiment_metrics(y, pred))
    return scores
