import numpy as np
import pytest
import torch

import mmfactor as mf
from mmfactor.data.batching import BatchIndexSampler, make_loader
from mmfactor.errors import InputError
from mmfactor.evaluate.protocol import with_test_noise


def test_from_arrays_infers_kinds_and_splits(toy_seq):
    assert toy_seq.modalities["x1"].kind == "vector"
    assert toy_seq.modalities["x2"].kind == "sequence"
    assert toy_seq.modalities["x2"].shape == (10,)
    sizes = {k: len(v) for k, v in toy_seq.splits.items()}
    assert sizes == {"train": 280, "valid": 60, "test": 60}
    all_idx = np.concatenate(list(toy_seq.splits.values()))
    assert len(np.unique(all_idx)) == len(toy_seq)
    # stratified: both classes in every split at about the same rate
    y = toy_seq.target("y").values
    rates = [y[idx].mean() for idx in toy_seq.splits.values()]
    assert max(rates) - min(rates) < 0.05


@pytest.mark.parametrize(
    "arrays, message",
    [
        ({"a": np.zeros((5, 2)), "b": np.zeros((6, 2))}, "different numbers of samples"),
        ({"a": np.full((5, 2), np.nan), "b": np.zeros((5, 2))}, "'a': contains NaN"),
        ({"a": np.zeros((5, 2)), "b": np.array([["x"]] * 5)}, "'b': expected a numeric"),
        ({"a": np.zeros(5), "b": np.zeros((5, 2))}, "cannot infer a kind"),
    ],
)
def test_from_arrays_rejects_bad_input(arrays, message):
    with pytest.raises(InputError, match=message):
        mf.from_arrays(arrays, y=np.arange(5) % 2)


def test_target_length_must_match():
    with pytest.raises(InputError, match="target 'y' has 4 values for 5 samples"):
        mf.from_arrays({"a": np.zeros((5, 2)), "b": np.zeros((5, 2))}, y=np.arange(4))


def test_batches_trim_padding_and_carry_masks(toy_seq):
    loader = make_loader(toy_seq, toy_seq.indices("train"), 32, target="y")
    batch = next(iter(loader))
    lengths = toy_seq.lengths["x2"][batch.index.numpy()]
    assert batch.x["x2"].shape == (32, lengths.max(), 10)
    assert torch.equal(batch.mask["x2"].sum(1), torch.as_tensor(lengths))
    assert batch.y.shape == (32,) and batch.present["x1"].all()


def test_missing_sets_presence_flags(toy):
    dropped = toy.with_missing(["x2"])
    assert not dropped.present["x2"].any() and dropped.present["x1"].all()
    with pytest.raises(InputError, match="cannot drop modality 'x3'"):
        toy.with_missing(["x3"])


def test_sampler_shards_global_batches_across_ranks():
    idx = np.arange(20)
    full = list(BatchIndexSampler(idx, 8, shuffle=True, seed=3))
    ranks = [
        list(BatchIndexSampler(idx, 8, shuffle=True, seed=3, rank=r, world_size=2))
        for r in range(2)
    ]
    assert len(ranks[0]) == len(ranks[1]) == 2  # the remainder is dropped under DDP
    for b in range(2):
        assert np.array_equal(np.concatenate([ranks[0][b], ranks[1][b]]), full[b])


def test_sampler_epochs_differ_and_repeat():
    s = BatchIndexSampler(np.arange(50), 10, shuffle=True, seed=0)
    first = np.concatenate(list(s))
    s.set_epoch(1)
    second = np.concatenate(list(s))
    s.set_epoch(0)
    assert not np.array_equal(first, second)
    assert np.array_equal(first, np.concatenate(list(s)))


def test_labeled_flags_only_when_the_batch_has_unlabeled_samples(toy):
    train = toy.indices("train")
    full = next(iter(make_loader(toy, train, 32, target="y")))
    assert full.labeled is None
    mixed = next(iter(make_loader(toy, train, 32, target="y", unlabeled=train[::2])))
    assert mixed.labeled is not None
    assert torch.equal(mixed.labeled, ~torch.isin(mixed.index, torch.as_tensor(train[::2])))


def test_sampler_adds_pool_samples_to_every_batch_and_shards_them():
    idx, pool = np.arange(40), np.arange(100, 130)
    full = list(BatchIndexSampler(idx, 8, shuffle=True, seed=1, pool=pool, pool_per_batch=16))
    assert len(full) == 5 and all(len(b) == 24 for b in full)
    assert all(np.isin(b[:8], idx).all() and np.isin(b[8:], pool).all() for b in full)
    drawn = np.concatenate([b[8:] for b in full])  # 80 draws from 30: cycled permutations
    assert np.array_equal(np.sort(drawn[:30]), pool) and np.array_equal(np.sort(drawn[30:60]), pool)
    ranks = [
        list(
            BatchIndexSampler(
                idx, 8, shuffle=True, seed=1, rank=r, world_size=2, pool=pool, pool_per_batch=16
            )
        )
        for r in range(2)
    ]
    for b in range(5):
        parts = [ranks[r][b] for r in range(2)]
        assert all(len(p) == 12 for p in parts)
        assert np.array_equal(np.sort(np.concatenate(parts)), np.sort(full[b]))
    with pytest.raises(ValueError, match="multiple of the 2 processes"):
        BatchIndexSampler(idx, 8, True, world_size=2, pool=pool, pool_per_batch=3)
    with pytest.raises(ValueError, match="non-empty pool"):
        BatchIndexSampler(idx, 8, True, pool_per_batch=4)


def test_fit_with_unlabeled_ratio_needs_an_unlabeled_split(toy):
    model = mf.methods.build("supervised", toy.modalities, embed_dim=8)
    with pytest.raises(InputError, match="no 'unlabeled' split"):
        mf.fit(model, toy, max_epochs=1, unlabeled_ratio=1.0, progress=False)
    with pytest.raises(InputError, match=r"unlabeled_ratio must be a number in \[0, 1000000\)"):
        mf.fit(model, toy, max_epochs=1, unlabeled_ratio=-1, progress=False)


def test_uint8_images_reach_batches_as_floats_in_unit_range_and_noise_keeps_the_scale():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (40, 3, 4, 4), dtype=np.uint8)
    counts = rng.integers(0, 256, (40, 2), dtype=np.uint8)  # 8-bit vectors are not rescaled
    data = mf.from_arrays(
        {"img": images, "counts": counts},
        rng.integers(0, 2, 40),
        kinds={"img": "image", "counts": "vector"},
    )
    batch = next(iter(make_loader(data, np.arange(40), 40, target="y")))
    rows = batch.index.numpy()
    assert batch.x["img"].dtype == torch.float32
    # Exact: one float32 division of each byte, the same on every platform.
    assert torch.equal(batch.x["img"], torch.as_tensor(images[rows], dtype=torch.float32) / 255)
    assert torch.equal(batch.x["counts"], torch.as_tensor(counts[rows]))
    noisy = with_test_noise(data, 0.1)
    test = data.indices("test")
    assert np.abs(noisy.arrays["img"][test] - images[test] / 255).max() < 1.0  # [0, 1] scale
