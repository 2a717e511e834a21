import hashlib
import warnings

import numpy as np
import pytest
import torch

import mmfactor as mf
from mmfactor.data import trifeatures as tf
from mmfactor.data.batching import make_loader
from mmfactor.errors import InputError

SMALL = {"size": 16, "n": 300, "per_combination": 1}


@pytest.fixture(autouse=True)
def cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("MMFACTOR_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_arrays_targets_and_splits():
    data = mf.datasets.load("trifeatures", **SMALL)
    assert data.name == "trifeatures" and data.modality_names == ["x1", "x2"]
    for m in ("x1", "x2"):
        assert data.modalities[m].kind == "image" and data.modalities[m].shape == (3, 16, 16)
        assert data.arrays[m].dtype == np.uint8 and data.arrays[m].shape == (len(data), 3, 16, 16)
    assert data.target_names == [
        "shared",
        "unique:x1",
        "unique:x2",
        "synergy",
        "colour:x1",
        "colour:x2",
    ]
    assert data.default_target == "shared"
    assert data.target("shared").classes == tf.SHAPES
    assert data.target("unique:x2").task.n_classes == 10
    assert data.target("synergy").classes == ("0", "1")
    assert {k: len(v) for k, v in data.splits.items()} == {"train": 300, "valid": 43, "test": 75}
    every = np.concatenate(list(data.splits.values()))
    assert np.array_equal(np.sort(every), np.arange(len(data)))
    batch = next(iter(make_loader(data, data.indices("train"), 32, target="synergy")))
    assert batch.x["x1"].dtype == torch.float32 and 0 <= batch.x["x1"].min() <= 1
    assert batch.x["x2"].max() <= 1 and batch.x["x2"].max() > 0.9


def test_targets_follow_the_rendered_attributes():
    data = tf.load(seed=3, **SMALL)
    attrs = tf.pool_attributes(1)
    i1, i2 = data.meta["image:x1"], data.meta["image:x2"]
    mapping = tf.correlated_textures(3)
    assert sorted(mapping) == list(range(10))
    assert np.array_equal(attrs["shape"][i1], attrs["shape"][i2])  # pairs share the shape
    assert np.all(i1 != i2)
    assert np.array_equal(data.target("shared").values, attrs["shape"][i1])
    assert np.array_equal(data.target("unique:x1").values, attrs["texture"][i1])
    assert np.array_equal(data.target("unique:x2").values, attrs["texture"][i2])
    assert np.array_equal(data.target("colour:x1").values, attrs["colour"][i1])
    assert np.array_equal(data.target("colour:x2").values, attrs["colour"][i2])
    synergy = mapping[attrs["colour"][i1]] == attrs["texture"][i2]
    assert np.array_equal(data.target("synergy").values, synergy.astype(np.int64))
    pool = tf.image_pool(16, 1, 3)
    assert np.array_equal(data.arrays["x1"], pool[i1])
    assert np.array_equal(data.arrays["x2"], pool[i2])
    assert data.info["correlated_pairs"]["red"] == tf.TEXTURES[mapping[0]]


def test_deterministic_per_seed_and_different_across_seeds():
    a = tf.load(seed=1, cache=False, **SMALL)
    b = tf.load(seed=1, cache=False, **SMALL)
    c = tf.load(seed=2, cache=False, **SMALL)
    for m in ("x1", "x2"):
        assert np.array_equal(a.arrays[m], b.arrays[m])
        assert not np.array_equal(a.arrays[m], c.arrays[m])
    assert np.array_equal(a.target("synergy").values, b.target("synergy").values)
    assert not np.array_equal(tf.image_pool(16, 1, 1, False), tf.image_pool(16, 1, 2, False))


def _hashes(data, split):
    idx = data.indices(split)
    return {
        hashlib.sha256(data.arrays[m][i].tobytes()).hexdigest() for m in data.arrays for i in idx
    }


def test_no_test_image_in_train_or_valid():
    data = tf.load(**SMALL)
    test = _hashes(data, "test")
    assert test.isdisjoint(_hashes(data, "train")) and test.isdisjoint(_hashes(data, "valid"))
    assert _hashes(data, "valid").isdisjoint(_hashes(data, "train"))
    ids = {
        s: set(data.meta["image:x1"][idx]) | set(data.meta["image:x2"][idx])
        for s, idx in data.splits.items()
    }
    assert ids["test"].isdisjoint(ids["train"] | ids["valid"])
    # The image split: 70/10/20 of the pool, fixed by the seed alone.
    pools = tf.image_splits(1, 0)
    assert {k: len(v) for k, v in pools.items()} == {"train": 700, "valid": 100, "test": 200}
    assert ids["test"] <= set(pools["test"]) and ids["train"] <= set(pools["train"])


def test_biased_pairs_are_correlated_and_test_stays_unbiased():
    unbiased = tf.load(size=16, n=2000, per_combination=1)
    biased = tf.load(size=16, n=2000, per_combination=1, biased=True)
    y = unbiased.target("synergy").values
    assert 0.06 < y[unbiased.indices("train")].mean() < 0.14
    yb = biased.target("synergy").values
    assert yb[biased.indices("train")].all() and yb[biased.indices("valid")].all()
    assert biased.info["splits"]["test"].startswith("unbiased")
    # Same images, mapping and test pairs as the unbiased data set of the seed.
    test_u, test_b = unbiased.indices("test"), biased.indices("test")
    assert np.array_equal(unbiased.arrays["x1"][test_u], biased.arrays["x1"][test_b])
    assert np.array_equal(unbiased.meta["image:x2"][test_u], biased.meta["image:x2"][test_b])
    assert unbiased.info["correlated_pairs"] == biased.info["correlated_pairs"]
    # Biased train pairs still share the shape, with a uniform spread of colours.
    x1_colour = biased.target("colour:x1").values[biased.indices("train")]
    assert np.bincount(x1_colour, minlength=10).min() > 100


def test_pairs_are_distinct_and_capped_at_what_exists():
    rng = np.random.default_rng(0)
    groups = [(np.arange(4), np.arange(4)), (np.array([10, 11]), np.array([11, 12]))]
    i1, i2 = tf.draw_pairs(rng, groups, 100)  # 12 + 3 pairs of distinct images
    pairs = set(zip(i1.tolist(), i2.tolist(), strict=True))
    assert len(pairs) == len(i1) == 15 and all(a != b for a, b in pairs)
    assert (10, 10) not in pairs and (11, 11) not in pairs and (10, 12) in pairs
    j1, j2 = tf.draw_pairs(np.random.default_rng(0), groups, 5)
    assert len(j1) == 5 and len(set(zip(j1.tolist(), j2.tolist(), strict=True))) == 5
    few = tf.load(size=16, n=10_000, per_combination=1)
    assert any("allowed pairs" in note for note in few.info["notes"])


def test_the_cache_is_used_and_keyed_by_the_options(cache_dir, monkeypatch):
    first = tf.load(**SMALL)
    path = tf.cache_path(16, 1, 0)
    assert path.parent == cache_dir and path.exists()
    assert first.info["cache"] == str(path)

    def fail(*args, **kwargs):
        raise AssertionError("rendered although cached")

    monkeypatch.setattr(tf, "render_pool", fail)
    second = tf.load(**SMALL)
    assert np.array_equal(first.arrays["x1"], second.arrays["x1"])
    keys = {tf.cache_key(16, 1, 0), tf.cache_key(24, 1, 0), tf.cache_key(16, 2, 0)}
    assert len(keys | {tf.cache_key(16, 1, 1)}) == 4
    assert tf.cache_path(24, 1, 0) != path
    with pytest.raises(AssertionError, match="rendered although cached"):
        tf.load(size=24, n=300, per_combination=1)  # another size: another file
    monkeypatch.undo()
    assert not list(cache_dir.glob(".*"))  # no temporary file left behind


def test_a_corrupt_cache_is_rendered_again(cache_dir):
    fresh = tf.image_pool(16, 1, 0, cache=False)
    path = tf.cache_path(16, 1, 0)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"PK\x03\x04 not a zip file")
    with pytest.warns(UserWarning, match="is unusable"):
        images = tf.image_pool(16, 1, 0)
    assert np.array_equal(images, fresh)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert np.array_equal(tf.image_pool(16, 1, 0), fresh)  # rewritten, readable
    np.savez(path, images=fresh[:5], key=np.array(tf.cache_key(16, 1, 0)))
    with pytest.warns(UserWarning, match="not uint8"):
        tf.image_pool(16, 1, 0)


