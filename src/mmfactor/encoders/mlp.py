"""Encoders for vectors (and flattened images): ``mlp``, ``identity`` and ``linear``.

FactorCL's synthetic experiments (Liang et al., NeurIPS 2023, App. D.1; released code) use
``mlp`` with ``hidden=[512, 512, 512]``: ``D -> 512 -> 512 -> 512 -> out_dim`` with ReLU (the
paper's text says one 512-wide layer; the code has three). FactorCL's MIMIC static encoder is
``mlp`` with ``hidden=[10, 10]``.
"""

from __future__ import annotations

import torch
from torch import nn

from mmfactor.checks import check_bool, check_choice, check_int_list, check_probability
from mmfactor.data.dataset import ModalitySpec
from mmfactor.distributed import GlobalBatchNorm1d
from mmfactor.encoders import Encoder, register_encoder

ACTIVATIONS: dict[str, type[nn.Module]] = {"relu": nn.ReLU, "gelu": nn.GELU, "tanh": nn.Tanh}


@register_encoder("mlp")
class MLPEncoder(Encoder):
    """``Linear -> [BatchNorm] -> act -> [Dropout]`` per hidden layer, then ``Linear(out_dim)``.

    Shapes: ``(B, D)`` or ``(B, C, H, W)`` (flattened) -> ``(B, out_dim)``; ``mask`` is ignored.

    Args:
        spec: a vector or image modality.
        out_dim: output width.
        hidden: width of each hidden layer (an int for one layer, ``[]`` for a single Linear).
        activation: ``relu``, ``gelu`` or ``tanh``.
        dropout: dropout after each hidden activation.
        batchnorm: BatchNorm1d after each hidden Linear (statistics over every process's
            rows under data parallelism).

    Example:
        >>> enc = MLPEncoder(ModalitySpec("x1", "vector", (100,)), 128, hidden=[512, 512, 512])
        >>> enc(torch.randn(4, 100)).shape
        torch.Size([4, 128])
    """

    kinds = ("vector", "image")

    def __init__(
        self,
        spec: ModalitySpec,
        out_dim: int,
        *,
        hidden: int | list[int] | tuple[int, ...] = (512, 512),
        activation: str = "relu",
        dropout: float = 0.0,
        batchnorm: bool = False,
    ) -> None:
        super().__init__(spec, out_dim)
        owner = "encoder 'mlp'"
        widths = check_int_list(owner, "hidden", hidden)
        act = check_choice(owner, "activation", activation, ACTIVATIONS)
        p = check_probability(owner, "dropout", dropout)
        bn = check_bool(owner, "batchnorm", batchnorm)
        layers: list[nn.Module] = []
        width = spec.dim
        for h in widths:
            layers.append(nn.Linear(width, h))
            if bn:
                layers.append(GlobalBatchNorm1d(h))
            layers.append(act())
            if p > 0:
                layers.append(nn.Dropout(p))
            width = h
        layers.append(nn.Linear(width, self.out_dim))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        return self.net(self._as_input(x).flatten(1))


@register_encoder("linear")
class LinearEncoder(Encoder):
    """A single ``Linear(D, out_dim)`` on (flattened) features.

    Shapes: ``(B, D)`` or ``(B, C, H, W)`` -> ``(B, out_dim)``; ``mask`` is ignored.
    """

    kinds = ("vector", "image")

    def __init__(self, spec: ModalitySpec, out_dim: int, *, bias: bool = True) -> None:
        super().__init__(spec, out_dim)
        bias = check_bool("encoder 'linear'", "bias", bias)
        self.net = nn.Linear(spec.dim, self.out_dim, bias=bias)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        return self.net(self._as_input(x).flatten(1))


@register_encoder("identity")
class IdentityEncoder(Encoder):
    """Precomputed features passed through unchanged when ``out_dim`` equals the feature count
    ``D``; otherwise a single ``Linear(D, out_dim)`` (as ``linear``), so the encoder always
    returns ``(B, out_dim)``.

    Shapes: ``(B, D)`` or ``(B, C, H, W)`` (flattened) -> ``(B, out_dim)``.
    """

    kinds = ("vector", "image")

    def __init__(self, spec: ModalitySpec, out_dim: int) -> None:
        super().__init__(spec, out_dim)
        self.net: nn.Module = (
            nn.Identity() if spec.dim == self.out_dim else nn.Linear(spec.dim, self.out_dim)
        )

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        return self.net(self._as_input(x).flatten(1))
