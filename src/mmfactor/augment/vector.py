"""Vector augmentations, and the :class:`Augmentation` base class all transforms share.

FactorCL-SSL (Liang et al., "Factorized Contrastive Learning", NeurIPS 2023, Sec. 3.3 and
App. D) draws, per sample, one augmentation at random; for vectors these are feature dropout
(10%), small Gaussian noise and identity, and the released synthetic code also swaps the
vector's two halves; tabular data use noise and mixup within the batch.

Every transform works on a whole batch at once (no loop over samples), randomises each sample
independently, draws its random numbers on ``x.device`` and is seeded by a
:class:`torch.Generator`, given at call time or held by the module (call time wins). Under
data parallelism each process cuts its rows' numbers from one draw for the global batch
(:func:`~mmfactor.distributed.rank_share`), so a sample is augmented as one process
would augment it. All have
the signature ``forward(x, mask=None, generator=None) -> (x_aug, mask_aug)``; vector inputs have
``mask=None`` and get ``None`` back. Transforms apply whenever called, in training or
evaluation mode alike: the caller decides when to augment.

Example:
    >>> g = torch.Generator().manual_seed(0)
    >>> x_aug, _ = FeatureDropout(0.1)(torch.randn(256, 100), generator=g)
    >>> x_aug.shape
    torch.Size([256, 100])
"""

from __future__ import annotations

import torch
from torch import nn

from mmfactor.checks import check_float, check_probability
from mmfactor.distributed import rank_share, sum_over_ranks
from mmfactor.errors import InputError

Output = tuple[torch.Tensor, torch.Tensor | None]


