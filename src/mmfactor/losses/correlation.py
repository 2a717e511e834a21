"""Correlation objectives: CCA's canonical correlations (closed form and differentiable), the
deep-CCA total correlation, and batch Pearson correlation matrices.

- :func:`canonical_correlations`: the canonical correlations of two batches of features,
  the singular values of ``T = L_a^-1 S_ab L_b^-T`` where ``S_aa + r I = L_a L_a^T`` (Cholesky)
  and likewise for ``b``. Any whitening gives the same singular values; deep CCA's usual
  ``S_aa^-1/2`` comes from an eigen-decomposition whose gradient divides by differences of
  eigenvalues and turns to inf/NaN when two of them (nearly) coincide, as they do for
  whitened or collapsed features. Cholesky's gradient has no such terms, and the gradient of
  the singular values alone is ``U diag(g) V^T``, so the whole objective stays finite.
- :class:`TotalCorrelation`: ``-sum`` of the top ``k`` canonical correlations (Andrew, Arora,
  Bilmes, Livescu, "Deep Canonical Correlation Analysis", ICML 2013, Sec. 2; ``k = None``:
  all, ``trace((T^T T)^1/2)``), over the rows of every process (gathered).
- :func:`correlation_matrix`: Pearson correlations between the columns of two batches, for
  MUCMM's per-dimension correlation maximisation and its decorrelation penalties.
"""

from __future__ import annotations

import torch
from torch import nn

from mmfactor.checks import check_float, check_int
from mmfactor.distributed import gather
from mmfactor.errors import InputError


def covariance_factors(
    a: torch.Tensor, b: torch.Tensor, ridge: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(L_a, L_b, S_ab)``: Cholesky factors of the ridge-regularised covariances of ``a``
    ``(N, p)`` and ``b`` ``(N, q)`` and their cross-covariance ``(p, q)`` (divisor N - 1)."""
    n = a.shape[0]
    if n < 2:
        raise InputError(f"correlations need at least 2 rows, got {n}")
    a = a - a.mean(0)
    b = b - b.mean(0)
    s_aa = a.T @ a / (n - 1) + ridge * torch.eye(a.shape[1], dtype=a.dtype, device=a.device)
    s_bb = b.T @ b / (n - 1) + ridge * torch.eye(b.shape[1], dtype=b.dtype, device=b.device)
    return torch.linalg.cholesky(s_aa), torch.linalg.cholesky(s_bb), a.T @ b / (n - 1)


def whitened_cross_covariance(a: torch.Tensor, b: torch.Tensor, ridge: float) -> torch.Tensor:
    """``T = L_a^-1 S_ab L_b^-T`` ``(p, q)``: its singular values are the canonical
    correlations, its singular vectors (mapped back by ``L^-T``) the canonical directions."""
    l_a, l_b, s_ab = covariance_factors(a, b, ridge)
    t = torch.linalg.solve_triangular(l_a, s_ab, upper=False)
    return torch.linalg.solve_triangular(l_b, t.T, upper=False).T


def canonical_correlations(
    a: torch.Tensor, b: torch.Tensor, ridge: float = 1e-4, k: int | None = None
) -> torch.Tensor:
    """The top ``k`` canonical correlations of ``a`` ``(N, p)`` and ``b`` ``(N, q)``,
    descending ``(min(k, p, q),)``; differentiable with finite gradients (module doc).

    Example:
        >>> z = torch.randn(500, 1)
        >>> a = torch.cat([z, torch.randn(500, 2)], 1)
        >>> b = torch.cat([torch.randn(500, 2), -3 * z], 1)
        >>> [round(float(c), 2) for c in canonical_correlations(a, b, k=1)]
        [1.0]
    """
    values = torch.linalg.svdvals(whitened_cross_covariance(a, b, ridge))
    return values if k is None else values[:k]


class TotalCorrelation(nn.Module):
    """Deep CCA's objective as a loss: ``-sum`` of the top ``k`` canonical correlations of
    the two views' outputs, computed on the rows of all processes together (so the loss of a
    data-parallel run is the one-process loss of the global batch).

    Args:
        k: number of canonical correlations summed (None: all, as Andrew et al.).
        ridge: added to each covariance's diagonal (Andrew et al.'s r_1 = r_2).
        gather: gather the rows of every process first (False: the caller passes rows that
            are already those of the global batch).

    Shapes: ``a`` ``(N, p)``, ``b`` ``(N, q)`` -> a 0-d tensor in ``[-min(p, q), 0]``.

    Example:
        >>> x = torch.randn(256, 4)
        >>> float(TotalCorrelation()(x, x)) < -3.99
        True
    """

    def __init__(self, k: int | None = None, ridge: float = 1e-3, gather: bool = True) -> None:
        super().__init__()
        if k is not None:  # None: every canonical correlation
            k = check_int("TotalCorrelation", "k", k, minimum=1)
        self.k = k
        self.ridge = check_float("TotalCorrelation", "ridge", ridge, minimum=0)
        self.gather = bool(gather)

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        # Float64 for the decompositions: a few hundred rows of float32 lose the small
        # canonical correlations' digits, and the cost is negligible next to the encoders.
        if self.gather:
            a, b = gather(a), gather(b)
        a64, b64 = a.double(), b.double()
        return -canonical_correlations(a64, b64, self.ridge, self.k).sum().to(a.dtype)


def correlation_matrix(a: torch.Tensor, b: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Pearson correlations ``(p, q)`` between the columns of ``a`` ``(N, p)`` and ``b``
    ``(N, q)`` over the batch (a constant column correlates 0 with everything).

    Example:
        >>> x = torch.randn(100, 3)
        >>> torch.allclose(correlation_matrix(x, x).diagonal(), torch.ones(3))
        True
    """
    a = a - a.mean(0)
    b = b - b.mean(0)
    # eps inside the root: the root's derivative at 0 is infinite, so a column that is
    # constant over the batch (a dead ReLU unit: mucmm's image features on Trifeatures) made
    # the gradient NaN with eps added outside it.
    a = a / (a.pow(2).sum(0) + eps * eps).sqrt()
    b = b / (b.pow(2).sum(0) + eps * eps).sqrt()
    return a.T @ b
