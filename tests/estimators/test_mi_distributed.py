"""Data parallelism: two gloo processes, each holding half the batch, must give (as the mean
of their values) the estimate of one process holding the whole batch, and input gradients
that data-parallel averaging turns into the full-batch ones."""

import torch
from tests.gloo import half, two_processes

from mmfactor.estimators import build

# (name, options, conditional?): CLUB-S is left out (a random negative per rank).
CASES = [
    ("infonce", {}, False),
    ("club", {}, False),
    ("l1out", {}, False),
    ("nwj", {}, False),
    ("mine", {}, False),
    ("smile", {}, False),
    ("nce-club", {}, False),
    ("infonce", {"condition": "negatives"}, True),
    ("club", {"condition": "both", "c_dim": 3}, True),
    ("mine", {"condition": "negatives"}, True),
]


def _run(name, opts, conditional, a, b, c):
    torch.manual_seed(0)  # identical estimator weights in every process
    est = build(name, a.shape[1], b.shape[1], hidden=(8,), **opts)
    a = a.clone().requires_grad_(True)
    b = b.clone().requires_grad_(True)
    value = est.mi(a, b, c if conditional else None)
    value.backward()
    return value.detach(), a.grad, b.grad


def _worker(rank: int, a, b, c):
    rows = half(rank, a.shape[0])
    return [_run(*case, a[rows], b[rows], c[rows]) for case in CASES]


def test_two_processes_equal_one():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(10, 3, generator=g), torch.randn(10, 2, generator=g)
    c = torch.tensor([0, 1, 1, 0, 2, 0, 1, 1, 0, 0])  # class 2: one sample (left out)
    out = two_processes(_worker, a, b, c)
    for k, case in enumerate(CASES):
        value, grad_a, grad_b = _run(*case, a, b, c)
        (v0, a0, b0), (v1, a1, b1) = out[0][k], out[1][k]
        assert torch.allclose((v0 + v1) / 2, value, atol=1e-5), case
        assert torch.allclose(torch.cat([a0, a1]) / 2, grad_a, atol=1e-5), case
        assert torch.allclose(torch.cat([b0, b1]) / 2, grad_b, atol=1e-5), case
