"""Critics: score matrices agree with aligned-pair scores, and the concat critic equals a
naive tiled MLP([a; b]) without ever materialising the tiled input."""

import pytest
import torch
import torch.nn.functional as F
from torch.utils._python_dispatch import TorchDispatchMode

from mmfactor.errors import InputError
from mmfactor.estimators import (
    BilinearCritic,
    ConcatCritic,
    SeparableCritic,
    build_critic,
)


def tiled(critic: ConcatCritic, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Reference: build every [a_i; b_j] row and run the whole MLP on it."""
    n_a, n_b = a.shape[0], b.shape[0]
    rows = torch.cat([a.repeat_interleave(n_b, 0), b.repeat(n_a, 1)], 1)
    weight, bias = critic.first_layer()
    return critic.rest(F.linear(rows, weight, bias)).reshape(n_a, n_b)


def test_concat_equals_tiled_values_and_gradients():
    torch.manual_seed(0)
    critic = ConcatCritic(3, 4, hidden=(8, 5))
    a = torch.randn(5, 3, requires_grad=True)
    b = torch.randn(7, 4, requires_grad=True)
    fast, slow = critic(a, b), tiled(critic, a, b)
    assert fast.shape == (5, 7)
    assert torch.allclose(fast, slow, atol=1e-6)
    g = torch.randn(5, 7)
    grads_fast = torch.autograd.grad(fast, [a, b, *critic.parameters()], g)
    grads_slow = torch.autograd.grad(slow, [a, b, *critic.parameters()], g)
    for x, y in zip(grads_fast, grads_slow, strict=True):
        assert torch.allclose(x, y, atol=1e-5)


class ShapeRecorder(TorchDispatchMode):
    def __init__(self):
        super().__init__()
        self.shapes = set()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in out if isinstance(out, tuple | list) else (out,):
            if isinstance(t, torch.Tensor):
                self.shapes.add(tuple(t.shape))
        return out


def test_concat_never_builds_tiled_input():
    critic = ConcatCritic(6, 9, hidden=(4,))
    a = torch.randn(10, 6, requires_grad=True)
    b = torch.randn(10, 9)
    with ShapeRecorder() as rec:
        critic(a, b).sum().backward()
    width = 6 + 9
    assert (10, 10, 4) in rec.shapes  # the broadcast first-layer output
    assert not any(len(s) >= 2 and s[-1] == width and s[0] * s[1] >= 100 for s in rec.shapes)


@pytest.mark.parametrize(
    "critic",
    [
        ConcatCritic(3, 4, hidden=(8,)),
        SeparableCritic(3, 4, hidden=(8,), embed_dim=6, temperature=0.5),
        BilinearCritic(3, 4),
    ],
    ids=["concat", "separable", "bilinear"],
)
def test_positive_is_the_diagonal(critic):
    a, b = torch.randn(6, 3), torch.randn(6, 4)
    scores = critic(a, b)
    assert scores.shape == (6, 6)
    assert torch.allclose(critic.positive(a, b), scores.diagonal(), atol=1e-5)
    assert critic(a[:2], b).shape == (2, 6)


def test_build_critic_and_validation():
    assert isinstance(build_critic("bilinear", 2, 3), BilinearCritic)
    assert isinstance(build_critic("separable", 2, 3, (4,), embed_dim=3), SeparableCritic)
    with pytest.raises(InputError, match="unknown critic"):
        build_critic("mlp", 2, 3)
    with pytest.raises(InputError, match="unknown option"):
        build_critic("concat", 2, 3, embed_dim=3)
    with pytest.raises(InputError):
        ConcatCritic(2, 3, hidden=())
    with pytest.raises(InputError):
        ConcatCritic(0, 3)
    with pytest.raises(InputError):
        SeparableCritic(2, 3, temperature=0.0)
    with pytest.raises(InputError):
        build_critic("concat", 2, 3, hidden=(4, 0))


def test_concat_in_row_blocks_equals_one_block(monkeypatch):
    """On CPU the pair activations are computed in blocks of anchor rows (memory reuse);
    values and gradients are those of the single-block computation."""
    import mmfactor.estimators.critics as critics

    torch.manual_seed(0)
    critic = ConcatCritic(3, 4, hidden=(8, 5))
    a = torch.randn(11, 3, requires_grad=True)
    b = torch.randn(6, 4, requires_grad=True)
    whole = critic(a, b)
    monkeypatch.setattr(critics, "CHUNK_BYTES", 4 * 6 * 8 * 4)  # 4 rows per block
    assert critic.chunk_rows(6, a) == 4
    blocks = critic(a, b)
    assert torch.allclose(whole, blocks, atol=1e-6)
    g = torch.randn(11, 6)
    params = [a, b, *critic.parameters()]
    for x, y in zip(
        torch.autograd.grad(whole, params, g), torch.autograd.grad(blocks, params, g), strict=True
    ):
        assert torch.allclose(x, y, atol=1e-6)
