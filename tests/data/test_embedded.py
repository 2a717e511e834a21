"""The embedded real data sets ``uci-mfeat`` and ``nutrimouse``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from mmfactor.data import embedded
from mmfactor.errors import InputError

SHARED_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"


def test_files_ship_inside_the_package():
    package = Path(embedded.__file__).resolve().parent
    for name in ("uci_mfeat.npz", "nutrimouse.npz"):
        path = embedded.FILES / name
        assert path.is_file() and package in path.parents


def test_uci_mfeat_default_views():
    data = embedded.load_uci_mfeat()
    assert data.name == "uci-mfeat"
    assert data.modality_names == ["fou", "pix"]
    assert data.arrays["fou"].shape == (2000, 76) and data.arrays["pix"].shape == (2000, 240)
    assert all(a.dtype == np.float32 and np.isfinite(a).all() for a in data.arrays.values())
    digit = data.target("digit")
    assert data.default_target == "digit"
    assert digit.kind == "classification" and digit.classes == tuple(str(d) for d in range(10))
    # Class order: 200 digits of each class in turn.
    np.testing.assert_array_equal(digit.values, np.repeat(np.arange(10), 200))
    assert "R. Duin" in data.info["source"] and "CC BY 4.0" in data.info["source"]
    json.dumps(data.info)


def test_uci_mfeat_all_views_and_stratified_splits():
    data = embedded.load_uci_mfeat(views=["fou", "fac", "kar", "pix", "zer", "mor"], seed=3)
    assert {m: a.shape[1] for m, a in data.arrays.items()} == embedded.MFEAT_VIEWS
    y = data.targets["digit"].values
    expected = {"train": 140, "valid": 30, "test": 30}
    for split, per_class in expected.items():
        np.testing.assert_array_equal(
            np.bincount(y[data.splits[split]], minlength=10), np.full(10, per_class)
        )
    everything = np.concatenate([data.splits[s] for s in expected])
    np.testing.assert_array_equal(np.sort(everything), np.arange(2000))
    again = embedded.load_uci_mfeat(views=["mor"], seed=3)
    np.testing.assert_array_equal(again.splits["test"], data.splits["test"])
    other = embedded.load_uci_mfeat(views="mor", seed=4)
    assert other.modality_names == ["mor"]
    assert not np.array_equal(other.splits["test"], data.splits["test"])


@pytest.mark.parametrize("views", [["fou", "nope"], [], ["pix", "pix"], 3])
def test_uci_mfeat_bad_views(views):
    with pytest.raises(InputError, match="views") as err:
        embedded.load_uci_mfeat(views=views)
    if views == ["fou", "nope"]:
        assert "'nope'" in str(err.value) and "fac" in str(err.value) and "mor" in str(err.value)


def test_nutrimouse_views_and_targets():
    data = embedded.load_nutrimouse()
    assert data.name == "nutrimouse" and data.default_target == "diet"
    assert data.arrays["gene"].shape == (40, 120) and data.arrays["lipid"].shape == (40, 21)
    assert data.targets["diet"].classes == ("coc", "fish", "lin", "ref", "sun")
    assert data.targets["genotype"].classes == ("ppar", "wt")
    np.testing.assert_array_equal(np.bincount(data.targets["diet"].values), np.full(5, 8))
    names = data.info["feature_names"]
    assert len(names["gene"]) == 120 and len(names["lipid"]) == 21 and "C16.0" in names["lipid"]
    json.dumps(data.info)
    only = embedded.load_nutrimouse(views=["lipid"])
    assert only.modality_names == ["lipid"]


def test_nutrimouse_cross_validation_folds():
    tests, diet = [], None
    for fold in range(5):
        data = embedded.load_nutrimouse(seed=1, fold=fold)
        diet = data.targets["diet"].values
        sizes = {k: len(v) for k, v in data.splits.items()}
        assert sizes == {"train": 24, "valid": 8, "test": 8}
        parts = np.concatenate([data.splits[s] for s in ("train", "valid", "test")])
        np.testing.assert_array_equal(np.sort(parts), np.arange(40))
        # Stratified: every diet appears in each test and valid fold.
        for split in ("valid", "test"):
            assert set(diet[data.splits[split]]) == set(range(5))
        tests.append(data.splits["test"])
    # The test folds partition the mice.
    np.testing.assert_array_equal(np.sort(np.concatenate(tests)), np.arange(40))
    # Another seed is another repetition.
    other = embedded.load_nutrimouse(seed=2, fold=0)
    assert not np.array_equal(other.splits["test"], tests[0])
    ten = embedded.load_nutrimouse(fold=9, n_folds=10)
    assert len(ten.splits["test"]) == 4 and len(ten.splits["valid"]) == 4


@pytest.mark.parametrize(
    ("options", "option"),
    [
        ({"fold": 5}, "fold"),
        ({"fold": -1}, "fold"),
        ({"n_folds": 2}, "n_folds"),
        ({"views": ["gene", "rna"]}, "views"),
        ({"seed": "a"}, "seed"),
    ],
)
def test_nutrimouse_bad_options(options, option):
    with pytest.raises(InputError, match=option):
        embedded.load_nutrimouse(**options)


def test_stratified_folds_balance_every_stratum():
    strata = np.repeat(np.arange(4), [10, 7, 3, 20])
    folds = embedded.stratified_folds(strata, 5, seed=0)
    assert np.bincount(folds).tolist() == [8] * 5
    for s in range(4):
        counts = np.bincount(folds[strata == s], minlength=5)
        assert counts.max() - counts.min() <= 1


@pytest.mark.skipif(not SHARED_DATA.is_dir(), reason="raw CSVs not available")
def test_embedded_files_match_the_raw_csvs():
    raw = embedded.read_embedded("uci_mfeat")
    for view in embedded.MFEAT_VIEWS:
        csv = np.loadtxt(SHARED_DATA / "uci-mfeat" / f"mfeat-{view}.csv", delimiter=",", skiprows=1)
        np.testing.assert_allclose(raw[view], csv[:, :-1], rtol=1e-6)
        np.testing.assert_array_equal(raw["digit"], csv[:, -1])
    nm = embedded.read_embedded("nutrimouse")
    for view in ("gene", "lipid"):
        path = SHARED_DATA / "nutrimouse" / f"{view}.csv"
        np.testing.assert_allclose(nm[view], np.loadtxt(path, delimiter=",", skiprows=1), rtol=1e-6)
        header = path.read_text().splitlines()[0].replace('"', "").split(",")
        assert nm[f"{view}_names"].tolist() == header
    for target in ("genotype", "diet"):
        lines = (SHARED_DATA / "nutrimouse" / f"{target}.csv").read_text().split()
        assert nm[target].tolist() == [v.strip('"') for v in lines[1:]]
