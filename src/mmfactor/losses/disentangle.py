"""MISA's similarity and difference losses (Hazarika, Zimmermann, Poria, ACM MM 2020, Sec. 3.3).

- :class:`CMD`: central moment discrepancy (Zellinger et al., ICLR 2017) between two batches
  of representations, the distance MISA minimises between the shared vectors of two
  modalities;
- :class:`SoftOrthogonality`: MISA's "difference" loss, the squared entries of ``S^T P``
  for batch-centred, row-normalised matrices ``S`` and ``P`` (zero when their columns are
  orthogonal over the batch).

Both are statistics of the whole batch: under data parallelism they are computed on the
rows of every process, gathered differentiably, so each process's loss is the one-process
loss of the global batch.
"""

from __future__ import annotations

import torch
from torch import nn

from mmfactor.checks import check_int
from mmfactor.distributed import gather


class CMD(nn.Module):
    """``||E[a] - E[b]|| + sum_{k=2..K} ||c_k(a) - c_k(b)||`` with ``c_k(x) = E[(x - E x)^k]``
    per dimension (MISA uses K = 5, no range scaling).

    Shapes: ``a`` ``(N, d)``, ``b`` ``(M, d)`` -> a 0-d tensor.

    Example:
        >>> x = torch.randn(64, 8)
        >>> float(CMD()(x, x))
        0.0
    """

    def __init__(self, moments: int = 5) -> None:
        super().__init__()
        self.moments = check_int("CMD", "moments", moments, minimum=1)

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        a, b = gather(a), gather(b)
        mean_a, mean_b = a.mean(0), b.mean(0)
        total = torch.linalg.vector_norm(mean_a - mean_b)
        centred_a, centred_b = a - mean_a, b - mean_b
        for k in range(2, self.moments + 1):
            total = total + torch.linalg.vector_norm(
                centred_a.pow(k).mean(0) - centred_b.pow(k).mean(0)
            )
        return total


class SoftOrthogonality(nn.Module):
    """MISA's difference loss: ``mean((S^T P)^2)`` after centring each matrix over the batch
    and scaling each row to unit L2 norm, i.e. ``||S^T P||_F^2 / (d_s d_p)`` as the released
    code computes it.

    Shapes: ``s`` ``(N, d_s)``, ``p`` ``(N, d_p)`` -> a 0-d tensor.

    Example:
        >>> s = torch.randn(32, 4)
        >>> bool(SoftOrthogonality()(s, s) > SoftOrthogonality()(s, torch.randn(32, 4)))
        True
    """

    def forward(self, s: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
        def unit_rows(x: torch.Tensor) -> torch.Tensor:
            x = x - x.mean(0, keepdim=True)
            return x / (torch.linalg.vector_norm(x, dim=1, keepdim=True) + 1e-6)

        return (unit_rows(gather(s)).T @ unit_rows(gather(p))).pow(2).mean()
