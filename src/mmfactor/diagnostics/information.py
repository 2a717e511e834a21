"""Partial information decomposition (PID): how much of what two modalities tell about a
target is **redundant** (either modality alone gives it), **unique** to one modality, or
**synergistic** (only the pair gives it), in bits. The answer says which kind of method the
data needs: mostly redundancy suits shared-information methods (``clip``, ``cca``, the shared
terms of FactorCL); unique information needs modality-specific factors (FactorCL's unique
terms, ``misa``/``mfm`` specific codes, late fusion); synergy needs a fusion model of the
interaction between the modalities.

The parts satisfy, for modalities ``X1``, ``X2`` and target ``Y``::

    I(X1, X2; Y) = redundancy + unique[X1] + unique[X2] + synergy
    I(X1; Y)     = redundancy + unique[X1],      I(X2; Y) = redundancy + unique[X2]

so one more quantity fixes all four. Two definitions of it (``method``):

- ``"broja"`` (default; Bertschinger, Rauh, Olbrich, Jost & Ay, "Quantifying unique
  information", Entropy 2014): ``unique[X1] = min_Q I_Q(X1; Y | X2)`` over the distributions
  ``Q`` with the same pair marginals ``p(x1, y)`` and ``p(x2, y)`` as the data. Equivalently
  ``Q*`` minimises ``I_Q(Y; X1, X2)`` (a convex function of ``Q``) on that polytope, and
  ``synergy = I_P(Y; X1, X2) - I_Q*(Y; X1, X2)``. This is the decomposition FactorCL (Liang
  et al., "Quantifying & Modeling Multimodal Interactions", NeurIPS 2023) estimates.
- ``"imin"`` (Williams & Beer, "Nonnegative decomposition of multivariate information",
  2010): ``redundancy = sum_y p(y) min_m I(Y=y; X_m)`` with the specific information
  ``I(Y=y; X) = sum_x p(x|y) log p(y|x) / p(y)``; closed form. It counts as redundant any
  equal *amount* of information, even about different aspects of ``Y`` (for ``Y = (X1, X2)``
  with independent bits it reports 1 bit of redundancy and 1 of synergy where ``broja``
  reports 1 bit unique to each).

Both count information as redundant by amount: when each modality's information about
``Y`` comes from its own, independent source and ``Y`` adds them up (``Y = f(W1) + f(W2)``,
the ``mix@r`` targets of ``synthetic``), the weaker modality's share shows as redundancy
and the gain of combining them as synergy, not as unique information (for jointly Gaussian
variables both give ``redundancy = min(I(X1; Y), I(X2; Y))``: Barrett, "Exploration of
synergistic and redundant information sharing in static and dynamical Gaussian systems",
Phys. Rev. E 2015). Two noisy views of one shared source likewise give redundancy plus
some synergy (averaging the two reduces the noise).

The BROJA program is solved by a log-barrier interior-point method (Boyd & Vandenberghe,
"Convex Optimization", 2004, section 11.3) with equality-constrained Newton steps, started
from ``p(x1|y) p(x2|y) p(y)``. The Hessian of ``-H_Q(Y | X1, X2)`` is diagonal minus one
rank-one block per cell ``(x1, x2)``, so its inverse is applied in closed form
(Sherman-Morrison) and each Newton step costs one dense solve of size ``(|X1| + |X2|)
|Y|``: 0.02 s for a random 9 x 9 x 2 table, 0.2 s for 13 x 14 x 8 (2-core CPU). The
barrier parameter is raised until its duality-gap bound ``cells / t`` is below 1e-10 nats
(``solver``); the tests certify the optimum by a Lagrange-dual bound (gap under 1e-8
bits). (A general-purpose solver such as SLSQP stalls near the starting point
on this problem, whose gradient ``log Q(y | x1, x2)`` is unbounded at the boundary.)

Data path (:func:`information_decomposition`). A PID needs discrete variables with well
populated cells, so each modality is reduced to one or two scores, computed from its
first ``max_dim`` whitened principal components and cross-fitted (fitted on ``folds - 1``
folds, computed on the held-out fold, so no score has seen the target of its own row), then
binned (``bins``, ``binning``). ``projection``:

- ``"interaction"`` (default): two scores per modality. (i) Main effect: ridge regression
  of the target (one-hot classes, or the standardised value) on the components; binary or
  regression targets give one score, binned; more classes give the predicted class.
  (ii) Interaction: the top singular pair ``(u, v)`` of the cross-moment matrix
  ``sum_i y_i z1_i z2_i^T`` (``z`` the whitened components, ``y`` the centred target), the
  scores ``z1 . u`` and ``z2 . v``: the leading bilinear term ``(u . z1)(v . z2)`` that
  predicts the target, i.e. the direction of each modality that takes part in an
  interaction. Score (i) alone cannot see a target that neither modality predicts alone
  (XOR-like): a per-modality prediction of it is noise. Measured on ``synthetic``
  (n = 6000, target ``synergy``): 0.000 bits of synergy with ``"supervised"``, 0.19 with
  this projection. One direction per modality: a target with several interactions keeps
  the strongest (on a toy with one redundant, one unique and one XOR bit among 8 classes,
  the interaction direction mixes the XOR bit with a product of the other two and 0.41
  of the 1 bit of synergy is found, n = 4000, seed 0).
- ``"supervised"``: score (i) only (blind to synergy).
- ``"pca"``: the first ``components`` principal components, each binned (unsupervised:
  keeps what varies most, which need not be what the target depends on).

Sequences are averaged over their real steps (``data.lengths``), images flattened, and
rows where either modality is absent dropped. Classification targets keep their classes,
regression targets are cut into ``target_bins`` quantile bins. The parts describe the
binned scores, not the raw modalities: by data processing, ``total`` and each ``I(X_m; Y)``
are lower bounds on those of the modalities (up to the plug-in bias), while the split into
parts depends on the projection.

Bias. Plug-in estimates on ``n`` samples are biased upward, for ``I(X1, X2; Y)`` by about
``(|X1||X2| - 1)(|Y| - 1) / (2 n ln 2)`` bits (Miller-Madow), and the bias lands mostly in
the synergy. The default ``bins`` are the largest that keep at least ``min_per_cell``
samples per cell on average; ``counts`` holds the sample count of every cell. ``shuffles``
recomputes the decomposition with the target randomly permuted (all information
destroyed, so whatever it finds is bias) and reports the mean as ``bias``;
``correct_bias=True`` subtracts it (parts can then come out slightly negative).
:meth:`InformationDecomposition.advice` and ``dominant`` always read the parts with the
bias subtracted.

Example:
    >>> import numpy as np
    >>> p = np.zeros((2, 2, 2))
    >>> for a in (0, 1):
    ...     for b in (0, 1):
    ...         p[a, b, a ^ b] = 0.25  # Y = X1 xor X2
    >>> out = pid(p)
    >>> round(out.synergy, 6), round(out.redundancy, 6) + 0.0  # + 0.0: no "-0.0"
    (1.0, 0.0)
    >>> {m: round(v, 6) + 0.0 for m, v in out.unique.items()}
    {'x1': 0.0, 'x2': 0.0}
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from mmfactor.data.arrays import from_arrays
from mmfactor.data.dataset import MultimodalDataset
from mmfactor.errors import InputError

METHODS = ("broja", "imin")
PROJECTIONS = ("interaction", "supervised", "pca")
BINNINGS = ("auto", "quantile", "kmeans")
_LN2 = float(np.log(2.0))
#: Ridge strength per training sample on whitened components (the main-effect score).
_RIDGE = 1e-2
#: Per-score bin counts tried, largest first, when ``bins`` is not given.
_BIN_CHOICES = (4, 3, 2)


# ------------------------------------------------------------------------------------------
# The result


@dataclass
class InformationDecomposition:
    """Redundancy, unique information per modality and synergy about a target, in bits.

    ``redundancy + sum(unique.values()) + synergy == total`` (``I(X1, X2; Y)``) and
    ``redundancy + unique[m] == mutual_information[m]`` (``I(X_m; Y)``).
    """

    redundancy: float
    unique: dict[str, float]
    synergy: float
    total: float
    target_entropy: float
    mutual_information: dict[str, float]
    method: str
    modalities: tuple[str, str]
    target: str | None = None
    settings: dict[str, Any] = field(default_factory=dict)
    counts: np.ndarray | None = None
    bias: dict[str, float] | None = None
    corrected: bool = False
    solver: dict[str, Any] = field(default_factory=dict)

    @property
    def parts(self) -> dict[str, float]:
        """``{"redundancy", "unique:<m>" (each modality), "synergy"}`` in bits."""
        out = {"redundancy": self.redundancy}
        out.update({f"unique:{m}": v for m, v in self.unique.items()})
        out["synergy"] = self.synergy
        return out

    @property
    def n(self) -> int | None:
        """Number of samples behind the estimate (``None`` for a given distribution)."""
        return None if self.counts is None else int(self.counts.sum())

    @property
    def samples_per_cell(self) -> float | None:
        """Mean samples per cell of the joint ``(x1, x2, y)`` table."""
        return None if self.counts is None else float(self.counts.sum() / self.counts.size)

    def debiased(self) -> dict[str, float]:
        """:attr:`parts` and ``"total"`` minus the shuffle estimate of their bias (as they
        are when there is no estimate or it was already subtracted)."""
        out = {**self.parts, "total": self.total}
        if self.bias is None or self.corrected:
            return out
        return {k: v - self.bias.get(k, 0.0) for k, v in out.items()}

    @property
    def dominant(self) -> str:
        """The name of the largest part (a key of :attr:`parts`), bias subtracted."""
        parts = self.debiased()
        del parts["total"]
        return max(parts, key=lambda k: parts[k])

    def advice(self) -> str:
        """One sentence on what the decomposition means for the choice of method (on the
        bias-subtracted parts)."""
        parts = self.debiased()
        bias = max(self.bias["total"], 0.0) if self.bias else 0.0
        if parts["total"] <= max(1e-3, bias):
            return (
                f"the projections carry almost no information about the target beyond the "
                f"estimation bias ({self.total:.3g} bits, bias {bias:.3g}); the "
                "decomposition says nothing"
            )
        part = self.dominant
        share = f"{parts[part] / parts['total']:.0%} of {parts['total']:.3g} bits"
        if part == "redundancy":
            return (
                f"mostly redundancy ({share}): either modality alone gives it; "
                "shared-information methods (clip, cca, FactorCL's shared terms) capture it"
            )
        if part == "synergy":
            return (
                f"mostly synergy ({share}): only the combination is informative; it needs a "
                "fusion model of the interaction, neither shared nor per-modality factors alone"
            )
        m = part.split(":", 1)[1]
        return (
            f"mostly unique to {m} ({share}): a method must keep {m}-specific information "
            "(FactorCL's unique terms, specific factors, late fusion); shared-only objectives "
            "discard it"
        )

    def as_dict(self) -> dict[str, Any]:
        """A JSON-friendly dictionary (the count table summarised)."""
        out: dict[str, Any] = {
            "method": self.method,
            "modalities": list(self.modalities),
            "target": self.target,
            **self.parts,
            "total": self.total,
            "target_entropy": self.target_entropy,
            "mutual_information": dict(self.mutual_information),
            "corrected": self.corrected,
            "bias": None if self.bias is None else dict(self.bias),
            "settings": dict(self.settings),
            "solver": dict(self.solver),
        }
        if self.counts is not None:
            out["cells"] = {
                "shape": list(self.counts.shape),
                "n": self.n,
                "samples_per_cell": self.samples_per_cell,
                "empty": int(np.sum(self.counts == 0)),
            }
        return out

    def __str__(self) -> str:
        rows = [f"{k:<{12}} {v:8.4f}" for k, v in self.parts.items()]
        rows.append(f"{'total':<12} {self.total:8.4f}  (H(Y) = {self.target_entropy:.4f})")
        head = f"PID ({self.method}) of {self.target or 'Y'} over {' and '.join(self.modalities)}"
        return "\n".join([head + ", bits", *rows])


# ------------------------------------------------------------------------------------------
# Information quantities of a discrete joint distribution p[x1, x2, y]


def _entropy(p: np.ndarray) -> float:
    p = p[p > 0]
    return float(-np.sum(p * np.log(p)))


def _mutual_informations(p: np.ndarray) -> tuple[float, float, float, float]:
    """``I(X1; Y), I(X2; Y), I(X1, X2; Y), H(Y)`` in nats."""
    h_y = _entropy(p.sum((0, 1)))
    p1, p2 = p.sum(1), p.sum(0)
    i1 = h_y + _entropy(p1.sum(1)) - _entropy(p1)
    i2 = h_y + _entropy(p2.sum(1)) - _entropy(p2)
    i12 = h_y + _entropy(p.sum(2)) - _entropy(p)
    return i1, i2, i12, h_y


def _imin(p: np.ndarray) -> float:
    """Williams & Beer's redundancy ``I_min`` in nats."""
    p_y = p.sum((0, 1))
    specific = []
    for pxy in (p.sum(1), p.sum(0)):  # (|X_m|, |Y|)
        p_x = pxy.sum(1, keepdims=True)
        with np.errstate(divide="ignore", invalid="ignore"):
            terms = pxy * np.log(pxy / (p_x * p_y))
        specific.append(np.where(pxy > 0, terms, 0.0).sum(0))  # p(y) I(Y=y; X_m)
    return float(np.minimum(*specific).sum())