def test_no_cache_writes_nothing(cache_dir):
    tf.load(cache=False, **SMALL)
    assert not cache_dir.exists()


def test_cache_directory_order(monkeypatch, tmp_path):
    assert tf.cache_dir() == tmp_path / "cache"
    monkeypatch.delenv("MMFACTOR_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert tf.cache_dir() == tmp_path / "xdg" / "mmfactor"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert tf.cache_dir() == tmp_path / "home" / ".cache" / "mmfactor"


@pytest.mark.parametrize(
    "options, message",
    [
        ({"size": 8}, "size must be an integer in [16, 512] (pixels), got 8"),
        ({"size": 32.0}, "size must be an integer"),
        ({"n": 0}, "n must be an integer >= 10, got 0"),
        ({"per_combination": 0}, "per_combination must be an integer in [1, 100], got 0"),
        ({"biased": 1}, "biased must be true or false, got 1"),
        ({"seed": -1}, "seed must be an integer >= 0"),
        ({"cache": "no"}, "cache must be true or false"),
    ],
)
def test_bad_options_raise_input_errors(options, message):
    with pytest.raises(InputError) as info:
        tf.load(**options)
    text = str(info.value)
    assert text.startswith("trifeatures: ") and message in text and "\n" not in text


def test_registered():
    assert "trifeatures" in mf.datasets.available()
    options = mf.data.registry.loader_options("trifeatures")
    assert {"size", "n", "per_combination", "biased", "seed", "cache"} <= set(options)
    with pytest.raises(InputError, match="has no option 'pixels'"):
        mf.datasets.load("trifeatures", pixels=32)


def test_attributes_are_visible_at_32_px():
    """Colour from raw pixels (nearest centroid); shape and texture from translation-invariant
    linear features (spectra of the object's mask and of its marks): far above chance."""
    from sklearn.discriminant_analysis import LinearDiscriminantAnalysis

    rng = np.random.default_rng(1)
    n, tr, te = 1500, slice(0, 1000), slice(1000, None)
    shape, colour, texture = (rng.integers(0, 10, n) for _ in range(3))
    images = tf.render(shape, colour, texture, tf.draw_geometry(n, 5), 32).astype(np.float32)
    raw = images.reshape(n, -1) / 255
    centroids = np.stack([raw[tr][colour[tr] == k].mean(0) for k in range(10)])
    distances = ((raw[te, None, :] - centroids[None]) ** 2).sum(-1)
    assert (distances.argmin(1) == colour[te]).mean() > 0.9  # chance: 0.1

    rgb = np.asarray(list(tf.COLOURS.values()))[colour][:, :, None, None] * 255
    mask = np.abs(images - 128).max(axis=1) > 12
    marks = np.abs(images - rgb).sum(axis=1) * mask

    def accuracy(x: np.ndarray, y: np.ndarray) -> float:
        f = np.log1p(np.abs(np.fft.rfft2(x))).reshape(n, -1)
        f = (f - f[tr].mean(0)) / (f[tr].std(0) + 1e-6)
        lda = LinearDiscriminantAnalysis(solver="lsqr", shrinkage=0.1).fit(f[tr], y[tr])
        return float((lda.predict(f[te]) == y[te]).mean())

    assert accuracy(mask.astype(np.float32), shape) > 0.8  # chance: 0.1
    assert accuracy(marks, texture) > 0.5


def test_renderer_draws_the_object_inside_on_grey():
    n = 40
    zeros = np.zeros(n, dtype=np.int64)
    geometry = tf.draw_geometry(n, 0)
    images = tf.render(zeros + 3, zeros + 9, zeros, geometry, 24)  # white solid circles
    assert (images[:, :, 0, :] == 128).all() and (images[:, :, :, -1] == 128).all()  # borders
    white = (images == 255).all(axis=1).sum(axis=(1, 2))
    area = np.pi * (0.95 * tf.BOX / 2 * 24) ** 2
    assert np.all(np.abs(white - area) < 0.25 * area)
    # Pixels are where the placement says: the white mass is centred on the object's centre.
    ys, xs = np.mgrid[0:24, 0:24] + 0.5
    mass = (images[:, 0] > 128).astype(float)
    centre = (
        np.stack([(mass * xs).sum((1, 2)), (mass * ys).sum((1, 2))], 1) / mass.sum((1, 2))[:, None]
    )
    assert np.abs(centre - geometry["centre"] * 24).max() < 0.5
