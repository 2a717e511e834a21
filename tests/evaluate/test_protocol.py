import numpy as np
import pytest

import mmfactor as mf
from mmfactor.errors import InputError
from mmfactor.evaluate import factor_target_table, format_table
from mmfactor.evaluate.reference import RawFeatures


def test_raw_reference_records_and_missing(toy_seq):
    records = mf.evaluate(RawFeatures(), toy_seq, targets=["y", "u1"], missing=["x1"])
    acc = {
        (r["factors"], r["target"], tuple(r["missing"])): r["value"]
        for r in records
        if r["metric"] == "accuracy"
    }
    assert set(f for f, _, _ in acc) == {"specific:x1", "specific:x2", "all"}
    # u1 is a latent only x1 sees: x1's raw features predict it, and dropping x1 loses it
    assert acc[("specific:x1", "u1", ())] > 0.8
    assert acc[("all", "u1", ("x1",))] < acc[("all", "u1", ())] - 0.2
    assert all(r["split"] == "test" and r["method"] == "raw" for r in records)


def test_factor_target_table(toy):
    records = mf.evaluate(RawFeatures(), toy, targets=["y", "u1"])
    table = factor_target_table(records)
    assert table["specific:x1"]["u1"] > table["specific:x2"]["u1"]
    text = format_table(table)
    assert text.splitlines()[0] == "| factors | u1 | y |"


def test_evaluate_validates_names(toy):
    with pytest.raises(InputError, match="no target 'nope'"):
        mf.evaluate(RawFeatures(), toy, targets=["nope"])
    with pytest.raises(InputError, match="--missing 'x9'"):
        mf.evaluate(RawFeatures(), toy, missing=["x9"])
    with pytest.raises(InputError, match="unknown protocol"):
        mf.evaluate(RawFeatures(), toy, protocol="svm")
    with pytest.raises(InputError, match="no factor block 'shared'"):
        mf.evaluate(RawFeatures(), toy, factors=["shared"])


def test_encode_returns_numpy_in_order(toy):
    factors = mf.encode(RawFeatures(), toy, split="test")
    assert isinstance(factors.specific["x1"], np.ndarray)
    assert np.allclose(factors.specific["x1"], toy.arrays["x1"][toy.indices("test")])


def test_latent_table_finds_each_modality_s_own_latents():
    from mmfactor.evaluate.protocol import latent_table

    data = mf.datasets.load("synthetic", n=1500, noise=0.1)
    table = latent_table(RawFeatures(), data)
    assert table["specific:x1"]["unique:x1"] > 0.1
    assert abs(table["specific:x1"]["unique:x2"]) < 0.05  # x1 holds nothing of w_2
    assert table["all"]["shared"] > table["specific:x1"]["shared"]
    with pytest.raises(InputError, match="no ground-truth latents"):
        latent_table(RawFeatures(), mf.datasets.load("nutrimouse"))