def _broja(
    p: np.ndarray, tol: float = 1e-10, mu: float = 10.0
) -> tuple[float, np.ndarray, dict[str, Any]]:
    """``min_Q I_Q(Y; X1, X2)`` in nats over ``Q`` with ``p``'s ``(x1, y)`` and ``(x2, y)``
    marginals, by a log-barrier method (see the module docstring); the minimiser (shaped as
    ``p``) and solver facts."""
    _, n2, k = p.shape
    m1, m2, p_y = p.sum(1), p.sum(0), p.sum((0, 1))
    # Cells a feasible Q may use; every other cell is forced to 0 by a zero marginal.
    cells = np.flatnonzero((m1[:, None, :] > 0) & (m2[None, :, :] > 0))
    i1, i2, iy = np.unravel_index(cells, p.shape)
    n = cells.size
    q = m1[i1, iy] * m2[i2, iy] / p_y[iy]  # X1 and X2 independent given Y: interior point
    pair = i1 * n2 + i2  # cells sorted by (x1, x2): each pair's cells are contiguous
    starts = np.flatnonzero(np.r_[True, pair[1:] != pair[:-1]])
    pair_of = np.repeat(np.arange(starts.size), np.diff(np.r_[starts, n]))
    # Equality constraints A q = b: every (x1, y) row, and every (x2, y) row but one per y
    # (both blocks sum to p(y)); per y the cells form a full rectangle, so A has full row
    # rank. A is held as the row of each cell in either block (-1: the dropped rows).
    rows1, r1 = np.unique(i1 * k + iy, return_inverse=True)
    rows2, r2 = np.unique(i2 * k + iy, return_inverse=True)
    _, first = np.unique(rows2 % k, return_index=True)
    kept = np.ones(rows2.size, dtype=bool)
    kept[first] = False
    number = np.where(kept, rows1.size + np.cumsum(kept) - 1, -1)
    r2 = number[r2]
    m = rows1.size + int(kept.sum())
    b = np.concatenate([m1.ravel()[rows1], m2.ravel()[rows2[kept]]])
    in2 = r2 >= 0
    nz_row = np.concatenate([r1, r2[in2]])  # A's non-zero entries: (row, cell)
    nz_cell = np.concatenate([np.arange(n), np.flatnonzero(in2)])

    def a_dot(v: np.ndarray) -> np.ndarray:
        return np.bincount(nz_row, v[nz_cell], minlength=m)

    def a_t_dot(nu: np.ndarray) -> np.ndarray:
        return np.bincount(nz_cell, nu[nz_row], minlength=n)

    def a_w_a_t(w: np.ndarray) -> np.ndarray:  # A diag(w) A^T, dense (m, m)
        c = np.flatnonzero(in2)
        flat = np.concatenate(
            [r1 * m + r1, nz_row[n:] * (m + 1), r1[c] * m + r2[c], r2[c] * m + r1[c]]
        )
        weights = np.concatenate([w, w[c], w[c], w[c]])
        return np.bincount(flat, weights, minlength=m * m).reshape(m, m)

    def a_w_s_t(w: np.ndarray) -> np.ndarray:  # A diag(w) S^T, dense (m, pairs)
        flat = nz_row * starts.size + pair_of[nz_cell]
        return np.bincount(flat, w[nz_cell], minlength=m * starts.size).reshape(m, -1)

    aat_inv = np.linalg.inv(a_w_a_t(np.ones(n)))

    def h_inv(v: np.ndarray, d: np.ndarray, gamma: np.ndarray) -> np.ndarray:
        w = v / d
        return w + (gamma * np.add.reduceat(w, starts))[pair_of] / d

    def objective(q: np.ndarray) -> float:  # -H_Q(Y | X1, X2)
        return float(np.sum(q * np.log(q / np.add.reduceat(q, starts)[pair_of])))

    t, steps = 1.0, 0
    while True:
        for _ in range(100):  # Newton's method on t * f(q) - sum log q, subject to A q = b
            q12 = np.add.reduceat(q, starts)
            grad = t * np.log(q / q12[pair_of]) - 1.0 / q
            # Hessian: diag(d) minus one rank-one block (t / q12) 11^T per pair; its inverse
            # by Sherman-Morrison, diag(1/d) + D^-1 S^T diag(gamma) S D^-1, the denominator
            # 1 - (t / q12) sum 1/d summed in a form without cancellation.
            d = (t * q + 1.0) / q**2
            gamma = (t / q12) / np.add.reduceat((q / q12[pair_of]) / (t * q + 1.0), starts)

            cross = a_w_s_t(1.0 / d)
            schur = a_w_a_t(1.0 / d) + (cross * gamma) @ cross.T  # A H^-1 A^T
            residual = b - a_dot(q)
            rhs = -a_dot(h_inv(grad, d, gamma)) - residual
            scale = 1.0 / np.sqrt(np.diag(schur))
            try:
                nu = scale * np.linalg.solve(schur * np.outer(scale, scale), scale * rhs)
            except np.linalg.LinAlgError:
                break
            dq = -h_inv(grad + a_t_dot(nu), d, gamma)
            dq -= a_t_dot(aat_inv @ (a_dot(dq) - residual))  # exact feasibility
            decrement = -float(grad @ dq)
            steps += 1
            if decrement / 2 < 1e-12:
                break
            shrinking = dq < 0
            s = 1.0  # the longest step keeping q > 0, then backtracking (Armijo)
            if shrinking.any():
                s = min(1.0, 0.99 * float(np.min(-q[shrinking] / dq[shrinking])))
            phi = t * objective(q) - float(np.sum(np.log(q)))
            while s > 1e-14:
                q_new = q + s * dq
                if t * objective(q_new) - float(np.sum(np.log(q_new))) <= phi - s * decrement / 4:
                    break
                s /= 2
            if s <= 1e-14:
                break
            q = q + s * dq
        if n / t < tol:
            break
        t *= mu
    value = objective(q) + _entropy(p_y)
    q_table = np.zeros(p.size)
    q_table[cells] = q
    return (
        value,
        q_table.reshape(p.shape),
        {"newton_steps": steps, "gap_bits": n / t / _LN2, "cells": int(n)},
    )


