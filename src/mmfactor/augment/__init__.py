"""Batch augmentations for self-supervised and multi-view objectives (FactorCL-SSL,
``cross-self``).

FactorCL (Liang et al., "Factorized Contrastive Learning: Going Beyond Multi-view
Redundancy", NeurIPS 2023, Sec. 3.3 and App. D) forms, for each sample, an augmented view by
drawing one augmentation at random per sample; :func:`default_augmentation` builds those
defaults per modality kind.

Every transform is an ``nn.Module`` with ``forward(x, mask=None, generator=None) ->
(x_aug, mask_aug)``: vectorised over the batch, randomised per sample, drawing on
``x.device``, seeded by a :class:`torch.Generator` given at call time or held by the module.
Shapes: vectors ``(B, D)`` (mask ``None``), sequences ``(B, T, D)`` with mask ``(B, T)``,
images ``(B, C, H, W)``; shapes are always preserved.

Example:
    >>> from mmfactor.data.dataset import ModalitySpec
    >>> aug = default_augmentation(ModalitySpec("audio", "sequence", (5,)))
    >>> x, mask = torch.randn(8, 20, 5), torch.ones(8, 20, dtype=torch.bool)
    >>> x_aug, mask_aug = aug(x, mask, generator=torch.Generator().manual_seed(0))
    >>> x_aug.shape, mask_aug.shape
    (torch.Size([8, 20, 5]), torch.Size([8, 20]))
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from mmfactor.augment.audio import FrequencyMasking, TimeMasking, spec_augment
from mmfactor.augment.image import (
    ColorJitter,
    GaussianBlur,
    RandomFlip,
    RandomGrayscale,
    RandomResizedCrop,
    simclr_augmentation,
)
from mmfactor.augment.sequence import DropSteps, PermuteSteps
from mmfactor.augment.vector import (
    Augmentation,
    FeatureDropout,
    GaussianNoise,
    Identity,
    Mixup,
    Output,
    SwapHalves,
    _device,
    per_sample,
)
from mmfactor.data.dataset import ModalitySpec
from mmfactor.distributed import rank_share
from mmfactor.errors import InputError

__all__ = [
    "Augmentation",
    "ColorJitter",
    "Compose",
    "DropSteps",
    "FeatureDropout",
    "FrequencyMasking",
    "GaussianBlur",
    "GaussianNoise",
    "Identity",
    "Mixup",
    "PermuteSteps",
    "RandomChoice",
    "RandomFlip",
    "RandomGrayscale",
    "RandomResizedCrop",
    "SwapHalves",
    "TimeMasking",
    "default_augmentation",
    "simclr_augmentation",
    "spec_augment",
]


class RandomChoice(Augmentation):
    """Per sample, apply one of ``transforms``, drawn at random (with ``weights``, default
    uniform).

    Vectorised: every candidate transforms the whole batch, and each sample then takes its
    drawn candidate's row (``torch.where``). Candidates must preserve shapes. If some
    candidates change the mask (:class:`DropSteps`) the output mask is selected per sample
    too; otherwise it is passed through.

    Example:
        >>> aug = RandomChoice([FeatureDropout(0.1), GaussianNoise(0.1), Identity()])
        >>> x_aug, _ = aug(torch.randn(32, 10))
    """

    def __init__(
        self,
        transforms: Sequence[nn.Module],
        weights: Sequence[float] | None = None,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__(generator)
        if len(transforms) == 0:
            raise InputError("RandomChoice needs at least one transform")
        self.transforms = nn.ModuleList(transforms)
        w = [1.0] * len(transforms) if weights is None else [float(v) for v in weights]
        if len(w) != len(transforms) or min(w) < 0 or sum(w) <= 0:
            raise InputError(
                f"RandomChoice: weights must be {len(transforms)} non-negative "
                f"numbers with a positive sum, got {weights!r}"
            )
        self.weights = torch.tensor(w, dtype=torch.float64)

    def choose(self, x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        """The ``(B,)`` index of the transform each sample receives."""
        w = self.weights.to(device=_device(x, generator), dtype=torch.float32)
        choice = rank_share(
            lambda s: torch.multinomial(w, s[0], replacement=True, generator=generator),
            (x.shape[0],),
        )
        return choice.to(x.device)

    def augment(
        self, x: torch.Tensor, mask: torch.Tensor | None, generator: torch.Generator | None
    ) -> Output:
        choice = self.choose(x, generator)
        outs = [t(x, mask, generator) for t in self.transforms]
        masks = [m for _, m in outs]
        if any(m is not None for m in masks):
            fallback = (
                mask
                if mask is not None
                else torch.ones(x.shape[:2], dtype=torch.bool, device=x.device)
            )
            masks = [fallback if m is None else m for m in masks]
        x_out, mask_out = outs[0][0], masks[0]
        for k in range(1, len(outs)):
            pick = choice == k
            x_out = torch.where(per_sample(pick, x_out), outs[k][0], x_out)
            if mask_out is not None:
                mask_out = torch.where(pick[:, None], masks[k], mask_out)
        return x_out, mask_out


class Compose(Augmentation):
    """Apply ``transforms`` one after the other (each still randomised per sample)."""

    def __init__(
        self, transforms: Sequence[nn.Module], generator: torch.Generator | None = None
    ) -> None:
        super().__init__(generator)
        self.transforms = nn.ModuleList(transforms)

    def augment(
        self, x: torch.Tensor, mask: torch.Tensor | None, generator: torch.Generator | None
    ) -> Output:
        for t in self.transforms:
            x, mask = t(x, mask, generator)
        return x, mask


def default_augmentation(
    spec: ModalitySpec, generator: torch.Generator | None = None
) -> Augmentation:
    """The per-kind default augmentation (FactorCL, Sec. 3.3 / App. D), one drawn per sample:

    - ``vector``: ``RandomChoice([FeatureDropout(0.1), GaussianNoise(0.1), Identity()])``
      (FactorCL's released synthetic code also swaps halves: add :class:`SwapHalves` to
      reproduce it; tabular data may add :class:`Mixup`);
    - ``sequence``: ``RandomChoice([PermuteSteps(), GaussianNoise(0.1), DropSteps(0.2),
      Identity()])``;
    - ``image``: SimCLR's crop + flip + colour jitter + grayscale + blur
      (:func:`~mmfactor.augment.image.simclr_augmentation`, the output the input's size), for
      images in ``[0, 1]`` with C = 1 or 3 (grayscale: no saturation or hue jitter); other
      channel counts get the geometric part and the blur only.

    Noise levels are relative to each feature's spread in the batch (see
    :class:`GaussianNoise`).
    """
    if spec.kind == "vector":
        return RandomChoice(
            [FeatureDropout(0.1), GaussianNoise(0.1), Identity()], generator=generator
        )
    if spec.kind == "sequence":
        return RandomChoice(
            [PermuteSteps(), GaussianNoise(0.1), DropSteps(0.2), Identity()], generator=generator
        )
    if spec.kind == "image":
        size = (spec.shape[-2], spec.shape[-1])  # (H, W): shapes are preserved
        if spec.shape[0] in (1, 3):
            return simclr_augmentation(size, generator=generator)
        return Compose(
            [RandomResizedCrop(size), RandomFlip(0.5), GaussianBlur(p=0.5)], generator=generator
        )
    raise InputError(f"no default augmentation for {spec.kind} modality {spec.name!r}")
