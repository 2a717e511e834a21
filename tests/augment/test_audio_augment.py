"""SpecAugment masking: masks within bounds and within each row's real steps, seeding,
identity settings, per-sample masks, fill values, dtype/device, argument checks."""

from __future__ import annotations

import pytest
import torch

from mmfactor.augment import (
    Compose,
    FrequencyMasking,
    Identity,
    RandomChoice,
    TimeMasking,
    spec_augment,
)
from mmfactor.errors import InputError

B, T, F = 64, 30, 16
MARK = -1.0e4  # a fill value no input entry takes: masked entries are those equal to it


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def batch(seed: int = 0, b: int = B, t: int = T) -> tuple[torch.Tensor, torch.Tensor]:
    g = gen(seed + 100)
    lengths = torch.randint(1, t + 1, (b,), generator=g)
    lengths[0], lengths[1], lengths[2] = t, 1, 2
    mask = torch.arange(t)[None, :] < lengths[:, None]
    x = torch.randn(b, t, F, generator=g).masked_fill(~mask[..., None], 0.0)
    return x, mask


def runs(flags: torch.Tensor) -> list[tuple[int, int]]:
    """The ``(start, width)`` runs of True in a 1-D bool tensor."""
    out, start = [], None
    for i, v in enumerate([*flags.tolist(), False]):
        if v and start is None:
            start = i
        elif not v and start is not None:
            out.append((start, i - start))
            start = None
    return out


@pytest.mark.parametrize("n_masks", [1, 3])
def test_time_masks_stay_within_each_rows_length_and_width_bounds(n_masks: int) -> None:
    x, mask = batch()
    aug = TimeMasking(max_width=6, n_masks=n_masks, max_fraction=0.5, value=MARK)
    out, mask_out = aug(x, mask, generator=gen(1))
    assert mask_out is mask and out.shape == x.shape
    hit = out == MARK
    assert torch.equal(hit.any(2), hit.all(2))  # a masked frame is masked on every channel
    steps = hit[..., 0]
    assert not (steps & ~mask).any()  # never in the padding
    assert torch.equal(out[~hit], x[~hit])  # everything else untouched
    lengths = mask.sum(1)
    for row, length in zip(steps, lengths.tolist(), strict=True):
        bound = min(6, int(0.5 * length))
        spans = runs(row)
        assert len(spans) <= n_masks
        assert all(w <= n_masks * bound for _, w in spans)
        if n_masks == 1:
            assert all(w <= bound for _, w in spans)
    assert steps.any()  # something was masked


def test_frequency_masks_are_one_band_on_every_real_step() -> None:
    x, mask = batch()
    out, _ = FrequencyMasking(max_width=5, value=MARK)(x, mask, generator=gen(2))
    hit = out == MARK
    assert not hit[~mask].any()
    lengths = mask.sum(1)
    for i in range(B):
        real = hit[i, : lengths[i]]
        assert torch.equal(real, real[:1].expand_as(real))  # the same band at every real step
        spans = runs(real[0])
        assert len(spans) <= 1 and all(w <= 5 and s + w <= F for s, w in spans)
    assert torch.equal(out[~hit], x[~hit])


def test_widths_and_starts_cover_their_whole_ranges() -> None:
    # One mask of width uniform in [0, 4] in rows of length 10: every width and, for width 4,
    # every start in [0, 6] occurs in 2000 rows (each has probability >= 1/35).
    t = 10
    x = torch.randn(2000, t, 2)
    out, _ = TimeMasking(max_width=4, value=MARK)(x, generator=gen(3))
    spans = [runs(row) for row in (out[..., 0] == MARK)]
    widths = {w for s in spans for _, w in s} | {0 for s in spans if not s}
    assert widths == {0, 1, 2, 3, 4}
    assert {st for s in spans for st, w in s if w == 4} == set(range(t - 4 + 1))


def test_seeded_masks_repeat_and_differ_across_seeds_and_samples() -> None:
    x, mask = batch()
    aug = spec_augment(freq_width=6, time_width=8)
    a, _ = aug(x, mask, generator=gen(5))
    b, _ = aug(x, mask, generator=gen(5))
    c, _ = aug(x, mask, generator=gen(6))
    assert torch.equal(a, b) and not torch.equal(a, c)
    held = TimeMasking(8, generator=gen(5))
    assert torch.equal(held(x, mask)[0], TimeMasking(8)(x, mask, generator=gen(5))[0])
    # Identical samples get their own masks.
    same = torch.randn(1, T, F).expand(B, T, F).contiguous()
    for aug1 in (TimeMasking(10, value=MARK), FrequencyMasking(8, value=MARK)):
        hit = aug1(same, generator=gen(7))[0] == MARK
        assert len({tuple(h.flatten().tolist()) for h in hit}) > B // 4