def _decompose(p: np.ndarray, method: str) -> tuple[dict[str, float], dict[str, Any]]:
    """``{"redundancy", "unique1", "unique2", "synergy", "total", "i1", "i2", "h_y"}`` in
    bits for a normalised table, and solver facts."""
    i1, i2, i12, h_y = _mutual_informations(p)
    solver: dict[str, Any] = {}
    if i12 <= 1e-15:  # nothing to decompose (and every part is non-negative)
        i_q = i12 = max(i12, 0.0)
        redundancy = min(i1, i2)
    elif method == "broja":
        i_q, _, solver = _broja(p)
        i_q = min(i_q, i12)  # p itself is feasible
        redundancy = i1 + i2 - i_q
    else:
        redundancy = _imin(p)
        i_q = i1 + i2 - redundancy
    out = {
        "redundancy": redundancy,
        "unique1": i1 - redundancy,
        "unique2": i2 - redundancy,
        "synergy": i12 - i_q,
        "total": i12,
        "i1": i1,
        "i2": i2,
        "h_y": h_y,
    }
    return {k: v / _LN2 for k, v in out.items()}, solver


def _check_method(method: str) -> None:
    if method not in METHODS:
        raise InputError(f"unknown PID method {method!r}; available: {', '.join(METHODS)}")


