"""Factor dependence: MI by an independent estimator, linear (CCA) and kernel (HSIC)."""

from __future__ import annotations

import numpy as np
import pytest

import mmfactor as mf
from mmfactor.diagnostics import factor_dependence, hsic, top_canonical_correlation
from mmfactor.errors import InputError


@pytest.fixture(scope="module")
def cases():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(2000, 2))
    return {
        "independent": (a, rng.normal(size=(2000, 3))),
        "linear": (a, a @ rng.normal(size=(2, 3)) + 0.1 * rng.normal(size=(2000, 3))),
        # symmetric in a, so uncorrelated with it: only a non-linear measure sees it
        "quadratic": (a, a**2 + 0.1 * rng.normal(size=(2000, 2))),
    }


def test_cca_sees_linear_dependence_only(cases):
    assert top_canonical_correlation(*cases["linear"]) > 0.95
    assert top_canonical_correlation(*cases["independent"]) < 0.1
    assert top_canonical_correlation(*cases["quadratic"]) < 0.1


def test_hsic_sees_non_linear_dependence(cases):
    none = hsic(*cases["independent"])
    assert hsic(*cases["quadratic"]) > 10 * none
    assert hsic(*cases["linear"]) > 10 * none
    assert hsic(*cases["independent"], max_rows=200) >= 0  # subsampled


def test_factor_dependence_pairs_and_mi():
    rng = np.random.default_rng(1)
    s = rng.normal(size=(2000, 2))
    blocks = {
        "shared": s,
        "specific:x1": s**2 + 0.1 * rng.normal(size=(2000, 2)),
        "specific:x2": rng.normal(size=(2000, 2)),
        "all": np.zeros((2000, 1)),  # left out
    }
    out = factor_dependence(blocks, steps=300)
    assert set(out) == {
        ("shared", "specific:x1"),
        ("shared", "specific:x2"),
        ("specific:x1", "specific:x2"),
    }
    dependent, independent = out[("shared", "specific:x1")], out[("shared", "specific:x2")]
    assert dependent["mi"] > 0.5 and independent["mi"] < 0.1
    assert dependent["cca"] < 0.15  # non-linear only
    with pytest.raises(InputError, match="two factor blocks"):
        factor_dependence({"shared": s})
    with pytest.raises(InputError, match="different numbers of rows"):
        factor_dependence({"shared": s, "specific:x1": s[:10]})


def test_accepts_the_factors_of_a_model(toy):
    model = mf.methods.build("supervised", toy.modalities, embed_dim=4, task=toy.target().task)
    out = factor_dependence(mf.encode(model, toy), steps=20, batch_size=32)
    assert set(out) == {("specific:x1", "specific:x2")}
    assert all(np.isfinite(v) for v in out[("specific:x1", "specific:x2")].values())
