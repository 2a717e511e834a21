"""Image encoders for ``(B, C, H, W)`` inputs, trained from scratch.

- ``cnn``: a small convolutional network, for small images (MNIST-like, sensor maps) and tests;
- ``alexnet``: AlexNet (CoMM's Trifeatures encoder), :class:`AlexNetEncoder`;
- ``resnet18``: ResNet-18, :class:`ResNet18Encoder`.

The last two follow torchvision's layouts (written here: torchvision is not a dependency) and
have a ``"small"`` stem for 32-64 px images. For natural images a frozen pretrained backbone
is often better: precomputed features with the ``identity`` / ``linear`` encoders (FactorCL's
IRFL experiment uses a frozen CLIP backbone, Liang et al., NeurIPS 2023).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from mmfactor.checks import (
    check_bool,
    check_choice,
    check_float,
    check_int,
    check_int_list,
    check_probability,
)
from mmfactor.data.dataset import ModalitySpec
from mmfactor.distributed import GlobalBatchNorm2d
from mmfactor.encoders import Encoder, register_encoder
from mmfactor.errors import InputError


class _FeatureMapEncoder(Encoder):
    """An image encoder whose output pools a last feature map ``(B, C, h, w)``
    (:meth:`feature_map`); its pixels are the tokens (``T = h * w``, ``token_dim = C``)."""

    kinds = ("image",)
    output_layer_names = ("out",)
    feature_channels: int

    def feature_map(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    @property
    def token_dim(self) -> int:
        return self.feature_channels

    def tokens(
        self, x: torch.Tensor, mask: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, None]:
        return self.feature_map(x).flatten(2).transpose(1, 2), None

    def token_grid(self) -> tuple[int, int]:
        # The map's size depends on the image size only: one eval-mode pass of one blank
        # image (eval mode, so no batch-norm statistics move).
        was_training = self.training
        p = next(self.parameters())
        with torch.no_grad():
            self.eval()
            fmap = self.feature_map(
                torch.zeros(1, *self.spec.shape, dtype=p.dtype, device=p.device)
            )
            self.train(was_training)
        return int(fmap.shape[2]), int(fmap.shape[3])


@register_encoder("cnn")
class CNNEncoder(_FeatureMapEncoder):
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
        self.features = nn.Sequential(*blocks)
        self.feature_channels = width
        self.dropout = nn.Dropout(p)
        self.out = nn.Linear(width, self.out_dim)

    def feature_map(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(self._as_input(x))

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        pooled = F.adaptive_avg_pool2d(self.feature_map(x), 1).flatten(1)
        return self.out(self.dropout(pooled))


def _scaled(channels: int, width: float) -> int:
    return max(1, round(channels * width))


def _check_image_options(
    owner: str, stem: str, width: float, channels_last: bool
) -> tuple[str, float, bool]:
    s = check_choice(owner, "stem", stem, ("imagenet", "small"))
    w = check_float(owner, "width", width, 0, None, min_open=True)
    return s, w, check_bool(owner, "channels_last", channels_last)


#: torchvision's ImageNet channel statistics (``transforms.Normalize`` in its recipes and in
#: CoMM's Trifeatures pipeline); images of another channel count use their means.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class _ConvNetEncoder(_FeatureMapEncoder):
    """What the torchvision layouts share: image inputs in [0, 1] standardised by ImageNet's
    channel statistics when ``normalize`` (torchvision's recipes do it in the transforms; here
    it follows the augmentations, which need [0, 1]), and weights and inputs kept in
    channels-last memory format when ``channels_last`` (same results)."""

    channels_last: bool
    features: nn.Sequential
    mean: torch.Tensor | None
    std: torch.Tensor | None

    def _set_input_norm(self, owner: str, normalize: bool) -> None:
        mean, std = torch.tensor(IMAGENET_MEAN), torch.tensor(IMAGENET_STD)
        channels = self.spec.shape[0]
        if channels != 3:
            mean, std = mean.mean().expand(channels), std.mean().expand(channels)
        on = check_bool(owner, "normalize", normalize)
        # Not in the state dict: constants of the input pipeline, not weights.
        self.register_buffer("mean", mean.reshape(1, -1, 1, 1).clone() if on else None, False)
        self.register_buffer("std", std.reshape(1, -1, 1, 1).clone() if on else None, False)

    def _use_memory_format(self) -> None:
        """Call at the end of ``__init__``: weights to channels-last if asked."""
        if self.channels_last:
            # nn.Module.to takes memory_format at run time; its type stubs do not say so.
            self.to(memory_format=torch.channels_last)  # type: ignore[call-overload]

    def _input(self, x: torch.Tensor) -> torch.Tensor:
        x = self._as_input(x)
        if self.mean is not None and self.std is not None:
            x = (x - self.mean.to(x.dtype)) / self.std.to(x.dtype)
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x

    def feature_map(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(self._input(x))


class _CeilMaxPool(nn.Module):
    """``MaxPool2d(3, 2, ceil_mode=True)`` whose windows are clipped to the map, so a map one
    pixel wide passes through (plain ``ceil_mode`` pooling needs at least 2 px). On maps of
    2 px or more it is exactly ``MaxPool2d(3, 2, ceil_mode=True)``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        if h < 2 or w < 2:  # pad with -inf: the max over a clipped window is unchanged
            x = F.pad(x, (0, int(w < 2), 0, int(h < 2)), value=float("-inf"))
        return F.max_pool2d(x, 3, 2, ceil_mode=True)


