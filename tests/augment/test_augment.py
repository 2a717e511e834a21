"""Augmentations: shapes, seeding, per-sample choice, mask consistency, no leaks from padding."""

from __future__ import annotations

import copy

import pytest
import torch

from mmfactor.augment import (
    Compose,
    DropSteps,
    FeatureDropout,
    GaussianNoise,
    Identity,
    Mixup,
    PermuteSteps,
    RandomChoice,
    RandomFlip,
    SwapHalves,
    default_augmentation,
)
from mmfactor.augment.vector import feature_scale
from mmfactor.data.dataset import ModalitySpec
from mmfactor.errors import InputError

B, T, D = 64, 12, 5


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def seq_batch(seed: int = 0, b: int = B, t: int = T) -> tuple[torch.Tensor, torch.Tensor]:
    g = gen(seed + 100)
    lengths = torch.randint(1, t + 1, (b,), generator=g)
    lengths[0], lengths[1] = t, 1
    mask = torch.arange(t)[None, :] < lengths[:, None]
    x = torch.randn(b, t, D, generator=g).masked_fill(~mask[..., None], 0.0)
    return x, mask


def check_mask(x: torch.Tensor, mask: torch.Tensor) -> None:
    """Padding is at the end, padded steps are zero... when the input's were, lengths >= 1."""
    lengths = mask.sum(1)
    assert (lengths >= 1).all()
    assert torch.equal(mask, torch.arange(mask.shape[1])[None, :] < lengths[:, None])
    assert (x[~mask] == 0).all()  # exact: padding is written as zeros, not computed


VECTOR_TRANSFORMS = [
    Identity(),
    FeatureDropout(0.1),
    GaussianNoise(0.1),
    GaussianNoise(0.1, relative=False),
    SwapHalves(),
    SwapHalves(0.5),
    Mixup(),
    Mixup(alpha=0.4),
    RandomChoice([FeatureDropout(0.1), GaussianNoise(0.1), Identity()]),
]
SEQUENCE_TRANSFORMS = [
    Identity(),
    PermuteSteps(),
    GaussianNoise(0.1),
    DropSteps(0.2),
    FeatureDropout(0.1),
    SwapHalves(0.5),
    RandomChoice([PermuteSteps(), GaussianNoise(0.1), DropSteps(0.2), Identity()]),
    Compose([PermuteSteps(), DropSteps(0.5)]),
]


@pytest.mark.parametrize("aug", VECTOR_TRANSFORMS, ids=lambda a: type(a).__name__)
def test_vector_shapes_and_determinism(aug: torch.nn.Module) -> None:
    x = torch.randn(B, D, generator=gen(1))
    out, mask = aug(x, generator=gen(7))
    assert out.shape == x.shape and mask is None
    again, _ = aug(x, generator=gen(7))
    # Exact here and below: same seed, same input, same shapes (determinism check).
    assert torch.equal(out, again)
    # A generator held by the module seeds it the same way.
    held = copy.deepcopy(aug)
    held.generator = gen(7)
    assert torch.equal(held(x)[0], out)


@pytest.mark.parametrize("aug", SEQUENCE_TRANSFORMS, ids=lambda a: type(a).__name__)
def test_sequence_shapes_determinism_and_masks(aug: torch.nn.Module) -> None:
    x, mask = seq_batch()
    out, out_mask = aug(x, mask, generator=gen(3))
    assert out.shape == x.shape and out_mask.shape == mask.shape
    check_mask(out, out_mask)
    again, again_mask = aug(x, mask, generator=gen(3))
    # exact: same seed, same input, same shapes (determinism check)
    assert torch.equal(out, again) and torch.equal(out_mask, again_mask)
    other, _ = aug(x, mask, generator=gen(4))
    if not isinstance(aug, Identity):
        assert not torch.equal(out, other)  # exact: another seed draws other random numbers


