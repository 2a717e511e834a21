"""MISA's CMD and soft-orthogonality losses."""

from __future__ import annotations

import pytest
import torch

from mmfactor.errors import InputError
from mmfactor.losses import CMD, SoftOrthogonality


def test_cmd_is_zero_for_equal_moments_and_grows_with_a_shift():
    # MISA applies CMD to sigmoid outputs in (0, 1), where high moments are small
    torch.manual_seed(0)
    x = torch.sigmoid(torch.randn(512, 6))
    # exact: both sides' moments are the same computation on the same tensor: differences are 0
    assert float(CMD()(x, x)) == 0.0
    shifts = [float(CMD()(x, torch.sigmoid(torch.randn(512, 6) + s))) for s in (0.0, 0.5, 1.0, 2.0)]
    assert shifts == sorted(shifts) and shifts[-1] > 5 * shifts[0]  # exact: an order check
    # the first moment alone is the distance between the means
    y = x + torch.tensor([3.0, 4.0, 0, 0, 0, 0])
    assert float(CMD(moments=1)(x, y)) == pytest.approx(5.0, rel=1e-5)
    # higher moments see a change of scale that the mean does not
    spread = x.mean(0) + 2 * (x - x.mean(0))
    assert float(CMD(moments=1)(x, spread)) < 1e-6 < 0.1 < float(CMD()(x, spread))
    with pytest.raises(InputError):
        CMD(moments=0)


def test_soft_orthogonality():
    torch.manual_seed(0)
    s = torch.randn(256, 4)
    loss = SoftOrthogonality()
    assert float(loss(s, s)) > 0.2  # columns aligned with themselves
    # columns orthogonal over the batch after centring: zero
    basis = torch.linalg.qr(torch.randn(256, 8) - 0)[0]
    basis = basis - basis.mean(0)
    a, b = basis[:, :4], basis[:, 4:]
    assert float(loss(a, b)) < 0.05 * float(loss(a, a))
    # scale-free: rows are normalised
    torch.testing.assert_close(loss(3 * s, s), loss(s, s))
