"""Dependence between factor blocks, measured after training by tools independent of the
model (MIRD's claim is about non-linear dependence, MISA's constraint about linear):

- ``mi``: mutual information in nats from an estimator trained on part of the factors and
  evaluated on the held-out rest (:func:`mmfactor.estimators.estimate_mi`; InfoNCE by
  default, a lower bound capped at log of its batch size), never the model's own CLUB;
- ``cca``: the top canonical correlation (linear dependence): directions fitted (ridge-
  regularised) on 80% of the rows, their correlation measured on the held-out 20%, since
  in-sample CCA between wide blocks tends to 1 whatever the data;
- ``hsic``: the Hilbert-Schmidt independence criterion with Gaussian kernels (median
  bandwidth), normalised as ``HSIC(a, b) / sqrt(HSIC(a, a) HSIC(b, b))`` (in [0, 1], so
  blocks of different widths compare), on at most ``max_rows`` rows; zero in the limit iff
  independent, non-linear dependence included.

MI estimates on held-out rows can come out below zero when there is nothing to find (the
critic's overfitting shows there); they are reported as estimated.

Every block is standardised per column first, so scale does not matter.

Example:
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> a = rng.normal(size=(1000, 2))
    >>> out = factor_dependence({"shared": a, "specific:x1": a ** 2}, steps=100)
    >>> sorted(out[("shared", "specific:x1")])
    ['cca', 'hsic', 'mi']
"""

from __future__ import annotations

from collections.abc import Mapping
from itertools import combinations
from typing import Any

import numpy as np

from mmfactor.errors import InputError


def standardise(x: np.ndarray) -> np.ndarray:
    """Columns of ``x`` (``(n,)`` or ``(n, d)``) centred and scaled to unit variance, float64
    ``(n, d)`` (a constant column stays 0)."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 1:
        x = x[:, None]
    return (x - x.mean(0)) / (x.std(0) + 1e-8)


def top_canonical_correlation(
    a: np.ndarray, b: np.ndarray, ridge: float = 1e-2, held_out: float = 0.2, seed: int = 0
) -> float:
    """The top canonical correlation between ``a`` ``(n, p)`` and ``b`` ``(n, q)``:
    directions from the training rows, correlation on the held-out rows (0 with
    ``held_out=0``: in-sample)."""
    a, b = standardise(a), standardise(b)
    n = len(a)
    order = np.random.default_rng(seed).permutation(n)
    n_test = int(round(held_out * n))
    fit, test = (order[n_test:], order[:n_test]) if n_test >= 3 else (order, order)

    def inv_sqrt(c: np.ndarray) -> np.ndarray:
        w, v = np.linalg.eigh(c + ridge * np.eye(len(c)))
        return (v / np.sqrt(np.clip(w, 1e-12, None))) @ v.T

    fa, fb = a[fit] - a[fit].mean(0), b[fit] - b[fit].mean(0)
    wa, wb = inv_sqrt(fa.T @ fa / len(fit)), inv_sqrt(fb.T @ fb / len(fit))
    u, _, vt = np.linalg.svd(wa @ (fa.T @ fb / len(fit)) @ wb)
    pa, pb = a[test] @ (wa @ u[:, 0]), b[test] @ (wb @ vt[0])
    r = np.corrcoef(pa, pb)[0, 1]
    return float(abs(r)) if np.isfinite(r) else 0.0


def hsic(a: np.ndarray, b: np.ndarray, max_rows: int = 1000, seed: int = 0) -> float:
    """Normalised HSIC (kernel alignment of centred Gaussian Gram matrices, median-heuristic
    bandwidths), in [0, 1]."""
    a, b = standardise(a), standardise(b)
    if len(a) > max_rows:
        rows = np.random.default_rng(seed).choice(len(a), max_rows, replace=False)
        a, b = a[rows], b[rows]
    n = len(a)

    def centred_gram(x: np.ndarray) -> np.ndarray:
        sq = np.sum(x**2, 1)
        d2 = np.maximum(sq[:, None] + sq[None, :] - 2 * x @ x.T, 0.0)
        bandwidth = np.median(d2[np.triu_indices(n, 1)]) or 1.0
        k = np.exp(-d2 / bandwidth)
        return k - k.mean(0) - k.mean(1)[:, None] + k.mean()  # H K H

    ka, kb = centred_gram(a), centred_gram(b)
    denom = np.sqrt(np.sum(ka * ka) * np.sum(kb * kb))
    return float(np.sum(ka * kb) / denom) if denom > 0 else 0.0


def factor_dependence(
    factors: Any,
    *,
    estimator: str = "infonce",
    steps: int = 500,
    batch_size: int = 128,
    seed: int = 0,
    max_rows: int = 1000,
) -> dict[tuple[str, str], dict[str, float]]:
    """``{(block_a, block_b): {"mi": nats, "cca": top canonical correlation, "hsic": value}}``
    for every pair of factor blocks (``shared``, ``specific:<m>``; ``all`` is left out).

    Args:
        factors: a :class:`~mmfactor.methods.base.Factors` (for example
            ``mf.encode(model, data.split("test"))``) or a mapping of block name to
            ``(n, d)`` arrays.
        estimator: the MI estimator (a name of :func:`mmfactor.estimators.available`),
            trained on 80% of the rows for ``steps`` batches, evaluated on the other 20%.
        max_rows: rows used by HSIC (its cost is quadratic).
    """
    from mmfactor.estimators import estimate_mi

    blocks = factors.blocks() if hasattr(factors, "blocks") else dict(factors)
    if not isinstance(blocks, Mapping):
        raise InputError("factor_dependence needs Factors or a mapping of named arrays")
    blocks = {k: standardise(np.asarray(v)) for k, v in blocks.items() if k != "all"}
    if len(blocks) < 2:
        raise InputError(f"factor_dependence needs at least two factor blocks, got {list(blocks)}")
    sizes = {len(v) for v in blocks.values()}
    if len(sizes) > 1:
        raise InputError(f"factor blocks have different numbers of rows: {sorted(sizes)}")
    out = {}
    for a, b in combinations(blocks, 2):
        x, y = blocks[a].astype(np.float32), blocks[b].astype(np.float32)
        out[(a, b)] = {
            "mi": estimate_mi(x, y, estimator, steps=steps, batch_size=batch_size, seed=seed),
            "cca": top_canonical_correlation(x, y, seed=seed),
            "hsic": hsic(x, y, max_rows, seed),
        }
    return out