@pytest.mark.parametrize("aug", SEQUENCE_TRANSFORMS, ids=lambda a: type(a).__name__)
def test_padding_never_leaks_into_real_steps(aug: torch.nn.Module) -> None:
    x, mask = seq_batch()
    garbage = x.clone()
    garbage[~mask] = 1e6 * torch.randn(int((~mask).sum()), D, generator=gen(9))
    out, out_mask = aug(x, mask, generator=gen(5))
    out_g, out_mask_g = aug(garbage, mask, generator=gen(5))
    assert torch.equal(out_mask, out_mask_g)
    torch.testing.assert_close(out_g[out_mask], out[out_mask], rtol=0, atol=1e-6)
    garbage[~mask] = float("nan")
    out_nan, _ = aug(garbage, mask, generator=gen(5))
    torch.testing.assert_close(out_nan[out_mask], out[out_mask], rtol=0, atol=1e-6)


def test_each_sample_randomised_independently() -> None:
    x = torch.ones(B, 40)
    out, _ = FeatureDropout(0.5)(x, generator=gen())
    # Exact: rows of copied 0 / 1 values, and rows of independent draws, are all distinct.
    assert len({tuple(row.tolist()) for row in out}) == B
    noise, _ = GaussianNoise(0.1, relative=False)(torch.zeros(B, D), generator=gen())
    assert len({tuple(row.tolist()) for row in noise}) == B


def test_feature_dropout_rate() -> None:
    out, _ = FeatureDropout(0.1)(torch.ones(1000, 50), generator=gen())
    # Exact: dropped entries are set to 0 and kept ones are the input's 1.0 (copied).
    assert abs((out == 0).float().mean().item() - 0.1) < 0.01
    assert set(out.unique().tolist()) == {0.0, 1.0}  # no rescaling


def test_gaussian_noise_is_relative_to_the_feature_scale() -> None:
    scales = torch.tensor([0.01, 1.0, 100.0])
    x = torch.randn(4000, 3, generator=gen(1)) * scales
    out, _ = GaussianNoise(0.1)(x, generator=gen(2))
    ratio = (out - x).std(0) / scales
    torch.testing.assert_close(ratio, torch.full((3,), 0.1), rtol=0.1, atol=0)
    absolute, _ = GaussianNoise(0.1, relative=False)(x, generator=gen(2))
    torch.testing.assert_close((absolute - x).std(0), torch.full((3,), 0.1), rtol=0.1, atol=0)
    # Constant features have no spread, so relative noise leaves them alone.
    const, _ = GaussianNoise(0.1)(torch.ones(B, D), generator=gen())
    assert torch.equal(const, torch.ones(B, D))  # exact: the scale is exactly 0 (std of ones)
    # Sequences: the scale counts real steps only; images: one scale per channel.
    xs, mask = seq_batch()
    assert feature_scale(xs, mask).shape == (1, 1, D)
    assert feature_scale(torch.randn(8, 3, 4, 4), None).shape == (1, 3, 1, 1)
    # exact: with one row the scale is the constant 1 (a branch, not computed)
    assert torch.equal(feature_scale(torch.randn(1, D), None), torch.ones(1, D))


def test_swap_halves() -> None:
    x = torch.arange(10.0).repeat(B, 1)
    out, _ = SwapHalves()(x)
    # Exact: swapping moves values (copies), it computes none.
    assert torch.equal(out[0], torch.tensor([5.0, 6, 7, 8, 9, 0, 1, 2, 3, 4]))
    half, _ = SwapHalves(0.5)(x, generator=gen())
    swapped = (half != x).any(1)
    assert 0 < swapped.sum() < B


@pytest.mark.parametrize(
    "mixup",
    [Mixup(), Mixup(lam_range=(0.6, 0.6)), Mixup(alpha=0.5)],
    ids=["range", "fixed", "beta"],
)
def test_mixup_mixes_with_another_sample(mixup: Mixup) -> None:
    # One-hot rows: the output shows each sample's weight and its partner's.
    x = torch.eye(B)
    out, _ = mixup(x, generator=gen())
    own = out.diagonal().clone()
    assert (own >= 0.5 - 1e-6).all() and (own <= 1 + 1e-6).all()
    torch.testing.assert_close(out.sum(1), torch.ones(B))
    partner_weight = out.fill_diagonal_(0).amax(1)
    torch.testing.assert_close(partner_weight, 1 - own)
    if mixup.alpha is None and mixup.lam_range[0] == mixup.lam_range[1]:
        torch.testing.assert_close(own, torch.full((B,), 0.6))
    single, _ = mixup(torch.randn(1, D))
    assert single.shape == (1, D)