class Augmentation(nn.Module):
    """Base class: holds an optional generator and draws random numbers on the input's device.

    Subclasses implement :meth:`augment`; :meth:`forward` resolves the generator.
    """

    def __init__(self, generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.generator = generator

    def forward(
        self,
        x: torch.Tensor,
        mask: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> Output:
        """Augment ``x`` (``(B, ...)``); ``mask`` ``(B, T)`` marks real steps of sequences."""
        if mask is not None and (mask.dim() != 2 or mask.shape != x.shape[:2]):
            raise InputError(
                f"{type(self).__name__}: mask shape {tuple(mask.shape)} does not "
                f"match the input's (B, T) = {tuple(x.shape[:2])}"
            )
        return self.augment(x, mask, generator if generator is not None else self.generator)

    def augment(
        self, x: torch.Tensor, mask: torch.Tensor | None, generator: torch.Generator | None
    ) -> Output:
        raise NotImplementedError


# --- random numbers on the input's device ---------------------------------------------------


def _device(x: torch.Tensor, generator: torch.Generator | None) -> torch.device:
    # A generator only draws on its own device; draw there and move (e.g. a CPU generator
    # seeding CUDA inputs), otherwise draw directly on x.device.
    return generator.device if generator is not None else x.device


def _float(x: torch.Tensor) -> torch.dtype:
    return x.dtype if x.is_floating_point() else torch.get_default_dtype()


def rand(
    shape: tuple[int, ...], x: torch.Tensor, generator: torch.Generator | None
) -> torch.Tensor:
    """Uniform ``[0, 1)`` numbers of ``shape`` on ``x.device`` in ``x``'s float dtype."""
    dev, dtype = _device(x, generator), _float(x)
    r = rank_share(lambda s: torch.rand(s, generator=generator, device=dev, dtype=dtype), shape)
    return r.to(x.device)


def randn(
    shape: tuple[int, ...], x: torch.Tensor, generator: torch.Generator | None
) -> torch.Tensor:
    """Standard normal numbers of ``shape`` on ``x.device`` in ``x``'s float dtype."""
    dev, dtype = _device(x, generator), _float(x)
    r = rank_share(lambda s: torch.randn(s, generator=generator, device=dev, dtype=dtype), shape)
    return r.to(x.device)


def randint(
    high: int, shape: tuple[int, ...], x: torch.Tensor, generator: torch.Generator | None
) -> torch.Tensor:
    """Integers in ``[0, high)`` of ``shape`` on ``x.device``."""
    dev = _device(x, generator)
    r = rank_share(lambda s: torch.randint(high, s, generator=generator, device=dev), shape)
    return r.to(x.device)


def per_sample(flags: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Reshape per-sample values ``(B,)`` to broadcast against ``x`` ``(B, ...)``."""
    return flags.reshape(-1, *([1] * (x.dim() - 1)))


def step_mask(mask: torch.Tensor | None, x: torch.Tensor) -> torch.Tensor | None:
    """Reshape a ``(B, T)`` step mask to broadcast against ``x`` ``(B, T, ...)``."""
    return None if mask is None else mask.reshape(*mask.shape, *([1] * (x.dim() - 2)))


# --- transforms ------------------------------------------------------------------------------


class Identity(Augmentation):
    """Returns its input unchanged (the "no augmentation" choice of :class:`RandomChoice`)."""

    def augment(
        self, x: torch.Tensor, mask: torch.Tensor | None, generator: torch.Generator | None
    ) -> Output:
        return x, mask


class FeatureDropout(Augmentation):
    """Zero each feature of each sample independently with probability ``p``.

    Unlike ``nn.Dropout`` the kept features are not rescaled: an augmentation should change
    which information a view carries, not the scale of what it keeps. On sequences only real
    steps are touched. Shapes: any ``(B, ...)``, unchanged.

    Example:
        >>> x_aug, _ = FeatureDropout(0.1)(torch.ones(4, 10))
    """

    def __init__(self, p: float = 0.1, generator: torch.Generator | None = None) -> None:
        super().__init__(generator)
        self.p = check_probability("FeatureDropout", "p", p)

    def augment(
        self, x: torch.Tensor, mask: torch.Tensor | None, generator: torch.Generator | None
    ) -> Output:
        drop = rand(tuple(x.shape), x, generator) < self.p
        m = step_mask(mask, x)
        if m is not None:
            drop = drop & m
        return x.masked_fill(drop, 0), mask


def feature_scale(x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Per-feature standard deviation over the batch (and real steps), detached.

    Features are the last axis for vectors ``(B, D)`` and sequences ``(B, T, D)`` and the
    channel axis for images ``(B, C, H, W)``. With fewer than two entries to pool the scale is
    1 (the noise level is then absolute). Under data parallelism the batch is the global one
    (sums reduced over processes), so every process must call it.
    """
    x = x.detach().to(_float(x))
    m = step_mask(mask, x)
    weight = torch.ones_like(x) if m is None else m.to(x.dtype).expand_as(x)
    # images: one scale per channel; vectors and sequences: one per feature (last axis)
    dims = (0, 2, 3) if x.dim() == 4 and mask is None else tuple(range(x.dim() - 1))
    n = sum_over_ranks(weight.sum(dims, keepdim=True))
    xs = x.masked_fill(weight == 0, 0)  # padded garbage (even NaN) must not reach the scale
    mean = sum_over_ranks(xs.sum(dims, keepdim=True)) / n.clamp_min(1)
    var = sum_over_ranks(((xs - mean) ** 2 * weight).sum(dims, keepdim=True)) / n.clamp_min(1)
    return torch.where(n >= 2, var.sqrt(), torch.ones_like(var))


class GaussianNoise(Augmentation):
    """Add Gaussian noise, ``x + sigma * scale * N(0, 1)``, on real steps only.

    ``sigma`` is relative to the feature scale: with ``relative=True`` (default) ``scale`` is
    each feature's standard deviation in the batch (over real steps for sequences, per channel
    for images; see :func:`feature_scale`), so ``sigma=0.1`` adds noise at a tenth of each
    feature's spread whatever its units; on standardised features this equals an absolute
    ``sigma``. With ``relative=False`` the noise has standard deviation ``sigma`` everywhere.

    Shapes: any ``(B, ...)``; with a mask ``(B, T)`` padded steps are left untouched.

    Example:
        >>> x_aug, _ = GaussianNoise(0.1)(torch.randn(8, 5))
    """

    def __init__(
        self, sigma: float = 0.1, relative: bool = True, generator: torch.Generator | None = None
    ) -> None:
        super().__init__(generator)
        self.sigma = check_float("GaussianNoise", "sigma", sigma, minimum=0)
        self.relative = bool(relative)

    def augment(
        self, x: torch.Tensor, mask: torch.Tensor | None, generator: torch.Generator | None
    ) -> Output:
        noise = randn(tuple(x.shape), x, generator) * self.sigma
        if self.relative:
            noise = noise * feature_scale(x, mask)
        m = step_mask(mask, x)
        if m is not None:
            noise = noise.masked_fill(~m, 0)
        return x + noise, mask


class SwapHalves(Augmentation):
    """With probability ``p`` per sample, swap the two halves of the last axis:
    ``[a ; b] -> [b ; a]`` (for odd ``D`` the first ``D // 2`` features move to the end).

    The released FactorCL synthetic code uses this swap as an augmentation. Shapes: any
    ``(B, ..., D)``, unchanged; for sequences it acts per step, padded steps untouched.

    Example:
        >>> SwapHalves()(torch.arange(4.0).reshape(1, 4))[0]
        tensor([[2., 3., 0., 1.]])
    """

    def __init__(self, p: float = 1.0, generator: torch.Generator | None = None) -> None:
        super().__init__(generator)
        self.p = check_probability("SwapHalves", "p", p, closed=True)

    def augment(
        self, x: torch.Tensor, mask: torch.Tensor | None, generator: torch.Generator | None
    ) -> Output:
        h = x.shape[-1] // 2
        swapped = torch.cat([x[..., h:], x[..., :h]], dim=-1)
        apply = rand((x.shape[0],), x, generator) < self.p
        cond = per_sample(apply, x)
        m = step_mask(mask, x)
        if m is not None:
            cond = cond & m
        return torch.where(cond, swapped, x), mask


class Mixup(Augmentation):
    """Mix each sample with another, randomly chosen sample of the same batch (tabular data):
    ``x_i' = lam_i * x_i + (1 - lam_i) * x_j``, ``j != i``.

    ``lam`` is drawn per sample uniformly from ``lam_range`` (default ``(0.7, 1.0)``) or, when
    ``alpha`` is given, from ``Beta(alpha, alpha)`` folded to ``max(lam, 1 - lam)``; either way
    the sample itself dominates its view, as a contrastive positive needs. A batch of one is
    returned unchanged. Shapes: ``(B, ...)`` without a mask (vectors, images), unchanged.
    Under data parallelism partners come from this process's rows.

    Example:
        >>> x_aug, _ = Mixup(lam_range=(0.8, 1.0))(torch.randn(16, 10))
    """

    def __init__(
        self,
        alpha: float | None = None,
        lam_range: tuple[float, float] = (0.7, 1.0),
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__(generator)
        if alpha is not None:
            check_float("Mixup", "alpha", alpha, minimum=0, min_open=True)
        lo, hi = (float(v) for v in lam_range)
        if not 0 <= lo <= hi <= 1:
            raise InputError(
                f"Mixup: lam_range must satisfy 0 <= low <= high <= 1, got {lam_range!r}"
            )
        self.alpha, self.lam_range = alpha, (lo, hi)

    def augment(
        self, x: torch.Tensor, mask: torch.Tensor | None, generator: torch.Generator | None
    ) -> Output:
        if mask is not None:
            raise InputError("Mixup mixes whole samples and does not take sequences (masks)")
        b = x.shape[0]
        if b < 2:
            return x, mask
        # i + U{1..B-1} (mod B) is uniform over the other samples, never i itself.
        partner = (torch.arange(b, device=x.device) + 1 + randint(b - 1, (b,), x, generator)) % b
        if self.alpha is None:
            lo, hi = self.lam_range
            lam = lo + (hi - lo) * rand((b,), x, generator)
        else:
            # Beta(a, a) = G1 / (G1 + G2) with G ~ Gamma(a): torch.distributions takes no
            # generator, the gamma sampler does.
            conc = torch.full((2, b), self.alpha, dtype=_float(x), device=_device(x, generator))
            gam = torch._standard_gamma(conc, generator=generator).to(x.device)
            lam = gam[0] / (gam[0] + gam[1]).clamp_min(torch.finfo(gam.dtype).tiny)
            lam = torch.maximum(lam, 1 - lam)
        lam = per_sample(lam, x)
        return lam * x + (1 - lam) * x[partner], mask
