"""The ``alexnet`` and ``resnet18`` image encoders: torchvision's layouts and parameter counts,
shapes at every size, gradients, channels-last equivalence, batch norm, option validation."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from torch import nn

from mmfactor.data.dataset import ModalitySpec
from mmfactor.encoders import available_encoders, build_encoder, encoder_options
from mmfactor.encoders.image import AlexNetEncoder, ResNet18Encoder, _CeilMaxPool
from mmfactor.errors import InputError


def _spec(size: int, channels: int = 3) -> ModalitySpec:
    return ModalitySpec("img", "image", (channels, size, size))


def _n_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


SMALL_CONFIGS = [
    ("alexnet", {"stem": "small", "width": 0.25, "hidden": 0}),
    ("alexnet", {"stem": "small", "width": 0.125, "hidden": 0, "batchnorm": True}),
    ("alexnet", {"stem": "imagenet", "width": 0.25, "hidden": 16}),
    ("resnet18", {"stem": "small", "width": 0.25}),
    ("resnet18", {"stem": "imagenet", "width": 0.25, "zero_init_residual": True}),
]


def test_registered_with_options() -> None:
    assert {"alexnet", "resnet18"} <= set(available_encoders())
    assert encoder_options("alexnet") == {
        "stem": "imagenet",
        "width": 1.0,
        "hidden": 4096,
        "dropout": 0.5,
        "batchnorm": False,
        "normalize": True,
        "channels_last": True,
    }
    assert encoder_options("resnet18") == {
        "stem": "imagenet",
        "width": 1.0,
        "zero_init_residual": False,
        "normalize": True,
        "channels_last": True,
    }


@pytest.mark.parametrize(("name", "options"), SMALL_CONFIGS)
@pytest.mark.parametrize("size", [8, 32, 64])
def test_output_shape(name: str, options: dict[str, Any], size: int) -> None:
    enc = build_encoder(name, _spec(size, channels=2), 7, **options)
    assert enc(torch.randn(2, 2, size, size)).shape == (2, 7)


@pytest.mark.parametrize("name", ["alexnet", "resnet18"])
def test_full_width_defaults_at_8_and_224_px(name: str) -> None:
    enc = build_encoder(name, _spec(224), 5).eval()
    with torch.no_grad():
        assert enc(torch.randn(1, 3, 224, 224)).shape == (1, 5)
        assert enc(torch.randn(1, 3, 8, 8)).shape == (1, 5)  # ImageNet stem, tiny image


def test_alexnet_matches_torchvision_layers_and_counts() -> None:
    # torchvision.models.alexnet().features: (in, out, kernel, stride, padding) per conv.
    layout = [(3, 64, 11, 4, 2), (64, 192, 5, 1, 2), (192, 384, 3, 1, 1)]
    layout += [(384, 256, 3, 1, 1), (256, 256, 3, 1, 1)]
    expected = sum(c_in * c_out * k * k + c_out for c_in, c_out, k, _, _ in layout)
    assert expected == 2_469_696
    enc = build_encoder("alexnet", _spec(224), 1000)
    convs = [m for m in enc.modules() if isinstance(m, nn.Conv2d)]
    got = [
        (m.in_channels, m.out_channels, m.kernel_size[0], m.stride[0], m.padding[0]) for m in convs
    ]
    assert got == layout
    assert _n_params(enc.features) == expected
    assert _n_params(enc) == 61_100_840  # torchvision alexnet(), num_classes=1000
    linears = [(m.in_features, m.out_features) for m in enc.modules() if isinstance(m, nn.Linear)]
    assert linears == [(9216, 4096), (4096, 4096), (4096, 1000)]
    assert [m.p for m in enc.modules() if isinstance(m, nn.Dropout)] == [0.5, 0.5]


def test_resnet18_matches_torchvision_counts() -> None:
    enc = build_encoder("resnet18", _spec(224), 1000)
    assert _n_params(enc.features) == 11_176_512  # torchvision resnet18 minus fc (513,000)
    assert _n_params(enc) == 11_689_512  # torchvision resnet18(), num_classes=1000
    convs = [m for m in enc.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == 1 + 8 * 2 + 3  # stem, 8 blocks of 2, 3 downsample shortcuts
    assert convs[0].kernel_size == (7, 7) and convs[0].stride == (2, 2)
    assert all(m.bias is None for m in convs)
    # Kaiming normal, fan out: std sqrt(2 / (out * k * k)) (the last conv: 512 * 9 fan out).
    w = convs[-1].weight
    assert abs(w.std().item() / (2 / (w.shape[0] * 9)) ** 0.5 - 1) < 0.02
    bns = [m for m in enc.modules() if isinstance(m, nn.BatchNorm2d)]
    assert all(bool((m.weight == 1).all() and (m.bias == 0).all()) for m in bns)


def test_small_stem_and_width() -> None:
    enc = build_encoder("resnet18", _spec(32), 4, stem="small", width=0.5)
    convs = [m for m in enc.modules() if isinstance(m, nn.Conv2d)]
    assert convs[0].kernel_size == (3, 3) and convs[0].stride == (1, 1)
    assert not any(isinstance(m, nn.MaxPool2d) for m in enc.modules())
    assert enc.out.in_features == 256
    alex = build_encoder("alexnet", _spec(32), 4, stem="small", width=0.25, hidden=0)
    convs = [m for m in alex.modules() if isinstance(m, nn.Conv2d)]
    assert [m.out_channels for m in convs] == [16, 48, 96, 64, 64]
    assert convs[0].kernel_size == (3, 3) and convs[0].stride == (1, 1)
    assert alex.head[-1].in_features == 64


def test_zero_init_residual() -> None:
    enc = build_encoder("resnet18", _spec(16), 4, width=0.25, zero_init_residual=True)
    blocks = [m for m in enc.modules() if hasattr(m, "bn2")]
    assert len(blocks) == 8 and all(bool((b.bn2.weight == 0).all()) for b in blocks)


@pytest.mark.parametrize(("name", "options"), SMALL_CONFIGS)
def test_gradients_reach_first_conv(name: str, options: dict[str, Any]) -> None:
    enc = build_encoder(name, _spec(16), 3, **options)
    enc(torch.randn(2, 3, 16, 16)).square().sum().backward()
    first = next(m for m in enc.modules() if isinstance(m, nn.Conv2d))
    assert first.weight.grad is not None and first.weight.grad.abs().sum() > 0


@pytest.mark.parametrize(("name", "options"), SMALL_CONFIGS)
@pytest.mark.parametrize("train", [False, True])
def test_channels_last_matches_contiguous(name: str, options: dict[str, Any], train: bool) -> None:
    torch.manual_seed(0)
    fast = build_encoder(name, _spec(20), 6, channels_last=True, **options)
    plain = build_encoder(name, _spec(20), 6, channels_last=False, **options)
    plain.load_state_dict(fast.state_dict())
    first = next(m for m in fast.modules() if isinstance(m, nn.Conv2d))
    assert first.weight.is_contiguous(memory_format=torch.channels_last)
    assert not first.weight.is_contiguous()
    fast.train(train)
    plain.train(train)
    x = torch.randn(4, 3, 20, 20)
    torch.manual_seed(1)  # same dropout masks
    a = fast(x)
    torch.manual_seed(1)
    b = plain(x)
    torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


def test_batchnorm_train_and_eval_with_two_rows() -> None:
    enc = build_encoder("resnet18", _spec(8), 4, stem="small", width=0.25)
    x = torch.randn(2, 3, 8, 8)
    bn = next(m for m in enc.modules() if isinstance(m, nn.BatchNorm2d))
    before = bn.running_mean.clone()
    train_out = enc.train()(x)
    assert torch.isfinite(train_out).all()
    assert not torch.equal(bn.running_mean, before)  # statistics updated
    with torch.no_grad():
        eval_a, eval_b = enc.eval()(x), enc(x[:1])
    assert not torch.allclose(train_out, eval_a)  # running, not batch, statistics
    torch.testing.assert_close(eval_a[:1], eval_b, atol=1e-5, rtol=1e-5)  # rows independent


def test_uint8_input_and_any_channel_count() -> None:
    enc = build_encoder("alexnet", _spec(12, channels=5), 3, stem="small", width=0.1, hidden=0)
    assert enc(torch.randint(0, 255, (2, 5, 12, 12), dtype=torch.uint8)).shape == (2, 3)


def test_ceil_max_pool() -> None:
    pool = _CeilMaxPool()
    for size in (3, 13, 27, 55):  # odd sizes: torchvision's MaxPool2d(3, 2)
        x = torch.randn(1, 2, size, size)
        torch.testing.assert_close(pool(x), nn.MaxPool2d(3, 2)(x))
    x = torch.randn(1, 2, 1, 4)  # one row: windows [0, 3) and [2, 4) of the width
    expected = torch.stack([x[..., 0:3].amax(-1), x[..., 2:4].amax(-1)], -1)
    torch.testing.assert_close(pool(x), expected)
    assert pool(torch.randn(1, 1, 1, 1)).shape == (1, 1, 1, 1)


def test_through_build_encoder_with_scoped_options() -> None:
    options = {
        "mlp": {"hidden": [64]},  # scopes of other encoders are skipped
        "alexnet": {"stem": "small", "width": 0.25, "hidden": 0},
        "resnet18": {"stem": "small", "width": 0.25},
    }
    alex = build_encoder("alexnet", _spec(16), 8, **options)
    assert isinstance(alex, AlexNetEncoder) and alex.out_dim == 8
    res = build_encoder("resnet18", _spec(16), 8, **options)
    assert isinstance(res, ResNet18Encoder)
    assert res(torch.randn(2, 3, 16, 16)).shape == (2, 8)


@pytest.mark.parametrize(
    ("name", "options", "message"),
    [
        ("alexnet", {"stem": "cifar"}, "stem"),
        ("alexnet", {"width": 0}, "width"),
        ("alexnet", {"width": -1.0}, "width"),
        ("alexnet", {"hidden": -1}, "hidden"),
        ("alexnet", {"hidden": 1.5}, "hidden"),
        ("alexnet", {"dropout": 1.0}, "dropout"),
        ("alexnet", {"channels_last": "yes"}, "channels_last"),
        ("resnet18", {"stem": 3}, "stem"),
        ("resnet18", {"width": float("nan")}, "width"),
        ("resnet18", {"zero_init_residual": 1}, "zero_init_residual"),
        ("resnet18", {"channels_last": 0}, "channels_last"),
        ("resnet18", {"dropout": 0.1}, "unknown option 'dropout'"),
    ],
)
def test_invalid_options(name: str, options: dict[str, Any], message: str) -> None:
    with pytest.raises(InputError, match=message):
        build_encoder(name, _spec(16), 4, **options)


@pytest.mark.parametrize("name", ["alexnet", "resnet18"])
def test_rejects_non_image_modalities(name: str) -> None:
    with pytest.raises(InputError, match="cannot encode vector"):
        build_encoder(name, ModalitySpec("x", "vector", (5,)), 4)


@pytest.mark.parametrize("name", ["alexnet", "resnet18"])
@pytest.mark.parametrize("channels", [3, 1])
def test_normalize_standardises_inputs_by_imagenet_statistics(name: str, channels: int) -> None:
    torch.manual_seed(0)
    plain = build_encoder(name, _spec(16, channels), 4, stem="small", width=0.25, normalize=False)
    normed = build_encoder(name, _spec(16, channels), 4, stem="small", width=0.25)
    normed.load_state_dict(plain.state_dict())  # the statistics are not weights
    mean, std = torch.tensor([0.485, 0.456, 0.406]), torch.tensor([0.229, 0.224, 0.225])
    if channels == 1:
        mean, std = mean.mean(0, keepdim=True), std.mean(0, keepdim=True)
    x = torch.rand(3, channels, 16, 16)
    plain.eval(), normed.eval()
    expected = plain((x - mean[:, None, None]) / std[:, None, None])
    torch.testing.assert_close(normed(x), expected)


def test_alexnet_batchnorm_follows_each_bias_free_conv() -> None:
    enc = build_encoder("alexnet", _spec(32), 4, stem="small", width=0.25, batchnorm=True)
    layers = list(enc.features)
    convs = [i for i, m in enumerate(layers) if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) == 5
    for i in convs:
        assert layers[i].bias is None
        assert isinstance(layers[i + 1], torch.nn.BatchNorm2d)