def test_permute_steps_is_a_permutation_of_real_steps() -> None:
    x, mask = seq_batch()
    out, out_mask = PermuteSteps()(x, mask, generator=gen())
    assert torch.equal(out_mask, mask)
    for i in range(B):
        n = int(mask[i].sum())
        a = x[i, :n].sum(1).sort().values
        b = out[i, :n].sum(1).sort().values
        # Exact: the steps are copied, and each step's sum is the same op on the same 5
        # values in the same order, on tensors of the same shape.
        assert torch.equal(a, b)
    assert not torch.equal(out[0], x[0])  # exact: a permutation of copied steps


def test_drop_steps_rate_and_order() -> None:
    lengths = torch.randint(1, 41, (2000,), generator=gen(1))
    mask = torch.arange(40)[None, :] < lengths[:, None]
    # Each step carries its own index so the kept order can be checked.
    x = torch.arange(1, 41.0)[None, :, None].expand(2000, 40, 1) * mask[..., None]
    out, out_mask = DropSteps(0.2)(x, mask, generator=gen(2))
    check_mask(out, out_mask)
    dropped = (lengths - out_mask.sum(1)).float()
    assert abs(dropped.sum().item() / lengths.sum().item() - 0.2) < 0.01
    expected = torch.minimum(torch.floor(0.2 * lengths), lengths - 1)
    assert ((dropped - expected) >= 0).all() and ((dropped - expected) <= 1).all()
    kept = out[..., 0]
    assert ((kept[:, 1:] > kept[:, :-1]) | ~out_mask[:, 1:]).all()  # time order preserved
    # Never drop all steps, even with p close to 1; length-1 sequences are kept whole.
    out, out_mask = DropSteps(0.99)(x, mask, generator=gen(3))
    assert (out_mask.sum(1) == 1).all()
    ones = torch.ones(B, T, dtype=torch.bool)
    ones[:, 1:] = False
    _, m1 = DropSteps(0.5)(torch.randn(B, T, D), ones, generator=gen())
    assert torch.equal(m1, ones)


def test_sequence_transforms_without_mask() -> None:
    x = torch.randn(4, T, D)
    out, mask = PermuteSteps()(x)
    assert mask is None and out.shape == x.shape
    out, mask = DropSteps(0.25)(x, generator=gen())
    assert (mask.sum(1) == T - 3).all()
    out, mask = RandomChoice([PermuteSteps(), DropSteps(0.25)])(x, generator=gen())
    assert mask is not None and mask.shape == (4, T)


def test_random_choice_gives_samples_different_transforms() -> None:
    # Absolute noise: relative noise on constant features would be zero.
    aug = RandomChoice([FeatureDropout(0.5), GaussianNoise(0.1, relative=False), Identity()])
    x = torch.ones(300, 20)
    choice = aug.choose(x, gen(0))
    out, _ = aug(x, generator=gen(0))
    counts = torch.bincount(choice, minlength=3)
    assert (counts > 60).all()
    # Exact: dropout writes 0, Identity copies the 1.0s; only the noise makes other values.
    dropped = (out == 0).any(1)
    noisy = ((out != 0) & (out != 1)).any(1)
    unchanged = (out == 1).all(1)
    assert torch.equal(dropped & ~noisy, choice == 0)
    assert torch.equal(noisy, choice == 1)
    assert torch.equal(unchanged, choice == 2)


