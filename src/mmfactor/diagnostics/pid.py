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

from mmfactor.errors import InputError

METHODS = ("broja", "imin")
_LN2 = float(np.log(2.0))


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


def decompose(p: np.ndarray, method: str) -> tuple[dict[str, float], dict[str, Any]]:
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


def check_method(method: str) -> None:
    if method == "batch":
        raise InputError(
            "PID method 'batch' estimates from samples, not from a table: use "
            "information_decomposition(data, method='batch')"
        )
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
    check_method(method)
    if len(names) != 2 or names[0] == names[1]:
        raise InputError(f"pid needs two distinct names, got {list(names)}")
    table = _as_table(p)
    with threadpool_limits(limits=1, user_api="blas"):  # tiny matrices: threads only cost
        parts, solver = decompose(table, method)
    return pid_result(parts, method, (str(names[0]), str(names[1])), solver=solver)


def pid_result(
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
