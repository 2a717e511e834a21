"""Image augmentations of SimCLR (Chen et al., "A Simple Framework for Contrastive Learning of
Visual Representations", ICML 2020, App. A), as CoMM (Dufumier et al., ICLR 2025) uses them
on Trifeatures: random resized crop, horizontal flip, colour jitter, grayscale, Gaussian blur.

Inputs are float images ``(B, C, H, W)`` in ``[0, 1]`` (the batch loader turns 8-bit images
into such floats); no mask. Unlike torchvision's transforms, which draw one parameter set per
call (a whole batch would get the same crop), every transform here draws its parameters per
sample and applies them to the whole batch at once: crops through one ``affine_grid`` +
``grid_sample``, blurs through one grouped convolution. The operations follow torchvision's
functional ops; the differences are documented on each class. Random numbers come from
:func:`~mmfactor.augment.vector.rand` (one draw for the global batch under data parallelism).

Example:
    >>> aug = simclr_augmentation(32)
    >>> x = torch.rand(8, 3, 48, 40)
    >>> aug(x, generator=torch.Generator().manual_seed(0))[0].shape
    torch.Size([8, 3, 32, 32])
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F

from mmfactor.augment.vector import Augmentation, Output, _device, per_sample, rand
from mmfactor.checks import check_float, check_int, check_probability
from mmfactor.errors import InputError

if TYPE_CHECKING:
    from mmfactor.augment import Compose

__all__ = [
    "ColorJitter",
    "GaussianBlur",
    "RandomFlip",
    "RandomGrayscale",
    "RandomResizedCrop",
    "blur",
    "grayscale",
    "hsv_to_rgb",
    "resized_crop",
    "rgb_to_hsv",
    "simclr_augmentation",
]

LUMA = (0.299, 0.587, 0.114)  # ITU-R 601-2, as PIL's convert("L")
_TRIES = 10  # torchvision's RandomResizedCrop tries 10 boxes before its central fallback


def _check_image(owner: str, x: torch.Tensor, mask: torch.Tensor | None, colour: bool) -> None:
    if mask is not None:
        raise InputError(f"{owner} takes images (B, C, H, W), not sequences (masks)")
    if x.dim() != 4 or not x.is_floating_point():
        raise InputError(
            f"{owner} takes float images (B, C, H, W) in [0, 1], got a {x.dtype} tensor of "
            f"shape {tuple(x.shape)} (8-bit images: x.float() / 255)"
        )
    if colour and x.shape[1] not in (1, 3):
        raise InputError(f"{owner} takes RGB (C = 3) or grayscale (C = 1), got C = {x.shape[1]}")


def _range(
    owner: str, name: str, value: Any, minimum: float, maximum: float | None = None
) -> tuple[float, float]:
    """A ``(low, high)`` pair with ``minimum < low <= high <= maximum``."""
    if not isinstance(value, Sequence) or isinstance(value, str) or len(value) != 2:
        raise InputError(f"{owner}: {name} must be a pair (low, high), got {value!r}")
    lo = check_float(owner, name, value[0], minimum, maximum, min_open=True)
    hi = check_float(owner, name, value[1], minimum, maximum, min_open=True)
    if lo > hi:
        raise InputError(f"{owner}: {name} must have low <= high, got {value!r}")
    return lo, hi


def _size(owner: str, size: Any) -> tuple[int, int] | None:
    if size is None:
        return None
    if isinstance(size, Sequence) and len(size) == 2:
        return check_int(owner, "size", size[0], 1), check_int(owner, "size", size[1], 1)
    side = check_int(owner, "size", size, 1, hint="an int, a pair (H, W) or None")
    return side, side


class RandomFlip(Augmentation):
    """Flip each image along ``dims`` (default the width axis) with probability ``p``.

    Shapes: ``(B, C, H, W)``, unchanged; no mask. Any dtype (a flip only moves values).
    """

    def __init__(
        self,
        p: float = 0.5,
        dims: tuple[int, ...] = (-1,),
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__(generator)
        self.p = check_probability("RandomFlip", "p", p, closed=True)
        self.dims = tuple(dims)

    def augment(
        self, x: torch.Tensor, mask: torch.Tensor | None, generator: torch.Generator | None
    ) -> Output:
        if mask is not None:
            raise InputError("RandomFlip takes images, not sequences (masks)")
        flip = rand((x.shape[0],), x, generator) < self.p
        return torch.where(per_sample(flip, x), x.flip(self.dims), x), mask


def resized_crop(
    x: torch.Tensor, boxes: torch.Tensor, size: tuple[int, int], flip: torch.Tensor | None = None
) -> torch.Tensor:
    """Crop box ``boxes[b] = (top, left, height, width)`` (pixels) of each image ``x[b]`` and
    resample it to ``size`` ``(h, w)``, mirrored left-right where ``flip`` ``(B,)`` is true.

    Bilinear, ``align_corners=False``: output pixel centres map to evenly spaced points of the
    box (a box of the output's size gives its pixels back; one twice as big, the means of
    2x2 blocks). Points nearer the image border than half a pixel take the border's value.
    Shapes: ``(B, C, H, W)``, ``(B, 4)`` -> ``(B, C, h, w)``.
    """
    b, c, height, width = x.shape
    top, left, h, w = boxes.to(x.dtype).unbind(1)
    # The affine maps output coordinates in [-1, 1] onto the box's edges in the input's.
    sx, sy = w / width, h / height
    cx, cy = (2 * left + w) / width - 1, (2 * top + h) / height - 1
    if flip is not None:
        sx = torch.where(flip, -sx, sx)  # a mirrored crop is the same affine with -x
    zero = torch.zeros_like(sx)
    theta = torch.stack([sx, zero, cx, zero, sy, cy], 1).reshape(b, 2, 3)
    grid = F.affine_grid(theta, [b, c, *size], align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


class RandomResizedCrop(Augmentation):
    """Crop a random box of each image and resize it to ``size`` (torchvision's
    ``RandomResizedCrop``, parameters drawn per sample).

    Per sample, as torchvision: a box of ``scale`` (uniform) times the image's area and aspect
    ratio ``w / h`` log-uniform in ``ratio``, sides rounded to pixels, at a uniform position;
    the first of 10 such candidates that fits the image is taken (all 10 are drawn at once),
    else the central box of the image clipped to ``ratio``. The box is then resampled by
    :func:`resized_crop` with probability ``flip`` of mirroring it. Unlike torchvision (whose
    resize antialiases), downscaling does not low-pass first; for SimCLR's crops, mostly
    upscaled, this hardly matters.

    Shapes: ``(B, C, H, W)`` -> ``(B, C, *size)`` (``size=None``: ``(H, W)``).

    Example:
        >>> out, _ = RandomResizedCrop(16)(torch.rand(4, 3, 20, 30))
        >>> out.shape
        torch.Size([4, 3, 16, 16])
    """

    def __init__(
        self,
        size: int | tuple[int, int] | None = None,
        scale: tuple[float, float] = (0.08, 1.0),
        ratio: tuple[float, float] = (3 / 4, 4 / 3),
        flip: float = 0.0,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__(generator)
        self.size = _size("RandomResizedCrop", size)
        self.scale = _range("RandomResizedCrop", "scale", scale, 0, 1)
        self.ratio = _range("RandomResizedCrop", "ratio", ratio, 0)
        self.flip = check_probability("RandomResizedCrop", "flip", flip, closed=True)

    def boxes(self, x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        """Each sample's box ``(top, left, height, width)``, ``(B, 4)`` int64."""
        b, _, height, width = x.shape
        # Float64 so that the rounding of sides matches torchvision's Python floats.
        u = rand((b, _TRIES, 4), x, generator).double()
        area = height * width * (self.scale[0] + (self.scale[1] - self.scale[0]) * u[..., 0])
        lo, hi = math.log(self.ratio[0]), math.log(self.ratio[1])
        aspect = torch.exp(lo + (hi - lo) * u[..., 1])
        w = torch.round(torch.sqrt(area * aspect))
        h = torch.round(torch.sqrt(area / aspect))
        fits = (w > 0) & (w <= width) & (h > 0) & (h <= height)
        top = torch.floor(u[..., 2] * (height - h + 1))  # uniform over the fitting positions
        left = torch.floor(u[..., 3] * (width - w + 1))
        cand = torch.stack([top, left, h, w], -1).long()  # (B, tries, 4)
        first = fits.int().argmax(1)  # argmax returns the first maximum: the first fitting try
        chosen = cand[torch.arange(b, device=x.device), first]
        return torch.where(fits.any(1)[:, None], chosen, self._central(height, width, x.device))

    def _central(self, height: int, width: int, device: torch.device) -> torch.Tensor:
        # torchvision's fallback: the whole image, its sides clipped to the ratio range.
        h, w = height, width
        if width / height < self.ratio[0]:
            h = int(round(width / self.ratio[0]))
        elif width / height > self.ratio[1]:
            w = int(round(height * self.ratio[1]))
        return torch.tensor([(height - h) // 2, (width - w) // 2, h, w], device=device)

    def augment(
        self, x: torch.Tensor, mask: torch.Tensor | None, generator: torch.Generator | None
    ) -> Output:
        _check_image("RandomResizedCrop", x, mask, colour=False)
        boxes = self.boxes(x, generator)
        flip = rand((x.shape[0],), x, generator) < self.flip if self.flip > 0 else None
        return resized_crop(x, boxes, self.size or (x.shape[2], x.shape[3]), flip), mask


def grayscale(x: torch.Tensor) -> torch.Tensor:
    """ITU-R 601-2 luma ``(B, 1, H, W)`` of RGB images ``(B, 3, H, W)`` (grayscale: ``x``)."""
    if x.shape[1] == 1:
        return x
    r, g, b = x.unbind(1)
    return (LUMA[0] * r + LUMA[1] * g + LUMA[2] * b).unsqueeze(1)


def rgb_to_hsv(x: torch.Tensor) -> torch.Tensor:
    """RGB ``(B, 3, H, W)`` in ``[0, 1]`` -> HSV, each in ``[0, 1]`` (as :mod:`colorsys`)."""
    r, g, b = x.unbind(1)
    v, lo = x.amax(1), x.amin(1)
    chroma = v - lo
    c = torch.where(chroma > 0, chroma, torch.ones_like(chroma))  # grays: hue 0, no 0 / 0
    # Hue in sextants from the largest channel; ties go to red, then green (as colorsys).
    h = torch.where(
        v == r, ((g - b) / c) % 6, torch.where(v == g, (b - r) / c + 2, (r - g) / c + 4)
    )
    h = torch.where(chroma > 0, h / 6, torch.zeros_like(h))
    s = torch.where(v > 0, chroma / torch.where(v > 0, v, torch.ones_like(v)), torch.zeros_like(v))
    return torch.stack([h, s, v], 1)


def hsv_to_rgb(x: torch.Tensor) -> torch.Tensor:
    """HSV ``(B, 3, H, W)`` -> RGB: channel ``n`` in (R, G, B) = (5, 3, 1) is
    ``v - v s clamp(min(k, 4 - k), 0, 1)``, ``k = (n + 6 h) mod 6``."""
    h, s, v = x[:, 0:1], x[:, 1:2], x[:, 2:3]
    n = torch.tensor([5.0, 3.0, 1.0], dtype=x.dtype, device=x.device).reshape(1, 3, 1, 1)
    k = (n + 6 * h) % 6
    return v - v * s * torch.minimum(k, 4 - k).clamp(0, 1)


class ColorJitter(Augmentation):
    """With probability ``p`` per sample, jitter brightness, contrast, saturation and hue
    (torchvision's ``ColorJitter``, factors drawn per sample).

    Factors are uniform in ``[max(0, 1 - a), 1 + a]`` (``a`` = ``brightness``, ``contrast``,
    ``saturation``) and the hue shift in ``[-hue, hue]``. Brightness blends with black,
    contrast with the sample's mean luma, saturation with its luma image; hue shifts H in HSV.
    The input is clamped to ``[0, 1]``, then each step's result. torchvision applies the four
    in a random order per call; here one random order is drawn per call (per batch) from the
    generator, the same for every sample: per-sample orders would cost all 24 orders or 16
    operations instead of 4. A parameter of 0 skips its operation.

    Grayscale images (C = 1) get brightness and contrast only: saturation and hue leave a
    gray image unchanged (as in torchvision). Shapes: ``(B, C, H, W)``, C in {1, 3}, unchanged.

    Example:
        >>> out, _ = ColorJitter(0.4, 0.4, 0.4, 0.1)(torch.rand(4, 3, 8, 8))
    """

    def __init__(
        self,
        brightness: float = 0.4,
        contrast: float = 0.4,
        saturation: float = 0.4,
        hue: float = 0.1,
        p: float = 0.8,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__(generator)
        self.brightness = check_float("ColorJitter", "brightness", brightness, 0)
        self.contrast = check_float("ColorJitter", "contrast", contrast, 0)
        self.saturation = check_float("ColorJitter", "saturation", saturation, 0)
        self.hue = check_float("ColorJitter", "hue", hue, 0, 0.5)
        self.p = check_probability("ColorJitter", "p", p, closed=True)

    def augment(
        self, x: torch.Tensor, mask: torch.Tensor | None, generator: torch.Generator | None
    ) -> Output:
        _check_image("ColorJitter", x, mask, colour=True)
        u = rand((x.shape[0], 5), x, generator)
        # One order per call: every process draws it alike (seeded alike), as one process would.
        order = torch.randperm(4, generator=generator, device=_device(x, generator)).tolist()
        strength = (self.brightness, self.contrast, self.saturation)
        factors = [
            per_sample(max(0, 1 - a) + (1 + a - max(0, 1 - a)) * u[:, i], x)
            for i, a in enumerate(strength)
        ]
        shift = per_sample(self.hue * (2 * u[:, 3] - 1), x)
        rgb = x.shape[1] == 3
        y = x.clamp(0, 1)
        for op in order:
            if op == 0 and self.brightness > 0:
                y = (factors[0] * y).clamp(0, 1)
            elif op == 1 and self.contrast > 0:
                mean = grayscale(y).mean((1, 2, 3), keepdim=True)
                y = (factors[1] * y + (1 - factors[1]) * mean).clamp(0, 1)
            elif op == 2 and self.saturation > 0 and rgb:
                y = (factors[2] * y + (1 - factors[2]) * grayscale(y)).clamp(0, 1)
            elif op == 3 and self.hue > 0 and rgb:
                hsv = rgb_to_hsv(y)
                hsv = torch.cat([(hsv[:, :1] + shift) % 1, hsv[:, 1:]], 1)
                y = hsv_to_rgb(hsv).clamp(0, 1)
        return torch.where(per_sample(u[:, 4] < self.p, x), y, x), mask


class RandomGrayscale(Augmentation):
    """With probability ``p`` per sample, replace an RGB image by its luma (ITU-R 601-2
    weights 0.299, 0.587, 0.114) on all three channels. Grayscale images (C = 1) pass.

    Shapes: ``(B, C, H, W)``, C in {1, 3}, unchanged.
    """

    def __init__(self, p: float = 0.2, generator: torch.Generator | None = None) -> None:
        super().__init__(generator)
        self.p = check_probability("RandomGrayscale", "p", p, closed=True)

    def augment(
        self, x: torch.Tensor, mask: torch.Tensor | None, generator: torch.Generator | None
    ) -> Output:
        _check_image("RandomGrayscale", x, mask, colour=True)
        apply = rand((x.shape[0],), x, generator) < self.p  # drawn for C = 1 too: same stream
        if x.shape[1] == 1:
            return x, mask
        return torch.where(per_sample(apply, x), grayscale(x).expand_as(x), x), mask


def blur(x: torch.Tensor, sigma: torch.Tensor, kernel_size: int) -> torch.Tensor:
    """Gaussian blur of each image ``x[b]`` with its own ``sigma[b]`` (``(B,)``): the
    normalised ``kernel_size``-tap kernel along each axis, reflect padding (as torchvision's
    ``gaussian_blur``). Shapes: ``(B, C, H, W)`` -> same."""
    b, c, height, width = x.shape
    pad = kernel_size // 2
    t = torch.arange(kernel_size, dtype=x.dtype, device=x.device) - pad
    kernel = torch.exp(-0.5 * (t / sigma[:, None].to(x.dtype)) ** 2)
    kernel = (kernel / kernel.sum(1, keepdim=True)).repeat_interleave(c, 0)  # (B * C, k)
    # The batch as channels: one grouped convolution applies every sample's kernel at once,
    # rows then columns (separable: 2k multiply-adds per pixel instead of k^2).
    y = F.pad(x, (pad, pad, pad, pad), mode="reflect").reshape(1, b * c, height + 2 * pad, -1)
    y = F.conv2d(y, kernel.reshape(b * c, 1, kernel_size, 1), groups=b * c)
    y = F.conv2d(y, kernel.reshape(b * c, 1, 1, kernel_size), groups=b * c)
    return y.reshape(b, c, height, width)


class GaussianBlur(Augmentation):
    """With probability ``p`` per sample, blur with a Gaussian of ``sigma`` uniform in
    ``sigma`` (per sample), by :func:`blur`.

    ``kernel_size`` (odd): ``None`` takes SimCLR's, about 10% of the shorter side (23 taps at
    224 pixels; at least 3, at most what reflect padding allows). Shapes: ``(B, C, H, W)``,
    unchanged.

    Example:
        >>> out, _ = GaussianBlur(p=1.0)(torch.rand(4, 3, 32, 32))
    """

    def __init__(
        self,
        kernel_size: int | None = None,
        sigma: tuple[float, float] = (0.1, 2.0),
        p: float = 0.5,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__(generator)
        if kernel_size is not None:
            check_int("GaussianBlur", "kernel_size", kernel_size, 1)
            if kernel_size % 2 == 0:
                raise InputError(f"GaussianBlur: kernel_size must be odd, got {kernel_size}")
        self.kernel_size = kernel_size
        self.sigma = _range("GaussianBlur", "sigma", sigma, 0)
        self.p = check_probability("GaussianBlur", "p", p, closed=True)

    def augment(
        self, x: torch.Tensor, mask: torch.Tensor | None, generator: torch.Generator | None
    ) -> Output:
        _check_image("GaussianBlur", x, mask, colour=False)
        side = min(x.shape[2], x.shape[3])
        k = self.kernel_size
        if k is None:  # reflect padding needs k // 2 < side
            k = min(max(2 * int(0.05 * side) + 1, 3), 2 * side - 1)
        elif k // 2 >= side:
            raise InputError(f"GaussianBlur: kernel_size {k} is too large for {side} pixels")
        u = rand((x.shape[0], 2), x, generator)
        sigma = self.sigma[0] + (self.sigma[1] - self.sigma[0]) * u[:, 0]
        return torch.where(per_sample(u[:, 1] < self.p, x), blur(x, sigma, k), x), mask


def simclr_augmentation(
    size: int | tuple[int, int] | None = None, generator: torch.Generator | None = None
) -> Compose:
    """SimCLR's augmentation (App. A; CoMM's on Trifeatures): ``RandomResizedCrop(size,
    scale=(0.08, 1))``, ``RandomFlip(0.5)``, ``ColorJitter(0.4, 0.4, 0.4, 0.1, p=0.8)``,
    ``RandomGrayscale(0.2)``, ``GaussianBlur(p=0.5)`` (kernel ~10% of the side).

    ``size``: output side or ``(H, W)``; ``None`` keeps the input's. Images: ``(B, C, H, W)``
    in ``[0, 1]``, C in {1, 3}.
    """
    from mmfactor.augment import Compose  # the package imports this module: import late

    return Compose(
        [
            RandomResizedCrop(size, scale=(0.08, 1.0)),
            RandomFlip(0.5),
            ColorJitter(0.4, 0.4, 0.4, 0.1, p=0.8),
            RandomGrayscale(0.2),
            GaussianBlur(None, (0.1, 2.0), p=0.5),
        ],
        generator=generator,
    )
