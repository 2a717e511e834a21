"""Balancing loss terms without weights: MIRD's ``log L`` (Qian et al. 2024, Sec. 3.4)."""

from __future__ import annotations

import torch

from mmfactor.distributed import mean_over_ranks


def log_balanced(loss: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """``log L`` for a positive loss ``L``: its gradient ``grad L / L`` rescales each term by
    its own size, so terms of different scales pull equally without weights.

    Under data parallelism each rank holds its shard's ``L_r``, and averaging the ranks'
    gradients of ``log L_r`` would not give the gradient of ``log`` of the global mean.
    This returns a value equal to ``log L`` (global) whose gradient is ``grad L_r / L``
    (global ``L``), so the averaged gradient is exactly that of one process.

    Example:
        >>> loss = torch.tensor(4.0, requires_grad=True)
        >>> out = log_balanced(loss)
        >>> out.backward()
        >>> round(float(out.detach()), 4), float(loss.grad)
        (1.3863, 0.25)
    """
    scale = mean_over_ranks(loss).clamp_min(eps)
    return loss / scale + (torch.log(scale) - 1.0)
