"""Maximum mean discrepancy to a standard normal prior (MFM, Tsai et al., ICLR 2019, Sec. 3.2).

MFM replaces the KL term of a VAE by ``MMD(q(z), N(0, I))`` on each latent (an MMD-VAE, as in
InfoVAE). The kernel is Gaussian with a bandwidth tied to the latent size ``d``::

    k(a, b) = exp(-||a - b||^2 / d^2)

(the released code's ``mean((a - b)^2) / d``), and the statistic is the biased
V-statistic ``mean k(z, z') + mean k(p, p') - 2 mean k(z, p)`` over all pairs, including
``i = j``, with a fresh prior sample ``p`` of the batch's size at every call.
"""

from __future__ import annotations

import torch
from torch import nn

from mmfactor.errors import InputError


def gaussian_kernel(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``exp(-||a_i - b_j||^2 / d^2)`` for ``a`` ``(N, d)`` and ``b`` ``(M, d)`` -> ``(N, M)``."""
    d = a.shape[1]
    return torch.exp(-torch.cdist(a, b).pow(2) / float(d * d))


class MMDPrior(nn.Module):
    """``MMD^2`` between a batch of codes and the standard normal prior.

    Args:
        unbiased: use the U-statistic (``i != j`` within each sample), which is zero in
            expectation when the codes follow the prior; the default, the V-statistic, is
            MFM's and is positive by about ``2 (1 - E k) / N`` even then.

    Shapes: ``z`` ``(N, d)`` -> a 0-d tensor.

    Example:
        >>> torch.manual_seed(0) is not None
        True
        >>> mmd = MMDPrior()
        >>> bool(mmd(torch.randn(256, 8) + 3) > mmd(torch.randn(256, 8)))
        True
    """

    def __init__(self, unbiased: bool = False) -> None:
        super().__init__()
        self.unbiased = bool(unbiased)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if z.dim() != 2 or z.shape[0] < 2:
            raise InputError(f"MMDPrior needs codes of shape (N >= 2, d), got {tuple(z.shape)}")
        prior = torch.randn_like(z)
        k_zz, k_pp, k_zp = (
            gaussian_kernel(z, z),
            gaussian_kernel(prior, prior),
            gaussian_kernel(z, prior),
        )
        if not self.unbiased:
            return k_zz.mean() + k_pp.mean() - 2 * k_zp.mean()
        n = z.shape[0]
        off = 1.0 - torch.eye(n, dtype=z.dtype, device=z.device)
        within = ((k_zz + k_pp) * off).sum() / (n * (n - 1))
        return within - 2 * k_zp.mean()
