"""How each probe protocol fits and selects its hyper-parameter on the valid split: the grids,
the per-protocol fits on standardised features, and the valid-split keys that rank them
(used by :mod:`mmfactor.evaluate.probes`, which validates inputs and wraps the result)."""

from __future__ import annotations

import copy
import warnings
from typing import Any, NamedTuple

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor
from sklearn.neural_network import MLPClassifier, MLPRegressor

from mmfactor.evaluate.logistic import logistic_path
from mmfactor.evaluate.metrics import r2_columns, regression_metrics

#: scikit-learn's inverse L2 strength ``C`` (objective: sum of log-losses + ``||w||^2 / 2C``),
#: visited from strong to weak regularisation so each fit warm-starts from the previous one.
LINEAR_C_GRID = (1e-3, 1e-2, 1e-1, 1.0, 1e1, 1e2)
#: Iteration budgets tried in turn for one ``C``; each fit stops at ``LINEAR_TOL`` first.
LINEAR_MAX_ITER = (1_000, 10_000)
#: For more than two classes, scikit-learn's Newton-Cholesky solver fits problems with at
#: most this many coefficients (features x classes); newton-cg (truncated Newton: conjugate
#: gradients on Hessian-vector products, no Hessian formed) the larger ones. All minimise the
#: same strictly convex objective. Newton's Hessian costs O(n p^2) per iteration but it
#: converges in ~10 iterations where lbfgs, on the ill-conditioned features of learned
#: factors at weak regularisation, needs thousands: on factorcl-sup's factors of synthetic
#: (2800 x 192-640, two classes, the whole C grid) 7.6 s against 44 s for 20 probes, test
#: accuracies within 0.01 (Newton's solutions are the more converged ones). Two classes now
#: go to :mod:`mmfactor.evaluate.logistic` (benchmarks/probe_speed.py: 2.6-4x faster again).
#: Above the limit, newton-cg took 15 s where lbfgs took 22 s on clip's factors of
#: Trifeatures (10000 x 256, 10 classes, the whole grid; benchmarks/probe_multiclass.py),
#: with at most 10 Newton steps per C, where lbfgs needs up to 1548 iterations and, past
#: its first budget of 1000, a second fit.
NEWTON_MAX_COEF = 1024
#: More than two classes: the C path stops once this many successive values of C have not
#: beaten the best valid key. Weak regularisation past the valid optimum is where the
#: solvers are slowest (nearly separable classes): one newton-cg probe of factorcl-sup's
#: 640-d factors of Trifeatures (10 classes) ran over 8 minutes in one fit of the path; the
#: two-class path (mmfactor.evaluate.logistic) is cheap and fits the whole grid.
LINEAR_PATH_PATIENCE = 2
#: Multinomial solvers' tolerance on the (projected) gradient of the *mean* log-loss
#: (scikit-learn scales the objective by 1 / (C n)), the scikit-learn default. The two-class
#: solver stops at 1e-6 (see :func:`mmfactor.evaluate.logistic.logistic_path`).
LINEAR_TOL = 1e-4
#: Ridge strength per train sample: ``alpha = lambda * n_train`` on the sum of squared
#: errors, i.e. ``lambda`` on the mean squared error of the standardised target, so the grid
#: means the same at every data set size.
RIDGE_LAMBDA_GRID = (1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0, 1e1)
MLP_HIDDEN = 256
MLP_ALPHA_GRID = (1e-4, 1e-2, 1.0)
#: Epoch budget of the MLP probe (Adam, batches of 200). It often stops earlier (training
#: loss flat for 10 epochs); on 2000 x 300 features valid accuracy moved by < 0.01 between
#: 50, 100 and 200 epochs, at 2-3 s per 100 epochs. Reaching the budget is part of the
#: protocol, not an error: the probe's ``converged`` attribute records it, and the
#: ``ConvergenceWarning`` is not propagated.
MLP_MAX_ITER = 100
KNN_K_GRID = (1, 5, 15, 31)

# Smallest probability used in the valid log-loss tie-break (labels unseen in train get it).
_PROB_FLOOR = 1e-12


class _Ridge:
    """Linear model ``X @ coef`` on standardised features (intercept 0: all centred)."""

    def __init__(self, coef: np.ndarray) -> None:
        self.coef = coef

    def predict(self, X: np.ndarray) -> np.ndarray:
        return X @ self.coef


class Fitted(NamedTuple):
    model: Any
    selected: dict[str, float | int]
    key: tuple[float, float]  # (valid score, tie-break) of the kept model
    grid_scores: dict[float | int, float]
    converged: bool