def _as_table(p: Any) -> np.ndarray:
    table = np.asarray(p, dtype=np.float64)
    if table.ndim != 3:
        raise InputError(
            f"pid needs a joint table p[x1, x2, y] with 3 axes, got shape {table.shape}"
        )
    if not np.all(np.isfinite(table)) or np.any(table < 0) or table.sum() <= 0:
        raise InputError("pid needs finite, non-negative entries with a positive sum")
    return table / table.sum()


def pid(
    p: Any, method: str = "broja", names: Sequence[str] = ("x1", "x2")
) -> InformationDecomposition:
    """The partial information decomposition of a discrete joint distribution.

    Args:
        p: ``(|X1|, |X2|, |Y|)`` probabilities or counts (normalised here).
        method: ``"broja"`` or ``"imin"`` (see the module docstring).
        names: the names of ``X1`` and ``X2`` (keys of ``unique``).

    Raises:
        InputError: a table that is not 3-D, finite and non-negative, or an unknown method.
    """
    _check_method(method)
    if len(names) != 2 or names[0] == names[1]:
        raise InputError(f"pid needs two distinct names, got {list(names)}")
    table = _as_table(p)
    with threadpool_limits(limits=1, user_api="blas"):  # tiny matrices: threads only cost
        parts, solver = _decompose(table, method)
    return _result(parts, method, (str(names[0]), str(names[1])), solver=solver)


