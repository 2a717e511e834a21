"""Sparsemax and MIRD's cross-modal fusion (spec/methods.md section 4)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mmfactor.data.dataset import ModalitySpec
from mmfactor.encoders.fusion import CrossModalFusion, sparsemax
from mmfactor.errors import InputError


def simplex_projection(z: np.ndarray) -> np.ndarray:
    """Euclidean projection onto the simplex by bisection on tau (a different algorithm)."""
    lo, hi = z.min() - 1.0, z.max()
    for _ in range(200):
        tau = (lo + hi) / 2
        if np.maximum(z - tau, 0).sum() > 1:
            lo = tau
        else:
            hi = tau
    return np.maximum(z - (lo + hi) / 2, 0)


def test_sparsemax_is_the_simplex_projection():
    scores = torch.randn(50, 7, dtype=torch.float64) * 2
    out = sparsemax(scores)
    expected = np.stack([simplex_projection(row) for row in scores.numpy()])
    np.testing.assert_allclose(out.numpy(), expected, atol=1e-9)
    assert (out == 0).any(), "sparse: some entries are exactly zero"  # exact: max(z - tau, 0)
    torch.testing.assert_close(out.sum(-1), torch.ones(50, dtype=torch.float64))


def test_sparsemax_mask_and_empty_rows():
    scores = torch.randn(4, 6, dtype=torch.float64)
    mask = torch.ones(4, 6, dtype=torch.bool)
    mask[0, 3:] = False
    mask[1] = False  # nothing admissible: a zero row, not NaN
    out = sparsemax(scores, mask)
    torch.testing.assert_close(out[0, :3], sparsemax(scores[0, :3]))
    assert (out[0, 3:] == 0).all() and (out[1] == 0).all()  # exact: excluded entries are set to 0
    torch.testing.assert_close(out[2:], sparsemax(scores[2:]))


def test_sparsemax_gradient():
    scores = torch.randn(5, 6, dtype=torch.float64, requires_grad=True)
    mask = torch.rand(5, 6) > 0.2
    assert torch.autograd.gradcheck(lambda s: sparsemax(s, mask), (scores,))
    scores.grad = None
    sparsemax(scores, mask).pow(2).sum().backward()
    # exact: excluded entries are outside the support, their gradient is 0 by construction
    assert torch.isfinite(scores.grad).all() and (scores.grad[~mask] == 0).all()


def specs():
    return {
        "text": ModalitySpec("text", "sequence", (6,)),
        "audio": ModalitySpec("audio", "sequence", (3,)),
        "tab": ModalitySpec("tab", "vector", (4,)),
    }


def inputs(b=5, t=7, s=11):
    torch.manual_seed(0)
    x = {"text": torch.randn(b, t, 6), "audio": torch.randn(b, s, 3), "tab": torch.randn(b, 4)}
    mask = {
        "text": torch.arange(t)[None] < torch.tensor([7, 5, 3, 7, 2])[:, None],
        "audio": torch.arange(s)[None] < torch.tensor([11, 4, 9, 1, 6])[:, None],
    }
    present = {m: torch.ones(b, dtype=torch.bool) for m in x}
    return x, mask, present


def test_fusion_gives_one_token_per_anchor_step_and_ignores_padding():
    fusion = CrossModalFusion(specs(), "text", 8).eval()
    x, mask, present = inputs()
    out = fusion(x, mask, present)
    assert out.shape == (5, 7, 8)
    # unaligned: audio frames beyond each sample's length change nothing
    x2 = dict(x, audio=x["audio"].masked_fill(~mask["audio"][..., None], 100.0))
    torch.testing.assert_close(fusion(x2, mask, present), out)
    # but a real audio frame does
    x3 = dict(x, audio=x["audio"].clone())
    x3["audio"][0, 0] += 3.0
    assert not torch.allclose(fusion(x3, mask, present)[0], out[0])


def test_fusion_skips_absent_modalities_and_survives_an_absent_anchor():
    fusion = CrossModalFusion(specs(), "text", 8).eval()
    x, mask, present = inputs()
    absent = dict(present, audio=torch.tensor([False, True, True, True, True]))
    out = fusion(x, mask, absent)
    x2 = dict(x, audio=x["audio"] + 5.0)
    torch.testing.assert_close(fusion(x2, mask, absent)[0], out[0])
    no_anchor = dict(present, text=torch.zeros(5, dtype=torch.bool))
    out = fusion(x, mask, no_anchor)
    assert torch.isfinite(out).all()
    x3 = dict(x, tab=x["tab"] + 1.0)  # the token now comes from the other modalities
    assert not torch.allclose(fusion(x3, mask, no_anchor), out)


def test_fusion_validates_arguments():
    with pytest.raises(InputError, match="anchor 'video'"):
        CrossModalFusion(specs(), "video", 8)
    with pytest.raises(InputError, match="beta"):
        CrossModalFusion(specs(), "text", 8, beta=0.0)
