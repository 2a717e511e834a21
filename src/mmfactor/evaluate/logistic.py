"""Binary L2-regularised logistic regression by Newton's method along a path of ``C`` values:
the linear probe's solver for two-class targets.

The objective is scikit-learn's ``LogisticRegression(C=C)`` (L2 penalty, unpenalised
intercept), written as a mean over the ``n`` samples::

    L(w, b) = 1/n sum_i [log(1 + exp(eta_i)) - y_i eta_i] + ||w||^2 / (2 C n),
    eta = Z w + b,

strictly convex, so the minimiser is unique and any converged solver finds it. Newton's
method with an Armijo backtracking line search; converged when the largest gradient entry
and half the squared Newton decrement are both at most ``tol`` (scikit-learn's
``newton-cholesky`` criterion, Boyd and Vandenberghe 2004, section 9.5). Each ``C`` starts
from the previous one's solution (the path runs from strong to weak regularisation).

Why not scikit-learn's solver: a probe fit is almost all Hessian, ``Z^T diag(s) Z``, ``n p^2``
multiply-adds per iteration. Here it is formed in float32 from a float32 copy of ``Z`` made
once per path, at twice the float64 speed, while the gradient, the loss and the Cholesky
solve stay in float64; and it is recomputed only when an older one stops giving good steps
(see :func:`_fit_one`), which halves the Hessians per ``C``. An inexact Hessian only changes
the path to the minimiser, not the minimiser: convergence is judged on the float64 gradient,
and a float32 Hessian that is not positive definite (rounding, at weak regularisation) is
rebuilt in float64.

Example:
    >>> rng = np.random.default_rng(0)
    >>> Z = rng.normal(size=(500, 5))
    >>> y = (Z[:, 0] + 0.5 * rng.normal(size=500) > 0).astype(np.int64)
    >>> fits = logistic_path(Z, y, Cs=(0.1, 1.0))
    >>> [f.converged for f in fits], bool(fits[1].coef[0] > fits[0].coef[0] > 0)
    ([True, True], True)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.linalg
from scipy.special import expit

#: Halvings of the step tried by the line search (down to 2^-20 ~ 1e-6).
LINE_SEARCH_STEPS = 21
#: Armijo's sufficient-decrease constant.
ARMIJO = 1e-4


@dataclass
class BinaryLogistic:
    """A fitted two-class logistic model on features ``(N, p)``; the scikit-learn subset the
    probes use (``classes_``, ``C``, ``predict``, ``predict_proba``)."""

    coef: np.ndarray  # (p,)
    intercept: float
    C: float
    classes_: np.ndarray  # (2,): the label of class 0 and of class 1
    converged: bool = True
    n_iter: int = 0

    def decision_function(self, Z: np.ndarray) -> np.ndarray:
        """``eta = Z w + b`` ``(N,)``: the log-odds of ``classes_[1]``."""
        return Z @ self.coef + self.intercept

    def predict_proba(self, Z: np.ndarray) -> np.ndarray:
        """Class probabilities ``(N, 2)`` in the order of ``classes_``."""
        p1 = expit(self.decision_function(Z))
        return np.stack([1.0 - p1, p1], axis=1)

    def predict(self, Z: np.ndarray) -> np.ndarray:
        """The more probable class label per row ``(N,)`` (``classes_[0]`` on a tie)."""
        return self.classes_[(self.decision_function(Z) > 0).astype(np.int64)]


def _loss(eta: np.ndarray, y: np.ndarray, w: np.ndarray, l2: float) -> float:
    return float(np.mean(np.logaddexp(0.0, eta) - y * eta) + 0.5 * l2 * (w @ w))


def _gradient(
    Z: np.ndarray, y: np.ndarray, theta: np.ndarray, eta: np.ndarray, l2: float
) -> tuple[np.ndarray, np.ndarray]:
    """Probabilities ``(N,)`` and the gradient of ``L`` in ``(w, b)`` ``(p + 1,)``."""
    prob = expit(eta)
    residual = (prob - y) / Z.shape[0]
    return prob, np.append(Z.T @ residual + l2 * theta[:-1], residual.sum())


class _Curvature:
    """The data part of the Hessian, ``[Z, 1]^T diag(s / n) [Z, 1]`` ``(p + 1, p + 1)`` with
    ``s = p (1 - p)`` at some point, kept between Newton steps and from one ``C`` to the next,
    and the Cholesky factor of the whole Hessian at the current ``C``."""

    def __init__(self, Z: np.ndarray) -> None:
        self.Z = Z
        self.Z32 = Z.astype(np.float32)  # one copy for every Hessian of the path
        self.data: np.ndarray | None = None
        self._factor: tuple[np.ndarray, bool] | None = None
        self._l2 = math.nan

    def update(self, prob: np.ndarray, exact: bool = False) -> None:
        """Recompute at the point with probabilities ``prob``; the ``Z^T diag(s) Z`` block in
        float32 unless ``exact``."""
        Z, (n, p) = self.Z, self.Z.shape
        sn = prob * (1.0 - prob) / n
        data = np.empty((p + 1, p + 1))
        if exact:
            data[:p, :p] = Z.T @ (Z * sn[:, None])
        else:
            data[:p, :p] = self.Z32.T @ (self.Z32 * sn.astype(np.float32)[:, None])
        data[:p, p] = data[p, :p] = Z.T @ sn
        data[p, p] = sn.sum()
        self.data, self._factor = data, None

    def hessian(self, l2: float) -> np.ndarray:
        """The Hessian of ``L`` at penalty ``l2 = 1 / (C n)`` (the intercept unpenalised)."""
        assert self.data is not None
        H = self.data.copy()
        diagonal = np.arange(H.shape[0] - 1)
        H[diagonal, diagonal] += l2
        return H

    def quadratic_form(self, step: np.ndarray, l2: float) -> float:
        """``step^T H step`` at penalty ``l2``, without forming ``H``."""
        assert self.data is not None
        return float(step @ self.data @ step + l2 * (step[:-1] @ step[:-1]))

    def newton_step(self, grad: np.ndarray, l2: float, prob: np.ndarray) -> np.ndarray:
        """``-H^-1 grad``. A float32 block that is not numerically positive definite is
        recomputed in float64 at the current point; failing that too (only at an extreme
        ``C``), a least-squares step."""
        if self._factor is None or self._l2 != l2:
            self._factor, self._l2 = None, l2
            for exact in (False, True):
                if exact:
                    self.update(prob, exact=True)
                try:
                    self._factor = scipy.linalg.cho_factor(self.hessian(l2), check_finite=False)
                    break
                except np.linalg.LinAlgError:
                    continue
        if self._factor is None:
            return -np.linalg.lstsq(self.hessian(l2), grad, rcond=None)[0]
        return -scipy.linalg.cho_solve(self._factor, grad, check_finite=False)


def _fit_one(
    Z: np.ndarray,
    y: np.ndarray,
    C: float,
    start: np.ndarray,
    curvature: _Curvature,
    tol: float,
    max_iter: int,
) -> tuple[np.ndarray, bool, int]:
    """Minimise ``L`` for one ``C`` from ``start`` ``(p + 1,)`` = ``[w; b]``.

    Lazy Newton: a step uses the curvature where it was last computed (an earlier iteration,
    or the previous ``C``'s). When the full step fails the line search or does not halve the
    largest gradient entry, the curvature is recomputed at the new point, so the next steps
    are exact Newton steps until they converge quickly again.
    """
    n, p = Z.shape
    l2 = 1.0 / (C * n)
    theta = start.copy()
    eta = Z @ theta[:p] + theta[p]
    loss = _loss(eta, y, theta[:p], l2)
    prob, grad = _gradient(Z, y, theta, eta, l2)
    if curvature.data is None:
        curvature.update(prob)
    rounding = 16 * np.finfo(float).eps
    for iteration in range(1, max_iter + 1):
        step = curvature.newton_step(grad, l2, prob)
        slope = float(grad @ step)  # < 0: a descent direction
        t = 1.0
        for _ in range(LINE_SEARCH_STEPS):
            candidate = theta + t * step
            eta_new = Z @ candidate[:p] + candidate[p]
            loss_new = _loss(eta_new, y, candidate[:p], l2)
            # A sufficient decrease, or a change at the rounding level of the loss.
            if loss_new <= loss + ARMIJO * t * slope or abs(loss_new - loss) <= rounding * loss:
                break
            t *= 0.5
        decrement = curvature.quadratic_form(step, l2)
        previous = np.max(np.abs(grad))
        theta, eta, loss = candidate, eta_new, loss_new
        prob, grad = _gradient(Z, y, theta, eta, l2)
        largest = np.max(np.abs(grad))
        if largest <= tol and 0.5 * decrement <= tol:
            return theta, True, iteration
        if t < 1.0 or largest > 0.5 * previous:
            curvature.update(prob)
    return theta, False, max_iter


def logistic_path(
    Z: np.ndarray,
    y: np.ndarray,
    Cs: Sequence[float],
    tol: float = 1e-6,
    max_iter: int = 100,
) -> list[BinaryLogistic]:
    """Fit a two-class logistic regression for every ``C`` of ``Cs`` in turn, each warm-started
    from the previous solution.

    Args:
        Z: features ``(N, p)`` (float64; standardised features keep the Hessian well scaled).
        y: labels ``(N,)`` with exactly two distinct values; the larger is class 1.
        Cs: inverse regularisation strengths, best given from small (strong) to large.
        tol: convergence tolerance on the gradient of the mean loss and on the Newton
            decrement. Steps from an older Hessian converge linearly, not quadratically, so
            the solution at a tolerance is less accurate than a pure Newton solution at the
            same one: at 1e-6 probabilities are within about 2e-5 of the exact minimiser's,
            where scikit-learn's Newton-Cholesky at its default of 1e-4 is within 2e-4
            (measured on separable data at ``C = 100``, tests/evaluate/test_logistic.py).
        max_iter: Newton iterations per ``C``.

    Returns:
        One :class:`BinaryLogistic` per ``C``; ``converged`` says whether it met ``tol``.
    """
    classes = np.unique(y)
    if classes.size != 2:
        raise ValueError(f"logistic_path needs two classes, got {classes.size}")
    Z = np.asarray(Z, dtype=np.float64)
    y01 = (y == classes[1]).astype(np.float64)
    curvature = _Curvature(Z)
    theta = np.zeros(Z.shape[1] + 1)
    fits = []
    for C in Cs:
        theta, converged, n_iter = _fit_one(Z, y01, float(C), theta, curvature, tol, max_iter)
        coef, intercept = theta[:-1].copy(), float(theta[-1])
        fits.append(BinaryLogistic(coef, intercept, float(C), classes, converged, n_iter))
    return fits
