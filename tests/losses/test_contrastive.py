import math

import pytest
import torch
import torch.nn.functional as F

from mmfactor.errors import InputError
from mmfactor.losses import InfoNCELoss, SupConLoss


def naive_infonce(a, b, tau):
    a, b = F.normalize(a, dim=1), F.normalize(b, dim=1)
    total = 0.0
    n = a.shape[0]
    for i in range(n):  # explicit per-anchor definition, for reference only
        sims = torch.stack([a[i] @ b[j] / tau for j in range(n)])
        total += -(sims[i] - torch.logsumexp(sims, 0))
        sims_t = torch.stack([b[i] @ a[j] / tau for j in range(n)])
        total += -(sims_t[i] - torch.logsumexp(sims_t, 0))
    return total / (2 * n)


def test_infonce_matches_definition():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(6, 3, generator=g), torch.randn(6, 3, generator=g)
    assert torch.allclose(InfoNCELoss(0.5)(a, b), naive_infonce(a, b, 0.5), atol=1e-5)


def test_infonce_bound_and_alignment():
    g = torch.Generator().manual_seed(1)
    a = torch.randn(64, 8, generator=g)
    aligned = InfoNCELoss(0.05)(a, a)
    random = InfoNCELoss(0.05)(a, torch.randn(64, 8, generator=g))
    assert aligned < random
    assert random > 0.5 * math.log(64)  # unrelated views: near log B


def naive_supcon(views, labels, tau):
    b, v, _ = views.shape
    f = F.normalize(views, dim=2).reshape(b * v, -1)
    lab = labels.repeat_interleave(v)
    losses = []
    for i in range(b * v):
        others = [j for j in range(b * v) if j != i]
        denom = torch.logsumexp(torch.stack([f[i] @ f[j] / tau for j in others]), 0)
        pos = [j for j in others if lab[j] == lab[i]]
        losses.append(-torch.stack([f[i] @ f[p] / tau - denom for p in pos]).mean())
    return torch.stack(losses).mean()


def test_supcon_matches_definition():
    g = torch.Generator().manual_seed(0)
    views = torch.randn(6, 2, 4, generator=g)
    labels = torch.tensor([0, 1, 0, 2, 1, 0])
    assert torch.allclose(
        SupConLoss(0.3)(views, labels), naive_supcon(views, labels, 0.3), atol=1e-5
    )


def test_temperature_validated():
    with pytest.raises(InputError, match="temperature"):
        InfoNCELoss(0.0)
    with pytest.raises(InputError, match="temperature"):
        SupConLoss(-1)
