"""Sequence augmentations for ``x`` ``(B, T, D)`` padded at the end, ``mask`` ``(B, T)`` bool
(``True`` at real steps, a prefix of each row; ``None`` = every step real).

FactorCL-SSL (Liang et al., NeurIPS 2023, Sec. 3.3 and App. D) augments time series and
MultiBench feature sequences by, per sample, one of: permuting time steps, Gaussian noise
(sigma 0.1), dropping 20% of the steps, identity.

Each transform acts on real steps only: the values in padded steps never influence a real
step's output. All keep the time axis ``T`` (so the outputs of several transforms can be
combined per sample by :class:`~mmfactor.augment.RandomChoice`) and keep padding at the end.

Example:
    >>> x, mask = torch.randn(4, 10, 3), torch.arange(10) < torch.tensor([[10], [7], [3], [1]])
    >>> x_aug, mask_aug = DropSteps(0.2)(x, mask)
    >>> bool((mask_aug.sum(1) >= 1).all())  # lengths after dropping are never 0
    True
"""

from __future__ import annotations

import torch

from mmfactor.augment.vector import (
    Augmentation,
    GaussianNoise,
    Identity,
    Output,
    rand,
    step_mask,
)
from mmfactor.checks import check_probability
from mmfactor.errors import InputError

__all__ = ["DropSteps", "GaussianNoise", "Identity", "PermuteSteps", "random_order"]


def _check_sequence(owner: str, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    if x.dim() < 3:
        raise InputError(f"{owner} takes sequences (B, T, D), got shape {tuple(x.shape)}")
    if mask is None:
        return torch.ones(x.shape[:2], dtype=torch.bool, device=x.device)
    return mask.to(device=x.device, dtype=torch.bool)


def random_order(
    mask: torch.Tensor, x: torch.Tensor, generator: torch.Generator | None
) -> torch.Tensor:
    """Per row, a ``(B, T)`` index order listing the real steps in random order, then the
    padded steps in their original order."""
    t = mask.shape[1]
    keys = rand(tuple(mask.shape), x, generator)
    # Real steps get keys in [0, 1), padded ones 1 + position: they sort last and stay in order.
    keys = torch.where(mask, keys, 1.0 + torch.arange(t, device=x.device, dtype=keys.dtype))
    return torch.sort(keys, dim=1, stable=True).indices


def _take_steps(x: torch.Tensor, order: torch.Tensor) -> torch.Tensor:
    return torch.take_along_dim(x, order.reshape(*order.shape, *([1] * (x.dim() - 2))), dim=1)


class PermuteSteps(Augmentation):
    """Shuffle the real time steps of each sample (its own random permutation); padding stays
    at the end, untouched, and the mask is unchanged.

    Shapes: ``(B, T, ...)`` and mask ``(B, T)``, unchanged.

    Example:
        >>> x_aug, mask_aug = PermuteSteps()(torch.randn(2, 5, 3))
    """

    def augment(
        self, x: torch.Tensor, mask: torch.Tensor | None, generator: torch.Generator | None
    ) -> Output:
        real = _check_sequence("PermuteSteps", x, mask)
        return _take_steps(x, random_order(real, x, generator)), mask


class DropSteps(Augmentation):
    """Drop a fraction ``p`` of each sample's real steps, move the kept ones (in order) to the
    front and shorten the mask; steps freed at the end are zeroed.

    A sample of length ``L`` loses ``floor(p * L + u)`` steps, ``u ~ U[0, 1)`` (stochastic
    rounding, so on average exactly ``p * L``, also for short sequences), but never all of
    them: at least one real step is kept. Rows that had no real step stay empty.

    Shapes: ``(B, T, ...)`` and mask ``(B, T)`` -> the same shapes; the returned mask is never
    ``None`` (with ``mask=None`` every input step counts as real).

    Example:
        >>> x_aug, mask_aug = DropSteps(0.2)(torch.randn(2, 10, 3))
        >>> mask_aug.sum(1)
        tensor([8, 8])
    """

    def __init__(self, p: float = 0.2, generator: torch.Generator | None = None) -> None:
        super().__init__(generator)
        self.p = check_probability("DropSteps", "p", p)

    def augment(
        self, x: torch.Tensor, mask: torch.Tensor | None, generator: torch.Generator | None
    ) -> Output:
        real = _check_sequence("DropSteps", x, mask)
        b, t = real.shape
        lengths = real.sum(1)
        u = rand((b,), x, generator)
        n_drop = torch.floor(self.p * lengths.float() + u.float()).long()
        n_drop = torch.minimum(n_drop, lengths - 1).clamp_min(0)
        # Rank the real steps in a random order; the n_drop first ranked go.
        order = random_order(real, x, generator)
        positions = torch.arange(t, device=x.device).expand(b, t)
        rank = torch.empty_like(order).scatter_(1, order, positions)
        keep = real & (rank >= n_drop[:, None])
        # Compact: kept steps first (in time order), everything else after.
        compact = torch.sort(torch.where(keep, positions, positions + t), dim=1).indices
        new_mask = positions < (lengths - n_drop)[:, None]
        out = _take_steps(x, compact)
        m = step_mask(new_mask, out)
        assert m is not None
        return out.masked_fill(~m, 0), new_mask
