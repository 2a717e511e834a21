"""``Encoder.tokens``: the encoding before pooling, for fusion modules. Image encoders give
their last feature map's pixels, sequence encoders their per-step states (padding-invariant,
with the input's mask), others their output as one token; pooling the tokens gives the
encoder's output back."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from mmfactor.data.dataset import ModalitySpec
from mmfactor.encoders import build_encoder

IMG = ModalitySpec("img", "image", (3, 20, 16))
SEQ = ModalitySpec("audio", "sequence", (6,))
VEC = ModalitySpec("x1", "vector", (12,))

IMAGE_CONFIGS = [
    ("cnn", {"channels": [4, 8]}),
    ("alexnet", {"stem": "small", "width": 0.125, "hidden": 0, "batchnorm": True}),
    ("resnet18", {"stem": "small", "width": 0.125}),
]


@pytest.mark.parametrize(("name", "options"), IMAGE_CONFIGS)
def test_image_tokens_are_the_pixels_of_the_map_the_output_pools(name, options) -> None:
    torch.manual_seed(0)
    enc = build_encoder(name, IMG, 5, **options).eval()
    x = torch.rand(4, *IMG.shape)
    tokens, mask = enc.tokens(x)
    fmap = enc.feature_map(x)
    assert mask is None
    assert tokens.shape == (4, fmap.shape[2] * fmap.shape[3], enc.token_dim)
    assert enc.token_dim == fmap.shape[1]
    row_major = fmap.permute(0, 2, 3, 1).reshape(4, -1, fmap.shape[1])  # pixel (i, j): i * w + j
    torch.testing.assert_close(tokens, row_major)
    # The output is a linear map of the tokens' mean (global average pooling).
    last = enc.head[-1] if name == "alexnet" else enc.out
    torch.testing.assert_close(last(tokens.mean(1)), enc(x), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize(
    ("name", "options"),
    [
        ("gru", {"hidden": 7}),
        ("gru", {"hidden": 5, "bidirectional": True, "layers": 2}),
        ("transformer", {"d_model": 8, "heads": 2, "layers": 1}),
    ],
)
def test_sequence_tokens_are_per_step_states_that_ignore_padding(name, options) -> None:
    torch.manual_seed(0)
    enc = build_encoder(name, SEQ, 5, **options).eval()
    lengths = torch.tensor([6, 3, 1, 5])
    mask = torch.arange(6)[None, :] < lengths[:, None]
    x = torch.randn(4, 6, 6)
    tokens, token_mask = enc.tokens(x, mask)
    assert tokens.shape == (4, 6, enc.token_dim)
    assert torch.equal(token_mask, mask)
    assert not tokens[~mask].any()  # zero at padded steps
    garbage = x.clone()
    garbage[~mask] = float("nan")
    again, _ = enc.tokens(garbage, mask)
    torch.testing.assert_close(again, tokens, atol=1e-6, rtol=0)
    if name == "gru" and not options.get("bidirectional"):
        # A one-way GRU's output reads its state at each row's last real step.
        last = tokens[torch.arange(4), lengths - 1]
        torch.testing.assert_close(enc.out(last), enc(x, mask), atol=1e-6, rtol=0)
    if name == "transformer":
        pooled = tokens.sum(1) / lengths[:, None]
        torch.testing.assert_close(enc.out(pooled), enc(x, mask), atol=1e-6, rtol=0)
    full, no_mask = enc.tokens(x)
    assert full.shape == (4, 6, enc.token_dim) and (no_mask is None or no_mask.all())


def test_other_encoders_give_their_output_as_one_token() -> None:
    enc = build_encoder("mlp", VEC, 5, hidden=[8])
    x = torch.randn(3, 12)
    tokens, mask = enc.tokens(x)
    assert mask is None and enc.token_dim == 5
    torch.testing.assert_close(tokens[:, 0], enc(x))


def test_cnn_split_into_map_and_pooling_keeps_its_state_dict_keys() -> None:
    """The state dict of a cnn keeps its keys (runs saved before still load)."""
    enc = build_encoder("cnn", IMG, 5, channels=[4, 8], batchnorm=True)
    keys = set(enc.state_dict())
    assert {
        "features.0.weight",
        "features.1.running_mean",
        "features.4.weight",
        "out.weight",
    } <= keys
    pooled = F.adaptive_avg_pool2d(enc.feature_map(torch.rand(2, *IMG.shape)), 1)
    assert pooled.shape == (2, 8, 1, 1)