@register_encoder("alexnet")
class AlexNetEncoder(_ConvNetEncoder):
    """AlexNet (Krizhevsky et al., NeurIPS 2012), the layout of torchvision's ``alexnet``; CoMM
    (Dufumier et al., ICLR 2025) encodes Trifeatures images with an AlexNet-type network.

    Features: ``Conv(C, 64, k11, s4, p2) -> ReLU -> Pool -> Conv(64, 192, k5, p2) -> ReLU ->
    Pool -> Conv(192, 384, k3, p1) -> ReLU -> Conv(384, 256, k3, p1) -> ReLU ->
    Conv(256, 256, k3, p1) -> ReLU -> Pool``, channel counts scaled by ``width``. ``Pool`` is
    ``MaxPool2d(3, 2, ceil_mode=True)`` with windows clipped to the map (a 1-px map passes
    through), so every image size works (the ImageNet stem turns images under 15 px into one
    pixel, though). It equals torchvision's ``MaxPool2d(3, 2)`` on odd-sized maps, as at
    224 px (55-27-13-6 px maps); on even-sized maps it keeps one more row and column.
    Head with ``hidden > 0``: ``AdaptiveAvgPool(6, 6) -> Dropout -> Linear(256 * 36, hidden)
    -> ReLU -> Dropout -> Linear(hidden, hidden) -> ReLU -> Linear(hidden, out_dim)``, as
    torchvision's classifier; with ``hidden = 0``: global average pooling ``-> Dropout ->
    Linear(256, out_dim)``.

    The defaults (``stem="imagenet", width=1.0, hidden=4096, dropout=0.5``, 3 channels) are
    torchvision's ``alexnet(num_classes=out_dim)``: the same layers and parameters (features:
    2,469,696), the same outputs at 224 px (pooling aside, see above). PyTorch's default init,
    as torchvision.
    On CPU, ``stem="small", width=0.25, hidden=0`` suits 32-64 px images.

    Shapes: ``(B, C, H, W)`` -> ``(B, out_dim)``; ``mask`` is ignored.

    Args:
        spec: an image modality, shape ``(C, H, W)``; any ``C``.
        out_dim: output width.
        stem: ``"imagenet"`` (first conv 11 x 11, stride 4, padding 2, as the paper) or
            ``"small"`` (3 x 3, stride 1, padding 1: keeps the detail of small images).
        width: multiplier of every conv's channel count (rounded, at least 1).
        hidden: width of the two hidden classifier layers; 0 for a single ``Linear``.
        dropout: dropout rate before each classifier ``Linear`` but the last.
        channels_last: keep weights and inputs in channels-last memory format (same results;
            faster on CPU in ``benchmarks/image_encoders.py``).

    Example:
        >>> enc = AlexNetEncoder(ModalitySpec("img", "image", (3, 32, 32)), 64,
        ...                      stem="small", width=0.25, hidden=0)
        >>> enc(torch.randn(4, 3, 32, 32)).shape
        torch.Size([4, 64])
    """

    output_layer_names = ("head",)

    def __init__(
        self,
        spec: ModalitySpec,
        out_dim: int,
        *,
        stem: str = "imagenet",
        width: float = 1.0,
        hidden: int = 4096,
        dropout: float = 0.5,
        batchnorm: bool = False,
        normalize: bool = True,
        channels_last: bool = True,
    ) -> None:
        super().__init__(spec, out_dim)
        owner = "encoder 'alexnet'"
        stem, w, self.channels_last = _check_image_options(owner, stem, width, channels_last)
        self._set_input_norm(owner, normalize)
        h = check_int(owner, "hidden", hidden, minimum=0)
        p = check_probability(owner, "dropout", dropout)
        bn = check_bool(owner, "batchnorm", batchnorm)
        c1, c2, c3, c4, c5 = (_scaled(c, w) for c in (64, 192, 384, 256, 256))
        k1, s1, p1 = (11, 4, 2) if stem == "imagenet" else (3, 1, 1)

        def conv(c_in: int, c_out: int, k: int, stride: int, pad: int) -> list[nn.Module]:
            # With BN the conv's bias is redundant (BN's shift), as in ResNet's convs.
            norm = [GlobalBatchNorm2d(c_out)] if bn else []
            return [nn.Conv2d(c_in, c_out, k, stride, pad, bias=not bn), *norm, nn.ReLU(True)]

        self.feature_channels = c5
        self.features = nn.Sequential(
            *conv(spec.shape[0], c1, k1, s1, p1), _CeilMaxPool(),
            *conv(c1, c2, 5, 1, 2), _CeilMaxPool(),
            *conv(c2, c3, 3, 1, 1), *conv(c3, c4, 3, 1, 1), *conv(c4, c5, 3, 1, 1), _CeilMaxPool(),
        )  # fmt: skip
        if h:
            self.pool = nn.AdaptiveAvgPool2d(6)
            self.head = nn.Sequential(
                nn.Flatten(), nn.Dropout(p), nn.Linear(c5 * 36, h), nn.ReLU(inplace=True),
                nn.Dropout(p), nn.Linear(h, h), nn.ReLU(inplace=True), nn.Linear(h, self.out_dim),
            )  # fmt: skip
        else:
            self.pool = nn.AdaptiveAvgPool2d(1)
            self.head = nn.Sequential(nn.Flatten(), nn.Dropout(p), nn.Linear(c5, self.out_dim))
        self._use_memory_format()

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        return self.head(self.pool(self.feature_map(x)))