def _class_key(y: np.ndarray, proba: np.ndarray, classes: np.ndarray) -> tuple[float, float]:
    """(valid accuracy, -valid log-loss) of class probabilities ``(M, len(classes))``.

    The log-loss only breaks accuracy ties (frequent on small valid splits), in favour of the
    better calibrated model; a label absent from train gets probability ``_PROB_FLOOR``.
    """
    acc = float(np.mean(classes[np.argmax(proba, axis=1)] == y))
    col = np.searchsorted(classes, y).clip(max=len(classes) - 1)
    p_true = np.where(classes[col] == y, proba[np.arange(len(y)), col], 0.0)
    return acc, float(np.mean(np.log(np.maximum(p_true, _PROB_FLOOR))))


def _reg_key(y: np.ndarray, pred: np.ndarray) -> tuple[float, float]:
    return regression_metrics(y, pred)["r2"], 0.0


def _fit_converged(model: LogisticRegression, X: np.ndarray, y: np.ndarray) -> bool:
    """Fit ``model`` with growing iteration budgets; False if it never converges.

    The ConvergenceWarning is raised as an error so an unconverged fit is never kept (the
    warm-start coefficients of the model stay those of its last converged fit). So is
    newton-cg's "Line Search failed", after which scikit-learn stops without that warning
    and without having met its tolerance; the Wolfe search's own warnings, on a first try
    that its fallback search then completes, are not shown.
    """
    for max_iter in LINEAR_MAX_ITER:
        model.set_params(max_iter=max_iter)
        with warnings.catch_warnings():
            warnings.simplefilter("error", ConvergenceWarning)
            warnings.filterwarnings("error", "Line Search failed", UserWarning)
            warnings.filterwarnings("ignore", "The line search algorithm", RuntimeWarning)
            try:
                model.fit(X, y)
            except UserWarning:  # ConvergenceWarning or a failed line search
                continue
        return True
    return False


def _select_C(
    fits: list[Any], Zv: np.ndarray, yv: np.ndarray, grid_scores: dict[float | int, float]
) -> Fitted:
    """The fit of the path with the best valid key (accuracy, then log-loss)."""
    best: tuple[float, float] | None = None
    best_model: Any = None
    for model in fits:
        key = _class_key(yv, model.predict_proba(Zv), model.classes_)
        grid_scores[model.C] = key[0]
        if best is None or key > best:
            best, best_model = key, model
    if best is None:
        # C = 1e-3 is strongly convex and converges in a few iterations; not expected.
        raise RuntimeError("linear probe: no value of C converged")
    grid_scores = {C: grid_scores[C] for C in sorted(grid_scores)}  # the grid's order
    return Fitted(best_model, {"C": float(best_model.C)}, best, grid_scores, True)


def _linear_classifier(Z: np.ndarray, y: np.ndarray, Zv: np.ndarray, yv: np.ndarray) -> Fitted:
    # Warm starts along the increasing-C path: each solution is a good start for the next,
    # weaker-regularised problem, which cuts the iterations several-fold.
    # All solvers are deterministic (no seed); L2 and the multinomial loss are 1.9's defaults.
    n_classes = np.unique(y).size
    if n_classes == 2:
        fits = logistic_path(Z, y, LINEAR_C_GRID)
        grid: dict[float | int, float] = {f.C: float("nan") for f in fits if not f.converged}
        return _select_C([f for f in fits if f.converged], Zv, yv, grid)
    n_coef = Z.shape[1] * n_classes
    solver = "newton-cholesky" if n_coef <= NEWTON_MAX_COEF else "newton-cg"
    model = LogisticRegression(tol=LINEAR_TOL, warm_start=True, solver=solver)
    fits, grid_scores = [], {}
    best: tuple[float, float] | None = None
    behind = 0
    for C in LINEAR_C_GRID:
        model.set_params(C=C)
        if not _fit_converged(model, Z, y):
            grid_scores[C] = float("nan")
            continue
        # The path model moves on; keep a copy of this fit (coefficients: K x D floats).
        fits.append(copy.deepcopy(model))
        key = _class_key(yv, model.predict_proba(Zv), model.classes_)
        if best is None or key > best:
            best, behind = key, 0
        else:
            behind += 1
            if behind == LINEAR_PATH_PATIENCE:
                break
    return _select_C(fits, Zv, yv, grid_scores)


