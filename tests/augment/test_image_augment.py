"""SimCLR's image augmentations (augment/image.py): each operation against its definition,
per-sample parameters, seeding, the unit range, and data-parallel equivalence."""

from __future__ import annotations

import colorsys
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import mmfactor.distributed as dist_utils
from mmfactor.augment import (
    ColorJitter,
    GaussianBlur,
    RandomFlip,
    RandomGrayscale,
    RandomResizedCrop,
    simclr_augmentation,
)
from mmfactor.augment.image import LUMA, blur, hsv_to_rgb, resized_crop, rgb_to_hsv
from mmfactor.errors import InputError


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def images(b: int = 16, c: int = 3, h: int = 24, w: int = 20, seed: int = 0) -> torch.Tensor:
    return torch.rand(b, c, h, w, generator=gen(seed + 100))


def test_resized_crop_of_the_whole_image_is_the_image_and_halving_averages_blocks() -> None:
    x = images(4, h=8, w=6)
    whole = torch.tensor([[0, 0, 8, 6]] * 4)
    torch.testing.assert_close(resized_crop(x, whole, (8, 6)), x)
    blocks = F.avg_pool2d(x, 2)  # a box twice the output's size: the means of 2x2 blocks
    torch.testing.assert_close(resized_crop(x, whole, (4, 3)), blocks)
    flip = torch.tensor([True, False, True, False])
    out = resized_crop(x, whole, (8, 6), flip)
    torch.testing.assert_close(out[flip], x[flip].flip(-1))
    torch.testing.assert_close(out[~flip], x[~flip])
    # A box of whole pixels at the output's size copies those pixels.
    box = torch.tensor([[2, 1, 4, 3]] * 4)
    torch.testing.assert_close(resized_crop(x, box, (4, 3)), x[:, :, 2:6, 1:4])


def test_random_resized_crop_boxes_follow_scale_and_ratio() -> None:
    crop = RandomResizedCrop(16, scale=(0.2, 0.6), ratio=(0.5, 2.0))
    x = torch.zeros(4000, 1, 40, 50)
    top, left, h, w = crop.boxes(x, gen()).double().unbind(1)
    assert (top >= 0).all() and (left >= 0).all()
    assert (top + h <= 40).all() and (left + w <= 50).all()
    area = h * w / (40 * 50)
    # Sides are rounded to pixels: allow one pixel's worth of area and ratio.
    assert area.min() > 0.2 - 0.05 and area.max() < 0.6 + 0.05
    assert (w / h).min() > 0.5 * 0.85 and (w / h).max() < 2.0 * 1.15
    assert 0.35 < area.mean() < 0.45  # uniform in [0.2, 0.6]: mean 0.4
    assert len(torch.unique(top)) > 10 and len(torch.unique(left)) > 10  # positions vary


def test_random_resized_crop_falls_back_to_the_central_box() -> None:
    # Scale 1 with a ratio the image cannot have: no candidate fits, the centre is taken.
    crop = RandomResizedCrop(None, scale=(1.0, 1.0), ratio=(2.0, 2.0))
    boxes = crop.boxes(torch.zeros(3, 1, 10, 10), gen())
    assert boxes.tolist() == [[2, 0, 5, 10]] * 3  # w / h clipped to 2: height 5, centred


def test_hsv_round_trip_matches_colorsys() -> None:
    rgb = torch.rand(1, 3, 7, 9, generator=gen(3), dtype=torch.float64)
    rgb[0, :, 0, 0] = 0.5  # a gray: hue 0, saturation 0
    rgb[0, :, 0, 1] = torch.tensor([1.0, 1.0, 0.2])  # red and green tie
    hsv = rgb_to_hsv(rgb)
    expected = np.array([colorsys.rgb_to_hsv(*p) for p in rgb[0].reshape(3, -1).T.tolist()])
    np.testing.assert_allclose(hsv[0].reshape(3, -1).T.numpy(), expected, atol=1e-12)
    torch.testing.assert_close(hsv_to_rgb(hsv), rgb)


def test_colour_jitter_operations_against_their_definitions() -> None:
    x = images(64)
    # Brightness alone, always applied: clamp(f x) with f uniform in [0.6, 1.4] per sample.
    out, _ = ColorJitter(0.4, 0, 0, 0, p=1.0)(x, generator=gen())
    f = torch.stack([(b / a)[(b < 1) & (a > 0.05)].median() for a, b in zip(x, out, strict=True)])
    torch.testing.assert_close(out, (f[:, None, None, None] * x).clamp(0, 1))
    assert 0.6 <= f.min() and f.max() <= 1.4 and f.std() > 0.15  # uniform: std 0.23
    # Saturation factor 0 (a = 1 draws f in [0, 2]) pulls towards the luma image.
    luma = LUMA[0] * x[:, 0] + LUMA[1] * x[:, 1] + LUMA[2] * x[:, 2]
    sat, _ = ColorJitter(0, 0, 1.0, 0, p=1.0)(x, generator=gen())
    moved = (sat - luma[:, None]).abs().mean((1, 2, 3)) / (x - luma[:, None]).abs().mean((1, 2, 3))
    assert moved.min() < 0.3 and moved.max() > 1.3  # factors near 0 and near 2
    # Hue shifts are cyclic: saturation and value are kept.
    shifted, _ = ColorJitter(0, 0, 0, 0.5, p=1.0)(x, generator=gen())
    torch.testing.assert_close(rgb_to_hsv(shifted)[:, 1:], rgb_to_hsv(x)[:, 1:], atol=1e-5, rtol=0)
    assert not torch.allclose(shifted, x)
    # p = 0 leaves every sample unchanged.
    assert torch.equal(ColorJitter(p=0.0)(x, generator=gen())[0], x)