def _conv_bn(c_in: int, c_out: int, k: int, stride: int) -> tuple[nn.Conv2d, GlobalBatchNorm2d]:
    return nn.Conv2d(c_in, c_out, k, stride, k // 2, bias=False), GlobalBatchNorm2d(c_out)


class _BasicBlock(nn.Module):
    """``relu(bn(conv3x3(relu(bn(conv3x3(x))))) + shortcut(x))``; the shortcut is a 1 x 1
    conv + BN when the stride or width changes (torchvision's ``BasicBlock``)."""

    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.conv1, self.bn1 = _conv_bn(c_in, c_out, 3, stride)
        self.conv2, self.bn2 = _conv_bn(c_out, c_out, 3, 1)
        self.downsample = (
            nn.Sequential(*_conv_bn(c_in, c_out, 1, stride))
            if stride != 1 or c_in != c_out
            else nn.Identity()
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)), inplace=True)
        return F.relu(self.bn2(self.conv2(out)) + self.downsample(x), inplace=True)


@register_encoder("resnet18")
class ResNet18Encoder(_ConvNetEncoder):
    """ResNet-18 (He et al., CVPR 2016), the layout of torchvision's ``resnet18``.

    Stem ``"imagenet"``: ``Conv(C, 64, k7, s2, p3) -> BN -> ReLU -> MaxPool(3, 2, p1)``;
    stem ``"small"`` (the usual CIFAR variant, for 32-64 px images): ``Conv(C, 64, k3, s1, p1)
    -> BN -> ReLU``, no max pooling. Then 4 stages of 2 basic blocks (64, 128, 256, 512
    channels, strides 1, 2, 2, 2; 1 x 1 conv + BN shortcuts where the shape changes), global
    average pooling and ``Linear(512, out_dim)``; channel counts scaled by ``width``. Any image
    size works. Batch norms are :class:`~mmfactor.distributed.GlobalBatchNorm2d` (statistics
    over every process's rows under data parallelism). Init as torchvision: Kaiming normal
    (fan out, ReLU) convs, BN weight 1 and bias 0, optionally the last BN of each block 0.

    The defaults (``stem="imagenet", width=1.0, zero_init_residual=False``, 3 channels) are
    torchvision's ``resnet18`` exactly, with ``num_classes=out_dim`` (11,176,512 parameters
    before the output layer).

    Shapes: ``(B, C, H, W)`` -> ``(B, out_dim)``; ``mask`` is ignored.

    Args:
        spec: an image modality, shape ``(C, H, W)``; any ``C``.
        out_dim: output width.
        stem: ``"imagenet"`` or ``"small"``, as above.
        width: multiplier of every channel count (rounded, at least 1).
        zero_init_residual: start each block's last BN at weight 0, so blocks start as
            identities (Goyal et al., 2017).
        channels_last: keep weights and inputs in channels-last memory format (same results;
            faster on CPU in ``benchmarks/image_encoders.py``).

    Example:
        >>> enc = ResNet18Encoder(ModalitySpec("img", "image", (3, 32, 32)), 64,
        ...                       stem="small", width=0.25)
        >>> enc(torch.randn(4, 3, 32, 32)).shape
        torch.Size([4, 64])
    """

    def __init__(
        self,
        spec: ModalitySpec,
        out_dim: int,
        *,
        stem: str = "imagenet",
        width: float = 1.0,
        zero_init_residual: bool = False,
        normalize: bool = True,
        channels_last: bool = True,
    ) -> None:
        super().__init__(spec, out_dim)
        owner = "encoder 'resnet18'"
        stem, w, self.channels_last = _check_image_options(owner, stem, width, channels_last)
        self._set_input_norm(owner, normalize)
        zero_init = check_bool(owner, "zero_init_residual", zero_init_residual)
        widths = [_scaled(c, w) for c in (64, 128, 256, 512)]
        k, stride = (7, 2) if stem == "imagenet" else (3, 1)
        layers: list[nn.Module] = [*_conv_bn(spec.shape[0], widths[0], k, stride), nn.ReLU()]
        if stem == "imagenet":
            layers.append(nn.MaxPool2d(3, 2, padding=1))
        c_in = widths[0]
        for i, c in enumerate(widths):
            layers += [_BasicBlock(c_in, c, 1 if i == 0 else 2), _BasicBlock(c, c, 1)]
            c_in = c
        self.features = nn.Sequential(*layers)
        self.feature_channels = c_in
        self.out = nn.Linear(c_in, self.out_dim)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        if zero_init:
            for m in self.modules():
                if isinstance(m, _BasicBlock):
                    nn.init.zeros_(m.bn2.weight)
        self._use_memory_format()

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        return self.out(F.adaptive_avg_pool2d(self.feature_map(x), 1).flatten(1))
