"""Upper bounds: closed forms equal their naive B x B (x d) definitions, and on correlated
Gaussians CLUB with its (well-specified) Gaussian q stays above the truth."""

import math

import pytest
import torch

from mmfactor.estimators import (
    CLUB,
    NCECLUB,
    CLUBSample,
    L1Out,
    build,
    correlated_gaussians,
    estimate_mi,
)

TOL = 0.1  # nats below the truth an estimate may fall by noise / unfinished fitting
CASES = [(5, 0.8), (1, 0.5), (2, 0.9), (3, 0.0)]


def log_q_matrix(est, a, b):
    """log q(b_j | a_i) for every pair, via an explicit (B, B, d) tensor."""
    mu, logvar = est.q(a)
    diff = b[None, :, :] - mu[:, None, :]
    return -0.5 * (diff.square() / logvar.exp()[:, None, :] + logvar[:, None, :]).sum(-1)


def test_club_equals_naive_all_pairs():
    torch.manual_seed(0)
    est = CLUB(3, 2, hidden=(8,))
    a, b = torch.randn(12, 3), torch.randn(12, 2) * 3 + 1
    lq = log_q_matrix(est, a, b)
    naive = (lq.diagonal() - lq.mean(1)).mean()
    assert torch.allclose(est.mi(a, b), naive, atol=1e-4)


def test_club_negatives_equals_naive_masked():
    torch.manual_seed(0)
    est = CLUB(3, 2, hidden=(8,), condition="negatives")
    a, b = torch.randn(10, 3), torch.randn(10, 2)
    c = torch.tensor([0, 1, 0, 1, 1, 2, 0, 1, 0, 3])  # classes 2 and 3 are singletons
    lq = log_q_matrix(est, a, b)
    same = c[:, None] == c[None, :]
    terms = lq.diagonal() - (lq * same).sum(1) / same.sum(1)
    keep = same.sum(1) > 1
    assert torch.allclose(est.mi(a, b, c), terms[keep].mean(), atol=1e-5)


def test_l1out_equals_naive():
    torch.manual_seed(0)
    est = L1Out(3, 2, hidden=(8,))
    a, b = torch.randn(9, 3), torch.randn(9, 2)
    lq = log_q_matrix(est, a, b)  # rows: conditioning a_i, columns: b_j
    off = ~torch.eye(9, dtype=torch.bool)
    neg = torch.logsumexp(lq.T.masked_fill(~off, -math.inf), 1) - math.log(8)
    assert torch.allclose(est.mi(a, b), (lq.diagonal() - neg).mean(), atol=1e-4)


def test_club_sample_and_nce_club_definitions():
    torch.manual_seed(0)
    a, b = torch.randn(9, 3), torch.randn(9, 2)
    est = CLUBSample(3, 2, hidden=(8,))
    torch.manual_seed(5)
    value = est.mi(a, b)
    torch.manual_seed(5)
    k = torch.randint(9, (9,))
    lq = log_q_matrix(est, a, b)
    assert torch.allclose(value, (lq.diagonal() - lq[torch.arange(9), k]).mean(), atol=1e-5)

    nce = NCECLUB(3, 2, hidden=(8,))
    s = nce.critic(a, b)
    assert torch.allclose(nce.mi(a, b), s.diagonal().mean() - s.mean(), atol=1e-5)
    infonce = (s.diagonal() - torch.logsumexp(s, 1)).mean() + math.log(9)
    assert torch.allclose(nce.learning_loss(a, b), -infonce, atol=1e-5)


def test_learning_loss_is_gaussian_nll():
    torch.manual_seed(0)
    est = CLUB(2, 2, hidden=(4,))
    a, b = torch.randn(6, 2), torch.randn(6, 2)
    mu, logvar = est.q(a)
    dist = torch.distributions.Normal(mu, (0.5 * logvar).exp())
    assert torch.allclose(est.learning_loss(a, b), -dist.log_prob(b).sum(1).mean(), atol=1e-5)
    assert logvar.abs().max() < 5.0  # squashed log-variance


@pytest.mark.parametrize("d,rho", CASES)
def test_club_stays_above_truth(d, rho):
    a, b, true_mi = correlated_gaussians(4000, d, rho)
    kw = dict(steps=300, batch_size=64, hidden=(32,), seed=0)
    club = estimate_mi(a, b, "club", **kw)
    assert club >= true_mi - 0.02  # full form: fluctuation only
    assert estimate_mi(a, b, "club-s", **kw) >= true_mi - TOL
    assert estimate_mi(a, b, "l1out", **kw) >= true_mi - TOL
    if rho > 0:  # but not absurdly: CLUB with the true q is d rho^2 / (1 - rho^2)
        assert club <= 1.2 * d * rho**2 / (1 - rho**2) + TOL


def test_nce_club_above_infonce():
    a, b, true_mi = correlated_gaussians(3000, 2, 0.8)
    kw = dict(steps=300, batch_size=64, hidden=(32,), seed=0)
    assert estimate_mi(a, b, "nce-club", **kw) >= estimate_mi(a, b, "infonce", **kw)


def test_upper_kind():
    assert {build(n, 2, 2, hidden=(4,)).kind for n in ["club", "club-s", "l1out", "nce-club"]} == {
        "upper"
    }
