"""SpecAugment's masking (Park et al., "SpecAugment: A Simple Data Augmentation Method for
Automatic Speech Recognition", Interspeech 2019, Sec. 2) for spectrogram-like sequences
``x`` ``(B, T, F)`` (time-major frames, e.g. :func:`~mmfactor.data.audio.log_mel`), padded at
the end, with ``mask`` ``(B, T)`` bool (``True`` at real steps, a prefix of each row;
``None`` = every step real).

- :class:`TimeMasking`: ``t`` consecutive frames ``[t0, t0 + t)`` are masked, ``t`` uniform
  in ``[0, T_max]`` (the paper's ``T``), at most ``max_fraction`` of the row's length (the
  paper's ``p``), ``t0`` uniform in ``[0, L - t]`` for a row of length ``L``: masks stay
  within each row's real steps.
- :class:`FrequencyMasking`: ``f`` consecutive channels ``[f0, f0 + f)``, ``f`` uniform in
  ``[0, F_max]`` (the paper's ``F``, at most the number of channels), ``f0`` uniform in
  ``[0, F - f]``, on the row's real steps only.

Each masks ``n_masks`` times (``m_T``, ``m_F``; masks may overlap) and applies to each sample
with probability ``p``. Note the naming: the paper's ``p`` (largest share of the utterance a
time mask covers) is ``max_fraction`` here, because ``p`` is, as everywhere in
:mod:`mmfactor.augment`, the probability that a sample is augmented at all.

Masked entries take the row's mean over its real steps and channels (``value="mean"``,
default) or a given number. The paper sets them to zero on spectrograms normalised to zero
mean, that is to the mean; on raw log-mel features (in dB, mostly negative) zero would be a
loud, out-of-range value, so the row's mean is used: it equals the paper's zero on
normalised inputs and stays in range otherwise. Time warping (the paper's third, least
important operation) is not implemented.

As every transform here: vectorised over the batch (widths and starts are drawn per sample as
tensors, masks built by broadcasting ``arange``), drawn on ``x.device`` through
:func:`~mmfactor.augment.vector.rand`, seeded by the generator; shapes, dtype, device and the
step mask are preserved, padded steps are untouched.

Example:
    >>> x, mask = torch.randn(4, 50, 40), torch.arange(50) < torch.tensor([[50], [40], [9], [1]])
    >>> aug = spec_augment(freq_width=8, time_width=10)
    >>> x_aug, mask_aug = aug(x, mask, generator=torch.Generator().manual_seed(0))
    >>> x_aug.shape, bool(torch.equal(x_aug[~mask], x[~mask]))  # padding untouched
    (torch.Size([4, 50, 40]), True)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

from mmfactor.augment.sequence import _check_sequence
from mmfactor.augment.vector import Augmentation, Output, per_sample, rand
from mmfactor.checks import check_float, check_int, check_probability
from mmfactor.errors import InputError

if TYPE_CHECKING:
    from mmfactor.augment import Compose

__all__ = ["FrequencyMasking", "TimeMasking", "spec_augment"]


def _value(owner: str, value: Any) -> str | float:
    if isinstance(value, str):
        if value != "mean":
            raise InputError(f"{owner}: value must be 'mean' or a number, got {value!r}")
        return value
    return check_float(owner, "value", value, hint="'mean' or a number")


def _check_spectrogram(owner: str, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """The ``(B, T)`` bool mask of real steps, after checking ``x`` is a float ``(B, T, F)``."""
    if x.dim() != 3 or not x.is_floating_point():
        raise InputError(
            f"{owner} takes float sequences of frames (B, T, F), got a {x.dtype} tensor of "
            f"shape {tuple(x.shape)}"
        )
    return _check_sequence(owner, x, mask)


def _float32(x: torch.Tensor) -> torch.Tensor:
    """An empty float32 tensor on ``x``'s device: draws in float32 whatever ``x``'s dtype
    (half precision would make widths and starts coarse)."""
    return torch.empty(0, dtype=torch.float32, device=x.device)


def _spans(
    sizes: torch.Tensor,
    bound: torch.Tensor,
    n_masks: int,
    length: int,
    x: torch.Tensor,
    generator: torch.Generator | None,
) -> torch.Tensor:
    """``(B, length)`` bool: the union of ``n_masks`` spans per row, each of a width uniform
    in ``[0, bound]`` and a start uniform among those keeping it inside ``[0, sizes)``.

    ``sizes`` and ``bound`` (``bound <= sizes``) are ``(B,)`` integer tensors.
    """
    b = sizes.shape[0]
    u = rand((b, n_masks, 2), _float32(x), generator)
    # floor(u (n + 1)) is uniform in [0, n]; the clamp guards float32 rounding up to n + 1.
    width = torch.floor(u[..., 0] * (bound[:, None] + 1)).long()
    width = torch.minimum(width, bound[:, None])
    room = sizes[:, None] - width  # starts in [0, size - width]
    start = torch.minimum(torch.floor(u[..., 1] * (room + 1)).long(), room)
    pos = torch.arange(length, device=x.device)
    inside = (pos >= start[..., None]) & (pos < (start + width)[..., None])  # (B, n, length)
    return inside.any(1)


def _fill(x: torch.Tensor, real: torch.Tensor, value: str | float) -> torch.Tensor:
    """Per row, the value masked entries take, ``(B, 1, 1)`` (or a scalar tensor)."""
    if value != "mean":
        return torch.tensor(value, dtype=x.dtype, device=x.device)
    weight = real.to(x.dtype)[..., None]
    total = torch.where(weight > 0, x, torch.zeros_like(x)).sum((1, 2))  # padding may be NaN
    count = (weight.sum((1, 2)) * x.shape[2]).clamp_min(1)
    return (total / count).detach().reshape(-1, 1, 1)


class _Masking(Augmentation):
    axis = ""

    def __init__(
        self,
        max_width: int,
        n_masks: int = 1,
        p: float = 1.0,
        value: str | float = "mean",
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__(generator)
        owner = type(self).__name__
        self.max_width = check_int(owner, "max_width", max_width, 0, hint=self.axis)
        self.n_masks = check_int(owner, "n_masks", n_masks, 0)
        self.p = check_probability(owner, "p", p, closed=True)
        self.value = _value(owner, value)

    def _masked(
        self,
        x: torch.Tensor,
        real: torch.Tensor,
        masked: torch.Tensor,
        mask: torch.Tensor | None,
        generator: torch.Generator | None,
    ) -> Output:
        apply = rand((x.shape[0],), _float32(x), generator) < self.p
        masked = masked & real[..., None] & per_sample(apply, masked)
        return torch.where(masked, _fill(x, real, self.value), x), mask

    def extra_repr(self) -> str:
        return f"max_width={self.max_width}, n_masks={self.n_masks}, p={self.p:g}"


class TimeMasking(_Masking):
    """SpecAugment's time masking: ``n_masks`` spans of consecutive frames per sample, each
    ``t`` frames wide, ``t`` uniform in ``[0, min(max_width, floor(max_fraction * L))]``
    for a row of ``L`` real steps, placed uniformly within them; applied to each sample with
    probability ``p``. Masked frames take ``value`` on every channel (see the module).

    Shapes: ``(B, T, F)`` and mask ``(B, T)``, unchanged; padded steps untouched.

    Example:
        >>> x_aug, _ = TimeMasking(max_width=5, n_masks=2)(torch.randn(3, 20, 8))
    """

    axis = "frames"

    def __init__(
        self,
        max_width: int = 100,
        n_masks: int = 1,
        max_fraction: float = 1.0,
        p: float = 1.0,
        value: str | float = "mean",
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__(max_width, n_masks, p, value, generator)
        self.max_fraction = check_float(
            "TimeMasking", "max_fraction", max_fraction, 0, 1, hint="SpecAugment's p"
        )

    def augment(
        self, x: torch.Tensor, mask: torch.Tensor | None, generator: torch.Generator | None
    ) -> Output:
        real = _check_spectrogram("TimeMasking", x, mask)
        lengths = real.sum(1)
        bound = torch.floor(lengths.float() * self.max_fraction).long()
        bound = torch.minimum(bound, lengths).clamp(max=self.max_width)
        spans = _spans(lengths, bound, self.n_masks, x.shape[1], x, generator)  # (B, T)
        return self._masked(x, real, spans[..., None], mask, generator)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, max_fraction={self.max_fraction:g}"


class FrequencyMasking(_Masking):
    """SpecAugment's frequency masking: ``n_masks`` bands of consecutive channels per sample,
    each ``f`` channels wide, ``f`` uniform in ``[0, min(max_width, F)]``, placed uniformly
    among the ``F`` channels, on the sample's real steps; applied to each sample with
    probability ``p``. Masked entries take ``value`` (see the module).

    Shapes: ``(B, T, F)`` and mask ``(B, T)``, unchanged; padded steps untouched.

    Example:
        >>> x_aug, _ = FrequencyMasking(max_width=4)(torch.randn(3, 20, 8))
    """

    axis = "channels"

    def __init__(
        self,
        max_width: int = 27,
        n_masks: int = 1,
        p: float = 1.0,
        value: str | float = "mean",
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__(max_width, n_masks, p, value, generator)

    def augment(
        self, x: torch.Tensor, mask: torch.Tensor | None, generator: torch.Generator | None
    ) -> Output:
        real = _check_spectrogram("FrequencyMasking", x, mask)
        b, _, f = x.shape
        sizes = torch.full((b,), f, dtype=torch.long, device=x.device)
        bound = sizes.clamp(max=self.max_width)
        bands = _spans(sizes, bound, self.n_masks, f, x, generator)  # (B, F)
        return self._masked(x, real, bands[:, None, :], mask, generator)


def spec_augment(
    freq_width: int = 27,
    freq_masks: int = 2,
    time_width: int = 100,
    time_masks: int = 2,
    max_fraction: float = 1.0,
    p: float = 1.0,
    value: str | float = "mean",
    generator: torch.Generator | None = None,
) -> Compose:
    """Frequency masking then time masking, as SpecAugment applies them. The defaults are
    the paper's LibriSpeech double policy, LD (``F = 27``, ``m_F = 2``, ``T = 100``,
    ``p = 1.0``, ``m_T = 2``, without time warping), set for 80 mel channels and 10 ms
    frames: scale ``freq_width`` with fewer channels (e.g. 13 for 40). ``p`` is the
    probability per sample of each of the two masking steps. With ``value="mean"`` the time
    masks fill with the row's mean after frequency masking.

    Shapes: ``(B, T, F)`` and mask ``(B, T)``, unchanged.
    """
    from mmfactor.augment import Compose  # the package imports this module: import late

    return Compose(
        [
            FrequencyMasking(freq_width, freq_masks, p=p, value=value),
            TimeMasking(time_width, time_masks, max_fraction=max_fraction, p=p, value=value),
        ],
        generator=generator,
    )