def test_random_choice_selects_masks_per_sample() -> None:
    x, mask = seq_batch()
    aug = RandomChoice([Identity(), DropSteps(0.5)])
    choice = aug.choose(x, gen(0))
    out, out_mask = aug(x, mask, generator=gen(0))
    keep = choice == 0
    # exact: Identity's rows are copies of the input
    assert torch.equal(out_mask[keep], mask[keep]) and torch.equal(out[keep], x[keep])
    shortened = mask.sum(1) > out_mask.sum(1)
    assert torch.equal(shortened & ~keep, shortened)
    check_mask(out, out_mask)


def test_random_choice_weights() -> None:
    aug = RandomChoice([Identity(), FeatureDropout(0.5)], weights=[1.0, 0.0])
    x = torch.ones(B, D)
    assert torch.equal(aug(x, generator=gen())[0], x)  # exact: Identity copies its input
    with pytest.raises(InputError):
        RandomChoice([Identity()], weights=[1.0, 2.0])
    with pytest.raises(InputError):
        RandomChoice([])


@pytest.mark.parametrize(
    "spec",
    [
        ModalitySpec("v", "vector", (D,)),
        ModalitySpec("s", "sequence", (D,)),
        ModalitySpec("i", "image", (3, 6, 6)),
    ],
    ids=lambda s: s.kind,
)
def test_default_augmentation(spec: ModalitySpec) -> None:
    aug = default_augmentation(spec)
    if spec.kind == "sequence":
        x, mask = seq_batch()
    else:
        x, mask = torch.randn(B, *spec.shape, generator=gen(1)), None
    out, out_mask = aug(x, mask, generator=gen(2))
    assert out.shape == x.shape
    # exact: same seed, same input, same shapes (determinism check)
    assert torch.equal(out, aug(x, mask, generator=gen(2))[0])
    assert not torch.equal(out, x)
    if spec.kind == "sequence":
        check_mask(out, out_mask)
        assert len(aug.transforms) == 4
    else:
        assert out_mask is None


def test_image_flip() -> None:
    x = torch.randn(B, 3, 4, 5)
    out, _ = RandomFlip(0.5)(x, generator=gen())
    # Exact: a flip copies values.
    flipped = (out == x.flip(-1)).flatten(1).all(1)
    same = (out == x).flatten(1).all(1)
    assert (flipped | same).all() and flipped.any() and same.any()


def test_bad_arguments() -> None:
    for make in (
        lambda: FeatureDropout(1.0),
        lambda: DropSteps(-0.1),
        lambda: SwapHalves(2.0),
        lambda: GaussianNoise(-1.0),
        lambda: Mixup(alpha=0.0),
        lambda: Mixup(lam_range=(0.9, 0.1)),
    ):
        with pytest.raises(InputError):
            make()
    with pytest.raises(InputError, match="sequences"):
        PermuteSteps()(torch.randn(4, D))
    with pytest.raises(InputError, match="mask"):
        GaussianNoise()(torch.randn(4, T, D), torch.ones(4, T + 1, dtype=torch.bool))
    with pytest.raises(InputError):
        Mixup()(torch.randn(4, T, D), torch.ones(4, T, dtype=torch.bool))


def test_gradients_flow_through_augmentations() -> None:
    x, mask = seq_batch(b=8)
    x.requires_grad_(True)
    aug = RandomChoice([PermuteSteps(), GaussianNoise(0.1), DropSteps(0.2), Identity()])
    out, _ = aug(x, mask, generator=gen())
    out.sum().backward()
    assert x.grad is not None


@pytest.mark.gpu
def test_runs_on_cuda_with_either_generator() -> None:
    x, mask = seq_batch()
    x, mask = x.cuda(), mask.cuda()
    aug = default_augmentation(ModalitySpec("s", "sequence", (D,)))
    for g in (gen(0), torch.Generator(device="cuda").manual_seed(0), None):
        out, out_mask = aug(x, mask, generator=g)
        assert out.device == x.device and out_mask.device == x.device
        check_mask(out.cpu(), out_mask.cpu())
    out_a, _ = aug(x, mask, generator=gen(0))
    out_b, _ = aug(x.cpu(), mask.cpu(), generator=gen(0))
    torch.testing.assert_close(out_a.cpu(), out_b, rtol=0, atol=1e-5)