def _result(
    parts: dict[str, float], method: str, names: tuple[str, str], **extra: Any
) -> InformationDecomposition:
    return InformationDecomposition(
        redundancy=parts["redundancy"],
        unique={names[0]: parts["unique1"], names[1]: parts["unique2"]},
        synergy=parts["synergy"],
        total=parts["total"],
        target_entropy=parts["h_y"],
        mutual_information={names[0]: parts["i1"], names[1]: parts["i2"]},
        method=method,
        modalities=names,
        **extra,
    )


# ------------------------------------------------------------------------------------------
# From a data set to discrete variables


def _vectors(data: MultimodalDataset, m: str, rows: np.ndarray) -> np.ndarray:
    """``(n, d)`` float64: vectors as they are, sequences averaged over their real steps,
    images flattened."""
    x = np.asarray(data.arrays[m][rows], dtype=np.float64)
    if data.modalities[m].kind == "sequence":
        lengths = np.asarray(data.lengths[m][rows])
        mask = np.arange(x.shape[1])[None, :] < lengths[:, None]
        x = np.einsum("ntd,nt->nd", x, mask) / np.maximum(lengths, 1)[:, None]
    return x.reshape(len(x), -1)


def _whitened_components(x: np.ndarray, r: int, seed: int) -> np.ndarray:
    """The first ``r`` principal components of the standardised columns, each scaled to
    unit variance ``(n, <= r)`` (components of a rank-deficient matrix dropped)."""
    x = x - x.mean(0)
    sd = x.std(0)
    x = x[:, sd > 1e-12] / sd[sd > 1e-12]
    if x.shape[1] == 0:
        return np.zeros((len(x), 0))
    r = min(r, *x.shape)
    if r < min(x.shape) // 2:
        from sklearn.utils.extmath import randomized_svd

        u, s, _ = randomized_svd(x, r, random_state=seed)
    else:
        u, s, _ = np.linalg.svd(x, full_matrices=False)
        u, s = u[:, :r], s[:r]
    keep = s > 1e-8 * s[0]
    return u[:, keep] * np.sqrt(len(x))


def _fold_ids(n: int, folds: int, seed: int) -> np.ndarray:
    ids = np.empty(n, dtype=np.int64)
    ids[np.random.default_rng(seed).permutation(n)] = np.arange(n) % folds
    return ids


