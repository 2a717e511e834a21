"""Multi-layer perceptrons: :func:`mlp`, the one builder every MLP in mmfactor is made with
(heads, critics, factor networks, gates), and :class:`MLPHead`, a projection or prediction
head.

Example:
    >>> mlp(8, [16, 16], 4)
    Sequential(
      (0): Linear(in_features=8, out_features=16, bias=True)
      (1): ReLU()
      (2): Linear(in_features=16, out_features=16, bias=True)
      (3): ReLU()
      (4): Linear(in_features=16, out_features=4, bias=True)
    )
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from mmfactor.checks import check_int, check_probability


def mlp(
    in_dim: int, hidden: Sequence[int], out_dim: int, dropout: float | None = None
) -> nn.Sequential:
    """``in_dim -> hidden[0] -> ... -> out_dim``: linear layers with a ReLU between them (and
    a dropout layer after each ReLU when ``dropout`` is given), linear output.

    Shapes: ``(B, in_dim) -> (B, out_dim)``.
    """
    dims = [in_dim, *hidden, out_dim]
    layers: list[nn.Module] = []
    for i, (d_in, d_out) in enumerate(zip(dims[:-1], dims[1:], strict=True)):
        if i:
            layers.append(nn.ReLU())
            if dropout is not None:
                layers.append(nn.Dropout(dropout))
        layers.append(nn.Linear(d_in, d_out))
    return nn.Sequential(*layers)


class MLPHead(nn.Module):
    """``in_dim -> hidden -> out_dim`` with ReLU and dropout; ``hidden=0`` is linear.

    Shapes: ``(B, in_dim) -> (B, out_dim)``.

    Example:
        >>> MLPHead(8, 16, 4)(torch.zeros(2, 8)).shape
        torch.Size([2, 4])
    """

    def __init__(self, in_dim: int, hidden: int, out_dim: int, dropout: float = 0.0) -> None:
        super().__init__()
        check_int("MLPHead", "in_dim", in_dim, minimum=1)
        check_int("MLPHead", "out_dim", out_dim, minimum=1)
        check_int("MLPHead", "hidden", hidden, minimum=0)
        check_probability("MLPHead", "dropout", dropout)
        self.out_dim = out_dim
        self.net: nn.Module = (
            nn.Linear(in_dim, out_dim) if hidden == 0 else mlp(in_dim, [hidden], out_dim, dropout)
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
