"""Conditional estimators I(A; B | C) on a case with a closed form: c uniform on {0, 1, 2};
given c, a and b are standard Gaussians in R^2 with per-dimension correlation rho_c. The
marginals of a and b do not depend on c, so I(A; B | C) = mean_c -log(1 - rho_c^2) (d = 2)
and I(A, C; B, C) = log 3 + I(A; B | C), which is what conditioning by concatenation targets
with batch-wide negatives."""

import math

import numpy as np
import pytest
import torch

from mmfactor.errors import InputError
from mmfactor.estimators import InfoNCE, build, estimate_mi

RHOS = (0.0, 0.6, 0.9)
TRUTH = float(np.mean([-math.log(1 - r**2) for r in RHOS]))  # 0.702 nats
TOL = 0.1


def data(n: int = 4000, seed: int = 0):
    rng = np.random.default_rng(seed)
    c = rng.integers(0, 3, size=n)
    rho = np.asarray(RHOS)[c][:, None]
    a = rng.normal(size=(n, 2))
    b = rho * a + np.sqrt(1 - rho**2) * rng.normal(size=(n, 2))
    return a, b, c


KW = dict(steps=300, batch_size=64, hidden=(32,), seed=0)


def test_conditional_negatives_lower_bound():
    a, b, c = data()
    both = estimate_mi(a, b, "infonce", c=c, condition="both", **KW)
    assert 0.5 * TRUTH <= both <= TRUTH + TOL
    negatives = estimate_mi(a, b, "infonce", c=c, condition="negatives", **KW)
    assert negatives <= TRUTH + TOL
    assert estimate_mi(a, b, "nwj", c=c, condition="both", **KW) <= TRUTH + TOL


def test_concat_targets_joint_information():
    a, b, c = data()
    concat = estimate_mi(a, b, "infonce", c=c, condition="concat", **KW)
    assert TRUTH + 0.3 <= concat <= TRUTH + math.log(3) + TOL  # above I(A; B | C)


def test_conditional_club_above_truth():
    a, b, c = data()
    assert estimate_mi(a, b, "club", c=c, condition="both", **KW) >= TRUTH - TOL
    # q(b | a, c) with batch negatives bounds I(B; A, C) >= I(A; B | C).
    assert estimate_mi(a, b, "club", c=c, condition="concat", **KW) >= TRUTH - TOL


def test_masked_infonce_equals_per_class_definition():
    torch.manual_seed(0)
    est = InfoNCE(2, 2, hidden=(8,), condition="negatives")
    a, b = torch.randn(10, 2), torch.randn(10, 2)
    c = torch.tensor([0, 1, 0, 1, 1, 2, 0, 1, 0, 0])
    s = est.critic(a, b)
    terms = []
    for i in range(10):  # explicit per-anchor definition, for reference only
        js = [j for j in range(10) if c[j] == c[i]]
        if len(js) > 1:
            terms.append(s[i, i] - torch.logsumexp(s[i, js], 0) + math.log(len(js)))
    assert torch.allclose(est.mi(a, b, c), torch.stack(terms).mean(), atol=1e-5)


@pytest.mark.parametrize("name", ["infonce", "nwj", "mine", "club", "l1out", "nce-club"])
def test_singleton_classes_are_left_out(name):
    torch.manual_seed(0)
    est = build(name, 2, 2, hidden=(8,), condition="negatives")
    a = torch.randn(7, 2, requires_grad=True)
    b = torch.randn(7, 2)
    c = torch.tensor([0, 0, 1, 1, 1, 2, 0])  # class 2 has one sample
    keep = c != 2
    assert torch.allclose(est.mi(a, b, c), est.mi(a[keep], b[keep], c[keep]), atol=1e-5)
    # All singletons: nothing to contrast; 0 with finite (zero) gradients.
    value = est.mi(a[:3], b[:3], torch.tensor([0, 1, 2]))
    value.backward()
    assert value == 0 and torch.isfinite(a.grad).all()  # exact: every row's weight is 0


def test_concat_accepts_labels_or_features():
    torch.manual_seed(0)
    est = build("infonce", 2, 2, hidden=(8,), c_dim=3)
    a, b = torch.randn(6, 2), torch.randn(6, 2)
    labels = torch.tensor([0, 1, 2, 0, 1, 2])
    one_hot = torch.nn.functional.one_hot(labels, 3).float()
    assert torch.allclose(est.mi(a, b, labels), est.mi(a, b, one_hot))
    with pytest.raises(InputError, match="pass c"):
        est.mi(a, b)
    with pytest.raises(InputError):
        est.mi(a, b, torch.randn(6, 2))
    with pytest.raises(InputError):
        build("infonce", 2, 2, c_dim=3, condition="negatives")
    with pytest.raises(InputError):
        build("club", 2, 2, condition="both")
    assert build("club", 2, 2, c_dim=3, condition="both").condition == "both"
