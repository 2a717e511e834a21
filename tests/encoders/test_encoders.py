"""Encoders: shapes, padding invariance, gradients, option validation."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

import mmfactor.encoders as encoders_pkg
from mmfactor.data.dataset import ModalitySpec
from mmfactor.encoders import available_encoders, build_encoder, register_encoder
from mmfactor.encoders.mlp import MLPEncoder
from mmfactor.errors import InputError

VEC = ModalitySpec("x1", "vector", (12,))
SEQ = ModalitySpec("audio", "sequence", (6,))
IMG = ModalitySpec("img", "image", (3, 9, 7))
B, T = 5, 8

SEQ_CONFIGS = [
    ("gru", {}),
    ("gru", {"hidden": 16, "layers": 2, "bidirectional": True, "dropout": 0.1}),
    ("transformer", {"d_model": 20, "heads": 4, "layers": 2}),
    ("transformer", {"d_model": 10, "heads": 2, "layers": 1, "positional": "learned"}),
]


def _seq_batch(lengths: list[int], t: int = T, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(len(lengths), t, SEQ.shape[0], generator=g)
    mask = torch.arange(t)[None, :] < torch.tensor(lengths)[:, None]
    return x.masked_fill(~mask[..., None], 0.0), mask


def test_registry_lists_the_encoders() -> None:
    assert {"mlp", "gru", "transformer", "cnn", "identity", "linear"} <= set(available_encoders())


@pytest.mark.parametrize(
    ("name", "spec", "options", "shape"),
    [
        ("mlp", VEC, {}, (B, 12)),
        ("mlp", VEC, {"hidden": [512, 512, 512]}, (B, 12)),  # FactorCL synthetic
        (
            "mlp",
            VEC,
            {"hidden": 7, "activation": "gelu", "dropout": 0.2, "batchnorm": True},
            (B, 12),
        ),
        ("mlp", VEC, {"hidden": [], "activation": "tanh"}, (B, 12)),
        ("mlp", IMG, {}, (B, 3, 9, 7)),
        ("identity", VEC, {}, (B, 12)),
        ("linear", VEC, {}, (B, 12)),
        ("cnn", IMG, {}, (B, 3, 9, 7)),
        ("cnn", IMG, {"channels": [4, 8, 8], "batchnorm": True, "kernel_size": 5}, (B, 3, 9, 7)),
    ],
)
def test_output_shapes_non_sequence(
    name: str, spec: ModalitySpec, options: dict, shape: tuple[int, ...]
) -> None:
    for out_dim in (12, 4):
        enc = build_encoder(name, spec, out_dim, **options)
        out = enc(torch.randn(*shape))
        assert out.shape == (B, out_dim)
        assert enc.out_dim == out_dim


def test_identity_passes_features_through_when_widths_match() -> None:
    x = torch.randn(B, 12)
    assert torch.equal(build_encoder("identity", VEC, 12)(x), x)  # exact: a pass-through
    assert not list(build_encoder("identity", VEC, 12).parameters())
    assert len(list(build_encoder("identity", VEC, 3).parameters())) == 2  # a Linear


def test_mlp_layout() -> None:
    enc = build_encoder("mlp", ModalitySpec("x", "vector", (100,)), 128, hidden=[512, 512, 512])
    linears = [m for m in enc.modules() if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [
        (100, 512),
        (512, 512),
        (512, 512),
        (512, 128),
    ]
    assert isinstance(enc, MLPEncoder)


def test_cnn_handles_tiny_images() -> None:
    enc = build_encoder("cnn", ModalitySpec("i", "image", (1, 1, 1)), 3, channels=[2, 2, 2])
    assert enc(torch.randn(2, 1, 1, 1)).shape == (2, 3)


def test_inputs_of_another_dtype_are_cast() -> None:
    enc = build_encoder("mlp", VEC, 4, hidden=8)
    assert enc(torch.randn(B, 12, dtype=torch.float64)).dtype == torch.float32
    cnn = build_encoder("cnn", IMG, 4, channels=[4])
    assert cnn(torch.randint(0, 255, (B, 3, 9, 7), dtype=torch.uint8)).shape == (B, 4)


@pytest.mark.parametrize(("name", "options"), SEQ_CONFIGS)
def test_sequence_shapes_and_mask_none(name: str, options: dict) -> None:
    torch.manual_seed(0)
    enc = build_encoder(name, SEQ, 9, **options).eval()
    x, mask = _seq_batch([T] * 3)
    out = enc(x, mask)
    assert out.shape == (3, 9)
    torch.testing.assert_close(enc(x), out, atol=1e-5, rtol=0)  # None = all steps real


@pytest.mark.parametrize(("name", "options"), SEQ_CONFIGS)
def test_sequence_padding_invariance(name: str, options: dict) -> None:
    torch.manual_seed(0)
    enc = build_encoder(name, SEQ, 9, **options).eval()
    lengths = [8, 5, 1, 3, 8]
    x, mask = _seq_batch(lengths)
    ref = enc(x, mask)

    garbage = x.clone()
    garbage[~mask] = 1e3 * torch.randn(int((~mask).sum()), SEQ.shape[0])
    torch.testing.assert_close(enc(garbage, mask), ref, atol=1e-5, rtol=0)
    garbage[~mask] = float("nan")
    torch.testing.assert_close(enc(garbage, mask), ref, atol=1e-5, rtol=0)

    extra = torch.cat([garbage, torch.randn(len(lengths), 4, SEQ.shape[0])], dim=1)
    extra_mask = torch.cat([mask, torch.zeros(len(lengths), 4, dtype=torch.bool)], dim=1)
    torch.testing.assert_close(enc(extra, extra_mask), ref, atol=1e-5, rtol=0)

    # Each sample alone, trimmed to its own length, gives the same output as in the batch.
    for i, n in enumerate(lengths):
        alone = enc(x[i : i + 1, :n], mask[i : i + 1, :n])
        torch.testing.assert_close(alone, ref[i : i + 1], atol=1e-5, rtol=0)


@pytest.mark.parametrize(("name", "options"), SEQ_CONFIGS)
def test_all_length_one_and_empty_rows(name: str, options: dict) -> None:
    enc = build_encoder(name, SEQ, 9, **options).eval()
    x, mask = _seq_batch([1, 1, 1], t=1)
    assert enc(x, mask).shape == (3, 9)
    x, mask = _seq_batch([1, 1, 1], t=4)
    assert torch.isfinite(enc(x, mask)).all()
    # A missing modality may arrive with length 0: the output must stay finite.
    x, mask = _seq_batch([0, 3], t=4)
    assert torch.isfinite(enc(x, mask)).all()


@pytest.mark.parametrize(
    ("name", "spec", "options"),
    [
        ("mlp", VEC, {"hidden": 8}),
        ("identity", VEC, {}),
        ("linear", VEC, {}),
        ("cnn", IMG, {"channels": [4]}),
    ]
    + [(n, SEQ, o) for n, o in SEQ_CONFIGS],
)
def test_gradients_reach_every_parameter(name: str, spec: ModalitySpec, options: dict) -> None:
    torch.manual_seed(0)
    enc = build_encoder(name, spec, 3, **options)
    if spec.kind == "sequence":
        x, mask = _seq_batch([8, 4, 2])
    else:
        x, mask = torch.randn(3, *spec.shape), None
    x.requires_grad_(True)
    enc(x, mask).pow(2).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    params = [(n, p) for n, p in enc.named_parameters()]
    for n, p in params:
        assert p.grad is not None, n
    if spec.kind == "sequence":  # padded inputs receive no gradient
        assert x.grad[~mask].abs().max() == 0  # exact: padding is masked out (times 0)


def test_unknown_name_lists_the_encoders() -> None:
    with pytest.raises(InputError, match="'lstm'.*available: alexnet, cnn, gru"):
        build_encoder("lstm", SEQ, 4)


@pytest.mark.parametrize(
    ("name", "spec", "options", "fragment"),
    [
        ("mlp", VEC, {"hiden": 3}, "unknown option 'hiden'"),
        ("mlp", VEC, {"hidden": [0]}, "encoder 'mlp': hidden must be an integer >= 1, got 0"),
        ("mlp", VEC, {"hidden": "big"}, "hidden must be an integer or a list of integers"),
        ("mlp", VEC, {"activation": "swish"}, "activation must be one of relu, gelu, tanh"),
        ("mlp", VEC, {"dropout": 1.5}, r"dropout must be a number in \[0, 1\), got 1.5"),
        ("mlp", VEC, {"batchnorm": "yes"}, "batchnorm must be true or false"),
        ("gru", SEQ, {"hidden": [512, 512]}, "encoder 'gru': hidden must be an integer"),
        ("gru", SEQ, {"layers": 0}, "layers must be an integer >= 1"),
        ("gru", SEQ, {"heads": 2}, "unknown option 'heads'"),
        ("transformer", SEQ, {"d_model": 42, "heads": 5}, r"d_model \(42\) must be divisible"),
        ("transformer", SEQ, {"positional": "rotary"}, "positional must be one of"),
        ("transformer", SEQ, {"max_len": 0}, "max_len must be an integer >= 1"),
        ("cnn", IMG, {"channels": []}, "encoder 'cnn': channels needs at least one"),
        ("cnn", IMG, {"kernel_size": 4}, "kernel_size must be odd, got 4"),
        ("identity", VEC, {"hidden": 3}, "unknown option 'hidden'"),
    ],
)
def test_bad_options_raise_input_error(
    name: str, spec: ModalitySpec, options: dict, fragment: str
) -> None:
    with pytest.raises(InputError, match=fragment):
        build_encoder(name, spec, 4, **options)


@pytest.mark.parametrize(
    ("name", "spec"),
    [
        ("gru", VEC),
        ("transformer", IMG),
        ("cnn", VEC),
        ("cnn", SEQ),
        ("mlp", SEQ),
        ("identity", SEQ),
    ],
)
def test_incompatible_kind_raises(name: str, spec: ModalitySpec) -> None:
    with pytest.raises(InputError, match=f"'{name}'.*{spec.kind}"):
        build_encoder(name, spec, 4)


def test_bad_out_dim_raises() -> None:
    with pytest.raises(InputError, match="out_dim"):
        build_encoder("mlp", VEC, 0)


def test_scoped_options() -> None:
    options = {
        "hidden": [16, 16],
        "gru": {"hidden": 30},
        "image": {"channels": [4]},
        "x1": {"activation": "tanh"},
    }
    mlp = build_encoder("mlp", VEC, 4, **options)
    assert isinstance(mlp.net[-2], nn.Tanh)
    gru = build_encoder("gru", SEQ, 4, **options)
    assert gru.gru.hidden_size == 30
    with pytest.raises(InputError, match="unknown option 'hidden'"):
        build_encoder("cnn", IMG, 4, **options)  # unscoped options still apply to every encoder


def test_learned_positions_reject_long_sequences() -> None:
    enc = build_encoder(
        "transformer", SEQ, 4, d_model=10, heads=2, layers=1, max_len=4, positional="learned"
    )
    with pytest.raises(InputError, match="max_len"):
        enc(*_seq_batch([5], t=5))
    sin = build_encoder("transformer", SEQ, 4, d_model=10, heads=2, layers=1, max_len=4).eval()
    x, mask = _seq_batch([3, 6], t=6)
    torch.testing.assert_close(sin(x, mask)[:1], sin(x[:1, :3], mask[:1, :3]), atol=1e-5, rtol=0)


def test_register_encoder_and_deepcopy() -> None:
    try:

        @register_encoder("test-small-mlp")
        class SmallMLP(MLPEncoder):
            pass

        assert "test-small-mlp" in available_encoders()
        enc = build_encoder("test-small-mlp", VEC, 2, hidden=3)
        assert copy.deepcopy(enc)(torch.zeros(1, 12)).shape == (1, 2)
        with pytest.raises(InputError, match="'test-small-mlp'"):
            build_encoder("test-small-mlp", SEQ, 2)
        with pytest.raises(ValueError, match="already registered"):
            register_encoder("mlp")(SmallMLP)
    finally:
        encoders_pkg._REGISTRY.pop("test-small-mlp", None)
    assert "test-small-mlp" not in available_encoders()


@pytest.mark.gpu
@pytest.mark.parametrize(("name", "options"), SEQ_CONFIGS)
def test_sequence_encoders_on_cuda(name: str, options: dict) -> None:
    torch.manual_seed(0)
    enc = build_encoder(name, SEQ, 9, **options).eval()
    x, mask = _seq_batch([8, 5, 1, 3])
    ref = enc(x, mask)
    enc = enc.cuda()
    garbage = x.clone()
    garbage[~mask] = float("nan")
    out = enc(garbage.cuda(), mask.cuda())
    torch.testing.assert_close(out.cpu(), ref, atol=1e-4, rtol=1e-4)
