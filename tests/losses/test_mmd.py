"""The MMD prior loss of MFM (spec/methods.md section 3)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mmfactor.errors import InputError
from mmfactor.losses import MMDPrior, gaussian_kernel


def test_mmd_prior():
    torch.manual_seed(0)
    biased, unbiased = MMDPrior(), MMDPrior(unbiased=True)
    prior = [unbiased(torch.randn(128, 4)).item() for _ in range(50)]
    assert abs(np.mean(prior)) < 3 * np.std(prior) / np.sqrt(50)  # zero in expectation
    v_small, v_large = biased(torch.randn(64, 4)).item(), biased(torch.randn(1024, 4)).item()
    assert v_large < v_small  # the V-statistic's bias shrinks with N
    shifts = [biased(torch.randn(256, 4) + s).item() for s in (0.0, 0.5, 1.0, 2.0)]
    assert shifts == sorted(shifts) and shifts[-1] > 10 * shifts[0]  # exact: an order check


def test_kernel_bandwidth_is_the_latent_size_squared():
    a, b = torch.zeros(1, 4), torch.full((1, 4), 2.0)  # ||a - b||^2 = 16, d^2 = 16
    torch.testing.assert_close(gaussian_kernel(a, b), torch.tensor([[np.exp(-1.0)]]).float())
    with pytest.raises(InputError, match="N >= 2"):
        MMDPrior()(torch.zeros(1, 3))