def test_contrast_blends_with_the_mean_luma() -> None:
    x = images(32)
    out, _ = ColorJitter(0, 0.9, 0, 0, p=1.0)(x, generator=gen(4))
    luma = (LUMA[0] * x[:, 0] + LUMA[1] * x[:, 1] + LUMA[2] * x[:, 2]).mean((1, 2))
    # Unclamped pixels satisfy out = f x + (1 - f) m for one f per sample; solve it from two.
    for i in range(4):
        a, b = x[i].reshape(-1), out[i].reshape(-1)
        inside = (b > 0) & (b < 1)
        f = (b[inside] - luma[i]) / (a[inside] - luma[i])
        assert f.std() < 1e-3 and 0.1 - 1e-4 <= f.mean() <= 1.9 + 1e-4


def test_grayscale_and_blur() -> None:
    x = images(200)
    out, _ = RandomGrayscale(0.5)(x, generator=gen())
    luma = LUMA[0] * x[:, 0] + LUMA[1] * x[:, 1] + LUMA[2] * x[:, 2]
    is_gray = torch.isclose(out, luma[:, None].expand_as(x), atol=1e-6).flatten(1).all(1)
    unchanged = (out == x).flatten(1).all(1)
    assert (is_gray | unchanged).all() and 60 < is_gray.sum() < 140
    single = images(3, c=1)
    assert torch.equal(RandomGrayscale(1.0)(single, generator=gen())[0], single)

    # blur: one sample's kernel by an explicit 2-D convolution with reflect padding.
    sigma = torch.tensor([0.5, 1.0, 2.0])
    x = images(3, c=2, h=12, w=11)
    got = blur(x, sigma, 5)
    for i, s in enumerate(sigma.tolist()):
        t = torch.arange(5.0) - 2
        k1 = torch.exp(-0.5 * (t / s) ** 2)
        k2 = torch.outer(k1, k1) / k1.sum() ** 2
        padded = F.pad(x[i : i + 1], (2, 2, 2, 2), mode="reflect")
        want = F.conv2d(padded, k2.expand(2, 1, 5, 5), groups=2)
        torch.testing.assert_close(got[i : i + 1], want, atol=1e-5, rtol=1e-5)
    constant = torch.full((2, 3, 9, 9), 0.3)
    torch.testing.assert_close(blur(constant, torch.tensor([1.0, 3.0]), 7), constant)
    assert GaussianBlur(p=1.0)(images(2, h=224, w=224), generator=gen())[0].shape[-1] == 224


@pytest.mark.parametrize("channels", [1, 3])
def test_simclr_pipeline_shapes_range_seeding_and_per_sample_draws(channels: int) -> None:
    aug = simclr_augmentation(16)
    x = images(64, c=channels, h=24, w=20)
    out, mask = aug(x, generator=gen(1))
    assert mask is None and out.shape == (64, channels, 16, 16)
    assert out.min() >= 0 and out.max() <= 1
    assert torch.equal(out, aug(x, generator=gen(1))[0])  # same seed, same output
    assert not torch.equal(out, aug(x, generator=gen(2))[0])
    # The same image repeated gets different views: parameters are drawn per sample.
    same = x[:1].expand(64, -1, -1, -1).contiguous()
    views = aug(same, generator=gen(3))[0].flatten(1)
    assert torch.cdist(views, views).triu(1)[torch.ones(64, 64).triu(1).bool()].min() > 0


def test_two_processes_augment_their_rows_as_one_process(monkeypatch) -> None:
    """Under data parallelism every rank cuts its rows from one draw for the global batch
    (rank_share): the two halves augmented on ranks 0 and 1 equal the whole batch on one."""
    aug = simclr_augmentation(12)
    x = images(16, h=16, w=16)
    whole = aug(x, generator=gen(5))[0]
    halves = []
    monkeypatch.setattr(dist_utils, "world_size", lambda: 2)
    for r in (0, 1):
        monkeypatch.setattr(dist_utils, "rank", lambda r=r: r)
        halves.append(aug(x[8 * r : 8 * (r + 1)], generator=gen(5))[0])
    torch.testing.assert_close(torch.cat(halves), whole, atol=1e-6, rtol=0)


def test_gradients_flow_and_bad_input_is_refused() -> None:
    x = images(4).requires_grad_(True)
    simclr_augmentation()(x, generator=gen())[0].sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    with pytest.raises(InputError, match="float images"):
        ColorJitter()(torch.zeros(2, 3, 4, 4, dtype=torch.uint8))
    with pytest.raises(InputError, match="C = 3"):
        RandomGrayscale()(torch.rand(2, 5, 4, 4))
    with pytest.raises(InputError, match="masks"):
        GaussianBlur()(torch.rand(2, 3, 4), torch.ones(2, 3, dtype=torch.bool))
    for make in (
        lambda: RandomResizedCrop(scale=(0.9, 0.1)),
        lambda: RandomResizedCrop(scale=(0.0, 1.0)),
        lambda: RandomResizedCrop(ratio=(1.0,)),
        lambda: RandomResizedCrop(size=0),
        lambda: ColorJitter(hue=0.7),
        lambda: ColorJitter(brightness=-1),
        lambda: GaussianBlur(kernel_size=4),
        lambda: GaussianBlur(sigma=(2.0, 1.0)),
        lambda: RandomFlip(p=1.5),
    ):
        with pytest.raises(InputError):
            make()
    with pytest.raises(InputError, match="too large"):
        GaussianBlur(kernel_size=9)(torch.rand(1, 3, 4, 4))
    assert math.isfinite(float(simclr_augmentation()(images(2), generator=gen())[0].sum()))
