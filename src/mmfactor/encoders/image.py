"""Image encoder ``cnn``: a small convolutional network for ``(B, C, H, W)`` inputs.

Meant for small images (MNIST-like, sensor maps) and tests; for natural images use precomputed
features with the ``identity`` / ``linear`` encoders (FactorCL's IRFL experiment uses a frozen
CLIP backbone, Liang et al., NeurIPS 2023).
"""

from __future__ import annotations

import torch
from torch import nn

from mmfactor.checks import check_bool, check_int, check_int_list, check_probability
from mmfactor.data.dataset import ModalitySpec
from mmfactor.distributed import GlobalBatchNorm2d
from mmfactor.encoders import Encoder, register_encoder
from mmfactor.errors import InputError


@register_encoder("cnn")
class CNNEncoder(Encoder):
    """Per entry of ``channels``: ``Conv(k, same padding) -> [BatchNorm] -> ReLU -> MaxPool(2)``;
    then global average pooling, ``[Dropout]`` and ``Linear(channels[-1], out_dim)``.

    Pooling rounds up (``ceil_mode``), so any image size works, down to 1 x 1.

    Shapes: ``(B, C, H, W)`` -> ``(B, out_dim)``; ``mask`` is ignored.

    Args:
        spec: an image modality, shape ``(C, H, W)``.
        out_dim: output width.
        channels: output channels of each conv block.
        kernel_size: odd convolution kernel size.
        batchnorm: BatchNorm2d after each convolution (statistics over every process's
            rows under data parallelism).
        dropout: dropout before the output ``Linear``.

    Example:
        >>> enc = CNNEncoder(ModalitySpec("img", "image", (1, 28, 28)), 64)
        >>> enc(torch.randn(4, 1, 28, 28)).shape
        torch.Size([4, 64])
    """

    kinds = ("image",)

    def __init__(
        self,
        spec: ModalitySpec,
        out_dim: int,
        *,
        channels: list[int] | tuple[int, ...] = (32, 64),
        kernel_size: int = 3,
        batchnorm: bool = False,
        dropout: float = 0.0,
    ) -> None:
        super().__init__(spec, out_dim)
        owner = "encoder 'cnn'"
        widths = check_int_list(owner, "channels", channels)
        if not widths:
            raise InputError("encoder 'cnn': channels needs at least one entry")
        k = check_int(owner, "kernel_size", kernel_size, minimum=1)
        if k % 2 == 0:
            raise InputError(f"{owner}: kernel_size must be odd, got {k}")
        bn = check_bool(owner, "batchnorm", batchnorm)
        p = check_probability(owner, "dropout", dropout)
        blocks: list[nn.Module] = []
        width = spec.shape[0]
        for c in widths:
            blocks.append(nn.Conv2d(width, c, k, padding=k // 2))
            if bn:
                blocks.append(GlobalBatchNorm2d(c))
            blocks += [nn.ReLU(), nn.MaxPool2d(2, ceil_mode=True)]
            width = c
        blocks += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(p)]
        self.features = nn.Sequential(*blocks)
        self.out = nn.Linear(width, self.out_dim)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        return self.out(self.features(self._as_input(x)))