@pytest.mark.parametrize(
    "aug",
    [
        TimeMasking(max_width=0),
        TimeMasking(n_masks=0),
        TimeMasking(p=0.0),
        TimeMasking(max_fraction=0.0),
        FrequencyMasking(max_width=0),
        FrequencyMasking(p=0.0),
        spec_augment(freq_masks=0, time_masks=0),
    ],
)
def test_zero_width_count_or_probability_is_the_identity(aug: torch.nn.Module) -> None:
    x, mask = batch()
    out, mask_out = aug(x, mask, generator=gen(0))
    assert torch.equal(out, x) and mask_out is mask


def test_p_masks_about_that_share_of_the_samples() -> None:
    x = torch.randn(2000, 8, 4)
    hit = FrequencyMasking(max_width=4, n_masks=4, p=0.3, value=MARK)(x, generator=gen(8))[0]
    share = (hit == MARK).flatten(1).any(1).float().mean().item()
    assert 0.25 < share < 0.35  # p, less the rare rows whose four widths all came out 0


def test_mean_fill_is_the_rows_mean_over_real_steps_and_padding_never_leaks() -> None:
    x, mask = batch()
    x = x + 3.0
    x[~mask] = float("nan")  # garbage in the padding must not reach any output
    out, _ = TimeMasking(max_width=10)(x, mask, generator=gen(9))
    assert torch.isnan(out[~mask]).all() and torch.isfinite(out[mask]).all()
    changed = (out != x) & mask[..., None]
    for i in range(B):
        if changed[i].any():
            mean = x[i][mask[i]].mean()
            torch.testing.assert_close(out[i][changed[i]], mean.expand(int(changed[i].sum())))


def test_fixed_fill_value() -> None:
    x = torch.randn(8, 20, 6)
    out, _ = FrequencyMasking(3, value=0)(x, generator=gen(10))
    assert ((out == x) | (out == 0)).all()


@pytest.mark.parametrize("dtype", [torch.float64, torch.bfloat16, torch.float16])
def test_dtype_and_device_are_preserved(dtype: torch.dtype) -> None:
    x, mask = batch()
    aug = spec_augment(4, time_width=5, value=MARK)
    out, mask_out = aug(x.to(dtype), mask, generator=gen(11))
    assert out.dtype == dtype and out.device == x.device and mask_out is mask
    # Draws are float32 whatever the dtype: the masks are those of the float32 input.
    ref, _ = aug(x, mask, generator=gen(11))
    assert torch.equal(out == MARK, ref == MARK)


def test_works_inside_random_choice_and_compose() -> None:
    x, mask = batch()
    aug = RandomChoice([Compose([TimeMasking(5), FrequencyMasking(3)]), Identity()])
    out, mask_out = aug(x, mask, generator=gen(12))
    assert out.shape == x.shape and torch.equal(mask_out, mask)
    assert TimeMasking(5).to(torch.float64) is not None  # nn.Module machinery intact


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: TimeMasking(max_width=-1), "max_width"),
        (lambda: TimeMasking(max_width=2.5), "max_width"),
        (lambda: TimeMasking(n_masks=-1), "n_masks"),
        (lambda: TimeMasking(p=1.5), "p must"),
        (lambda: TimeMasking(max_fraction=1.5), "max_fraction"),
        (lambda: FrequencyMasking(value="zero"), "value"),
        (lambda: FrequencyMasking(value=float("nan")), "value"),
    ],
)
def test_bad_arguments_are_named(make, message: str) -> None:
    with pytest.raises(InputError, match=message):
        make()


def test_bad_inputs() -> None:
    with pytest.raises(InputError, match=r"\(B, T, F\)"):
        TimeMasking()(torch.randn(4, 10))
    with pytest.raises(InputError, match="float"):
        FrequencyMasking()(torch.ones(2, 5, 3, dtype=torch.long))
    with pytest.raises(InputError, match="mask shape"):
        TimeMasking()(torch.randn(2, 5, 3), torch.ones(2, 4, dtype=torch.bool))


@pytest.mark.gpu
def test_runs_on_cuda_with_either_generator() -> None:
    x, mask = batch()
    x, mask = x.cuda(), mask.cuda()
    for g in (gen(0), torch.Generator(device="cuda").manual_seed(0), None):
        out, mask_out = spec_augment(4, time_width=5)(x, mask, generator=g)
        assert out.device == x.device and mask_out.device == x.device
        assert torch.equal(out[~mask], x[~mask])
    a = spec_augment(4, time_width=5)(x, mask, generator=gen(3))[0]
    b = spec_augment(4, time_width=5)(x.cpu(), mask.cpu(), generator=gen(3))[0]
    assert torch.equal(a.cpu(), b)  # a CPU generator gives the CPU masks on CUDA
