"""Projection and prediction heads."""

from __future__ import annotations

import torch
from torch import nn

from mmfactor.errors import InputError


class MLPHead(nn.Module):
    """``in_dim -> hidden -> out_dim`` with ReLU (and optional dropout); ``hidden=0`` is linear.

    Shapes: ``(B, in_dim) -> (B, out_dim)``.

    Example:
        >>> MLPHead(8, 16, 4)(torch.zeros(2, 8)).shape
        torch.Size([2, 4])
    """

    def __init__(self, in_dim: int, hidden: int, out_dim: int, dropout: float = 0.0) -> None:
        super().__init__()
        if min(in_dim, out_dim) < 1 or hidden < 0 or not 0.0 <= dropout < 1.0:
            raise InputError(
                f"MLPHead: bad sizes in={in_dim} hidden={hidden} out={out_dim} or dropout={dropout}"
            )
        self.out_dim = out_dim
        if hidden == 0:
            self.net: nn.Module = nn.Linear(in_dim, out_dim)
        else:
            self.net = nn.Sequential(
                nn.Linear(in_dim, hidden),
                nn.ReLU(),
                nn.Dropout(dropout),
                nn.Linear(hidden, out_dim),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def modality_heads(names: list[str], in_dim: int, hidden: int, out_dim: int) -> nn.ModuleDict:
    """One :class:`MLPHead` ``in_dim -> hidden -> out_dim`` per modality name.

    Example:
        >>> sorted(modality_heads(["x1", "x2"], 8, 16, 4))
        ['x1', 'x2']
    """
    return nn.ModuleDict({m: MLPHead(in_dim, hidden, out_dim) for m in names})