def _main_scores(z: np.ndarray, y: np.ndarray, fold: np.ndarray) -> np.ndarray:
    """Cross-fitted ridge predictions ``(n, k)`` of the centred target columns ``y``."""
    x = np.concatenate([z, np.ones((len(z), 1))], 1)
    gram, cross = x.T @ x, x.T @ y
    penalty = np.eye(x.shape[1])
    penalty[-1, -1] = 0.0  # the intercept is not shrunk
    out = np.empty((len(z), y.shape[1]))
    for f in range(int(fold.max()) + 1):
        te = fold == f
        xt = x[te]
        w = np.linalg.solve(
            gram - xt.T @ xt + _RIDGE * (len(z) - te.sum()) * penalty, cross - xt.T @ y[te]
        )
        out[te] = xt @ w
    return out


def _interaction_scores(
    z1: np.ndarray, z2: np.ndarray, y: np.ndarray, fold: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Cross-fitted scores ``z1 . u``, ``z2 . v`` of the top singular pair of the
    cross-moment ``sum_i y_ik z1_i z2_i^T`` (classes side by side), signs aligned to the
    first fold's pair."""
    s1, s2 = np.zeros(len(z1)), np.zeros(len(z2))
    if z1.shape[1] == 0 or z2.shape[1] == 0:  # a constant modality
        return s1, s2
    moments = np.einsum("ni,nj,nk->kij", z1, z2, y, optimize=True)
    reference: tuple[np.ndarray, np.ndarray] | None = None
    for f in range(int(fold.max()) + 1):
        te = fold == f
        m = moments - np.einsum("ni,nj,nk->kij", z1[te], z2[te], y[te], optimize=True)
        u = np.linalg.svd(np.concatenate(list(m), 1))[0][:, 0]
        v = np.linalg.svd(np.concatenate([mk.T for mk in m], 1))[0][:, 0]
        if reference is None:
            reference = (u, v)
        u = u if u @ reference[0] >= 0 else -u
        v = v if v @ reference[1] >= 0 else -v
        s1[te], s2[te] = z1[te] @ u, z2[te] @ v
    return s1, s2


def _quantile_bins(score: np.ndarray, bins: int) -> np.ndarray:
    edges = np.quantile(score, np.linspace(0, 1, bins + 1)[1:-1])
    return np.searchsorted(edges, score, side="right")


def _kmeans_bins(score: np.ndarray, bins: int, iterations: int = 100) -> np.ndarray:
    """1-D k-means (Lloyd's algorithm) started from the quantile bins."""
    codes = _quantile_bins(score, bins)
    for _ in range(iterations):
        counts = np.bincount(codes, minlength=bins)
        used = counts > 0
        centres = np.sort(np.bincount(codes, score, minlength=bins)[used] / counts[used])
        new = np.searchsorted((centres[1:] + centres[:-1]) / 2, score)
        if np.array_equal(new, codes):
            break
        codes = new
    return codes


def _gaussian_distortion(bins: int) -> float:
    """Within-bin share of variance of the best ``bins``-level quantiser of a Gaussian
    (Lloyd-Max; Panter-Dite's ``pi sqrt(3) / 2 / bins^2`` beyond the table)."""
    table = {2: 1 - 2 / np.pi, 3: 0.1902, 4: 0.1175, 5: 0.0799}
    return table.get(bins, np.pi * np.sqrt(3) / 2 / bins**2)


def _score_bins(score: np.ndarray, bins: int, binning: str) -> np.ndarray:
    """Bins ``0..bins-1`` of a score (see ``binning`` in :func:`information_decomposition`)."""
    if binning == "quantile":
        return _quantile_bins(score, bins)
    codes = _kmeans_bins(score, bins)
    if binning == "kmeans":
        return codes
    variance = score.var()
    counts = np.bincount(codes)
    means = np.bincount(codes, score) / np.maximum(counts, 1)
    within = float(np.mean((score - means[codes]) ** 2))
    clustered = variance > 0 and within < 0.25 * _gaussian_distortion(bins) * variance
    return codes if clustered else _quantile_bins(score, bins)


def _codes(columns: list[np.ndarray]) -> np.ndarray:
    """One code ``0..V-1`` per distinct combination of the columns (used values only)."""
    return np.unique(np.stack(columns, 1), axis=0, return_inverse=True)[1].reshape(-1)


def _table(c1: np.ndarray, c2: np.ndarray, y: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    flat = (c1 * shape[1] + c2) * shape[2] + y
    return np.bincount(flat, minlength=int(np.prod(shape))).reshape(shape).astype(np.float64)


def _default_bins(n: int, scores: int, n_y: int, min_per_cell: float, fixed: int) -> int:
    """The largest per-score bin count keeping ``min_per_cell`` samples per cell on average
    (``fixed`` values per modality come from non-binned parts, e.g. predicted classes)."""
    for b in _BIN_CHOICES:
        if n / ((b**scores * fixed) ** 2 * n_y) >= min_per_cell:
            return b
    return _BIN_CHOICES[-1]


def information_decomposition(
    data: MultimodalDataset,
    target: str | None = None,
    *,
    modalities: Sequence[str] | None = None,
    method: str = "broja",
    projection: str = "interaction",
    bins: int | None = None,
    binning: str = "auto",
    target_bins: int = 4,
    components: int = 2,
    max_dim: int = 48,
    folds: int = 5,
    split: str | None = None,
    shuffles: int = 10,
    correct_bias: bool = False,
    min_per_cell: float = 20.0,
    seed: int = 0,
) -> InformationDecomposition:
    """Redundancy, unique information and synergy of two modalities about a target (bits).

    Args:
        data: the data set.
        target: a target name (default: the data set's default target).
        modalities: the two modalities (default: the first two).
        method: ``"broja"`` (default) or ``"imin"``.
        projection: ``"interaction"`` (default), ``"supervised"`` or ``"pca"``: how each
            modality becomes a discrete variable (see the module docstring).
        bins: bins per score (default: the largest of 4, 3, 2 that keeps ``min_per_cell``
            samples per cell on average).
        binning: ``"quantile"`` (equal-frequency bins), ``"kmeans"`` (1-D k-means from the
            quantile bins: edges move into the gaps between clusters of values) or
            ``"auto"`` (default: k-means where a score is clustered, its k-means
            within-bin variance under a quarter of what the best quantiser of a Gaussian
            leaves, as with discrete inputs; quantile bins otherwise).
        target_bins: quantile bins of a regression target.
        components: principal components binned by ``projection="pca"``.
        max_dim: principal components (whitened) every score is computed from.
        folds: cross-fitting folds of the supervised scores.
        split: the rows used (default: every row outside the ``unlabeled`` split).
        shuffles: permuted-target repetitions estimating the plug-in bias (0: none).
        correct_bias: subtract the estimated bias from every part (needs ``shuffles``).
        seed: seeds the folds, the randomised SVD and the shuffles.

    Returns:
        An :class:`InformationDecomposition` with the sample ``counts`` per cell, the
        ``bias`` estimate and the ``settings`` used.

    Raises:
        InputError: unknown target, modality, method or projection; fewer than two
            modalities; bad option values; too few rows.
    """
    _check_method(method)
    if projection not in PROJECTIONS:
        raise InputError(f"unknown projection {projection!r}; available: {', '.join(PROJECTIONS)}")
    for name, value, low in (
        ("target_bins", target_bins, 2),
        ("components", components, 1),
        ("max_dim", max_dim, 1),
        ("folds", folds, 2),
        ("shuffles", shuffles, 0),
    ):
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < low:
            raise InputError(f"option {name!r} must be an integer >= {low}, got {value!r}")
    if bins is not None and (
        isinstance(bins, bool) or not isinstance(bins, int | np.integer) or bins < 2
    ):
        raise InputError(f"option 'bins' must be an integer >= 2, got {bins!r}")
    if binning not in BINNINGS:
        raise InputError(f"unknown binning {binning!r}; available: {', '.join(BINNINGS)}")
    if correct_bias and shuffles < 1:
        raise InputError("correct_bias=True needs shuffles >= 1 to estimate the bias")
    names = list(data.modalities) if modalities is None else list(modalities)
    if modalities is None:
        names = names[:2]
    if len(names) != 2 or names[0] == names[1]:
        raise InputError(
            f"information_decomposition needs two distinct modalities, got {names} "
            f"(data set modalities: {', '.join(data.modalities)})"
        )
    for m in names:
        if m not in data.modalities:
            raise InputError(
                f"data set {data.name!r} has no modality {m!r}; modalities: "
                f"{', '.join(data.modalities)}"
            )
    tgt = data.target(target)
    if split is None:
        rows = np.setdiff1d(np.arange(len(data)), data.splits.get("unlabeled", []))
    else:
        rows = data.indices(split)
    rows = rows[data.present[names[0]][rows] & data.present[names[1]][rows]]
    if len(rows) < max(4 * folds, 20):
        raise InputError(
            f"information_decomposition needs at least {max(4 * folds, 20)} rows with both "
            f"modalities present, got {len(rows)}"
        )
    n = len(rows)

    values = tgt.values[rows]
    if tgt.kind == "classification":
        y = _codes([values])
        onehot = np.eye(int(y.max()) + 1)[y]
        onehot = onehot[:, 1:] if onehot.shape[1] == 2 else onehot  # binary: one column
        y_fit = onehot - onehot.mean(0)
    else:
        y = _codes([_quantile_bins(values.astype(np.float64), target_bins)])
        v = values.astype(np.float64)
        y_fit = ((v - v.mean()) / (v.std() + 1e-12))[:, None]
    n_y = int(y.max()) + 1
    settings: dict[str, Any] = {
        "projection": projection,
        "binning": binning,
        "target_bins": target_bins if tgt.kind == "regression" else None,
        "max_dim": max_dim,
        "folds": folds,
        "split": split,
        "shuffles": shuffles,
        "seed": seed,
    }

    with threadpool_limits(limits=1, user_api="blas"):
        z = [_whitened_components(_vectors(data, m, rows), max_dim, seed) for m in names]
        if projection == "pca":
            per = [min(components, zm.shape[1]) for zm in z]
            b = bins or _default_bins(n, max(per), n_y, min_per_cell, 1)
            columns = [
                [_score_bins(zm[:, j], b, binning) for j in range(k)] or [np.zeros(n, np.int64)]
                for zm, k in zip(z, per, strict=True)
            ]
            settings.update(bins=b, components=components)
        else:
            fold = _fold_ids(n, folds, seed)
            main = [_main_scores(zm, y_fit, fold) for zm in z]
            predicted_class = y_fit.shape[1] > 1  # more than two classes
            scores = 2 if projection == "interaction" else 1
            b = bins or _default_bins(
                n, scores - int(predicted_class), n_y, min_per_cell, n_y if predicted_class else 1
            )
            columns = [
                [np.argmax(s, 1) if predicted_class else _score_bins(s[:, 0], b, binning)]
                for s in main
            ]
            if projection == "interaction":
                s1, s2 = _interaction_scores(z[0], z[1], y_fit, fold)
                columns[0].append(_score_bins(s1, b, binning))
                columns[1].append(_score_bins(s2, b, binning))
            settings.update(bins=None if predicted_class and scores == 1 else b)
        c1, c2 = _codes(columns[0]), _codes(columns[1])
        shape = (int(c1.max()) + 1, int(c2.max()) + 1, n_y)
        counts = _table(c1, c2, y, shape)
        parts, solver = _decompose(counts / n, method)
        bias = None
        if shuffles:
            rng = np.random.default_rng([seed, 1])
            null = [
                _decompose(_table(c1, c2, rng.permutation(y), shape) / n, method)[0]
                for _ in range(shuffles)
            ]
            bias = {k: float(np.mean([r[k] for r in null])) for k in parts if k != "h_y"}
    if correct_bias and bias is not None:
        parts = {k: v - bias.get(k, 0.0) for k, v in parts.items()}
    names2 = (names[0], names[1])
    return _result(
        parts,
        method,
        names2,
        target=tgt.name,
        settings=settings,
        counts=counts.astype(np.int64),
        bias=None if bias is None else _named_bias(bias, names2),
        corrected=bool(correct_bias),
        solver=solver,
    )


def _named_bias(bias: dict[str, float], names: tuple[str, str]) -> dict[str, float]:
    return {
        "redundancy": bias["redundancy"],
        f"unique:{names[0]}": bias["unique1"],
        f"unique:{names[1]}": bias["unique2"],
        "synergy": bias["synergy"],
        "total": bias["total"],
    }


#: Toy data with a known decomposition: case -> (redundancy, unique x1, unique x2, synergy) in
#: bits, for :func:`bit_toy`.
TOY_PARTS: dict[str, tuple[float, float, float, float]] = {
    "redundant": (1.0, 0.0, 0.0, 0.0),  # x1 = x2 = y
    "unique": (0.0, 1.0, 0.0, 0.0),  # y = x1, x2 an independent bit
    "xor": (0.0, 0.0, 0.0, 1.0),  # y = x1 xor x2
    "mixed": (0.0, 1.0, 0.0, 1.0),  # x1 = (a, b), x2 = c, y = (a, b xor c)
}


def bit_toy(case: str, n: int = 4000, noise: float = 0.05, seed: int = 0) -> MultimodalDataset:
    """Two modalities made of fair random bits, each bit a +-1 feature plus Gaussian
    ``noise``, and a class target whose decomposition is known exactly (:data:`TOY_PARTS`):
    a check that :func:`information_decomposition` finds it.

    >>> from mmfactor.diagnostics import bit_toy, information_decomposition
    >>> out = information_decomposition(bit_toy("xor"), shuffles=0)
    >>> round(out.synergy, 1), round(out.redundancy, 1) + 0.0  # + 0.0: no "-0.0"
    (1.0, 0.0)
    """
    if case not in TOY_PARTS:
        raise InputError(f"unknown toy case {case!r}; choose from {sorted(TOY_PARTS)}")
    rng = np.random.default_rng(seed)
    a, b, c = rng.integers(0, 2, size=(3, n))

    def features(*bits: np.ndarray) -> np.ndarray:
        return 2.0 * np.stack(bits, 1) - 1 + noise * rng.normal(size=(n, len(bits)))

    arrays, y = {
        "redundant": ({"x1": features(a), "x2": features(a)}, a),
        "unique": ({"x1": features(a), "x2": features(b)}, a),
        "xor": ({"x1": features(b), "x2": features(c)}, b ^ c),
        "mixed": ({"x1": features(a, b), "x2": features(c)}, 2 * a + (b ^ c)),
    }[case]
    return from_arrays(arrays, y=y)