def fit_ridge(
    Z: np.ndarray,
    T: np.ndarray,
    Zv: np.ndarray,
    Yv: np.ndarray,
    y_mean: np.ndarray | float,
    y_std: np.ndarray | float,
) -> list[Fitted]:
    """Ridge for every column of the standardised targets ``T`` ``(N, J)`` at once, the
    strength chosen per column on valid (``Yv`` ``(M, J)`` in target units); ties go to the
    weakest regularisation (the first in the grid).

    One thin SVD serves every column and every alpha:
    w(alpha) = V diag(s / (s^2 + alpha)) U^T t. Z and T are centred: no intercept.
    """
    U, s, Vt = np.linalg.svd(Z, full_matrices=False)
    Ut_T = U.T @ T
    Pv = Zv @ Vt.T
    alphas = np.asarray(RIDGE_LAMBDA_GRID) * Z.shape[0]
    scores = np.stack(  # (grid, J) valid R^2
        [
            r2_columns(Yv, (Pv @ ((s / (s * s + alpha))[:, None] * Ut_T)) * y_std + y_mean)
            for alpha in alphas
        ]
    )
    best = scores.argmax(0)
    coef = Vt.T @ (s[:, None] / (s[:, None] ** 2 + alphas[best][None, :]) * Ut_T)
    return [
        Fitted(
            _Ridge(coef[:, j]),
            {"alpha": float(alphas[best[j]])},
            (float(scores[best[j], j]), 0.0),
            dict(zip(alphas.tolist(), scores[:, j].tolist(), strict=True)),
            True,
        )
        for j in range(T.shape[1])
    ]


def _mlp(
    task_kind: str,
    Z: np.ndarray,
    t: np.ndarray,
    Zv: np.ndarray,
    yv: np.ndarray,
    y_mean: float,
    y_std: float,
    seed: int,
) -> Fitted:
    cls = MLPClassifier if task_kind == "classification" else MLPRegressor
    best: tuple[float, float] | None = None
    best_model: Any = None
    grid_scores: dict[float | int, float] = {}
    for alpha in MLP_ALPHA_GRID:
        model = cls(
            hidden_layer_sizes=(MLP_HIDDEN,),
            alpha=alpha,
            max_iter=MLP_MAX_ITER,
            early_stopping=False,
            random_state=seed,
        )
        with warnings.catch_warnings():
            # Reaching the epoch budget is part of the protocol (see MLP_MAX_ITER); it is
            # recorded in Probe.converged instead of warned about.
            warnings.simplefilter("ignore", ConvergenceWarning)
            model.fit(Z, t)
        if task_kind == "classification":
            key = _class_key(yv, model.predict_proba(Zv), model.classes_)
        else:
            key = _reg_key(yv, model.predict(Zv) * y_std + y_mean)
        grid_scores[alpha] = key[0]
        if best is None or key > best:
            best, best_model = key, model
    assert best is not None
    converged = bool(best_model.n_iter_ < MLP_MAX_ITER)
    return Fitted(best_model, {"alpha": float(best_model.alpha)}, best, grid_scores, converged)


def _knn(
    task_kind: str,
    Z: np.ndarray,
    t: np.ndarray,
    Zv: np.ndarray,
    yv: np.ndarray,
    y_mean: float,
    y_std: float,
) -> Fitted:
    # One neighbour query with the largest k serves the whole grid: the k nearest are the
    # first k columns of the sorted neighbour list.
    grid = sorted({min(k, Z.shape[0]) for k in KNN_K_GRID})
    classification = task_kind == "classification"
    if classification:
        fitted = KNeighborsClassifier(n_neighbors=grid[-1]).fit(Z, t)
        classes = fitted.classes_
        codes = np.searchsorted(classes, t)  # neighbour labels as columns of classes
    else:
        fitted = KNeighborsRegressor(n_neighbors=grid[-1]).fit(Z, t)
    neigh = fitted.kneighbors(Zv, return_distance=False)  # (M, k_max), nearest first
    rows = np.arange(Zv.shape[0])[:, None]
    best: tuple[float, float] | None = None
    best_k = grid[0]
    grid_scores: dict[float | int, float] = {}
    for k in grid:
        if classification:
            counts = np.zeros((Zv.shape[0], len(classes)))
            np.add.at(counts, (rows, codes[neigh[:, :k]]), 1.0)
            key = _class_key(yv, counts / k, classes)
        else:
            key = _reg_key(yv, t[neigh[:, :k]].mean(axis=1) * y_std + y_mean)
        grid_scores[k] = key[0]
        if best is None or key > best:
            best, best_k = key, k
    assert best is not None
    fitted.set_params(n_neighbors=best_k)  # k is a query-time parameter: no refit needed
    return Fitted(fitted, {"n_neighbors": int(best_k)}, best, grid_scores, True)


def fit_protocol(
    protocol: str,
    task_kind: str,
    Z: np.ndarray,
    t: np.ndarray,
    Zv: np.ndarray,
    yv: np.ndarray,
    y_mean: float,
    y_std: float,
    seed: int,
) -> Fitted:
    if protocol == "linear-probe":
        if task_kind == "classification":
            return _linear_classifier(Z, t, Zv, yv)
        return fit_ridge(Z, t[:, None], Zv, yv[:, None], y_mean, y_std)[0]
    if protocol == "mlp-probe":
        return _mlp(task_kind, Z, t, Zv, yv, y_mean, y_std, seed)
    return _knn(task_kind, Z, t, Zv, yv, y_mean, y_std)
