"""CCA (closed form) and deep CCA: the canonical variates, streaming statistics, the
engine's closed-form path, two-modality restrictions."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import mmfactor as mf
from mmfactor.errors import InputError


def linear_data(n=1500, seed=0):
    return mf.datasets.load("linear", n=n, dims=[8, 6], common_rank=2, individual_rank=2, seed=seed)


def variates(model, data, split):
    factors = mf.encode(model, data, split=split)
    k = factors.shared.shape[1] // 2
    return factors.shared[:, :k], factors.shared[:, k:]


def test_cca_variates_are_white_and_pairwise_correlated():
    data = linear_data()
    model = mf.methods.build("cca", data.modalities, embed_dim=3, reg=0.0)
    mf.fit(model, data, progress=False)
    z1, z2 = variates(model, data, "train")
    np.testing.assert_allclose(np.cov(z1.T), np.eye(3), atol=1e-4)
    np.testing.assert_allclose(np.cov(z2.T), np.eye(3), atol=1e-4)
    cross = np.corrcoef(z1.T, z2.T)[:3, 3:]
    np.testing.assert_allclose(np.diag(cross), model.canonical_correlations, atol=1e-3)
    np.testing.assert_allclose(cross - np.diag(np.diag(cross)), 0.0, atol=1e-4)
    # Two common latents, noise 0.3 on unit loadings: corr = 1 / (1 + 0.09) twice, then ~0.
    assert model.canonical_correlations[:2] == pytest.approx([0.917, 0.917], abs=0.02)
    assert model.canonical_correlations[2] < 0.2  # chance level for 1050 rows


def test_cca_statistics_stream_over_batches():
    data = linear_data(n=600)
    fitted = []
    for batch_size in (7, 10_000):
        model = mf.methods.build("cca", data.modalities, embed_dim=2)
        mf.fit(model, data, batch_size=batch_size, progress=False)
        fitted.append(model.projections["x1"].weight.clone())
    torch.testing.assert_close(fitted[0], fitted[1], atol=1e-5, rtol=1e-4)


def test_cca_run_directory_holds_the_fitted_model(tmp_path):
    data = linear_data(n=300)
    model = mf.methods.build("cca", data.modalities, embed_dim=2)
    run = mf.fit(model, data, out=tmp_path, progress=False)
    assert run.epochs == 0 and (tmp_path / "model.pt").exists()
    state = torch.load(tmp_path / "model.pt", weights_only=True)
    torch.testing.assert_close(state["projections.x2.weight"], model.projections["x2"].weight)


def test_cca_and_dcca_refuse_what_they_cannot_relate():
    three = mf.from_arrays({m: np.zeros((20, 3)) for m in ("a", "b", "c")})
    for name in ("cca", "dcca"):
        with pytest.raises(InputError, match="exactly two modalities"):
            mf.methods.build(name, three.modalities, embed_dim=2)
    seq = mf.from_arrays({"a": np.zeros((20, 3)), "b": np.zeros((20, 4, 2))})
    with pytest.raises(InputError, match="sequence"):
        mf.methods.build("cca", seq.modalities, embed_dim=2)
    mf.methods.build("dcca", seq.modalities, embed_dim=2)  # a GRU gives fixed-width features
    with pytest.raises(InputError, match="exceeds"):
        mf.methods.build("cca", linear_data(n=50).modalities, embed_dim=7)


def test_dcca_finds_the_common_subspace_on_held_out_data():
    data = linear_data()
    torch.manual_seed(0)
    model = mf.methods.build("dcca", data.modalities, embed_dim=2, encoder_options={"hidden": [32]})
    run = mf.fit(model, data, max_epochs=40, batch_size=256, lr=3e-3, progress=False)
    z1, z2 = variates(model, data, "test")
    test_corr = np.diag(np.corrcoef(z1.T, z2.T)[:2, 2:])
    assert run.best_valid_loss < -1.6
    assert test_corr.min() > 0.8  # the truth is 0.917 twice
    # The final linear CCA orders the variates by their train correlation.
    assert model.canonical_correlations[0] >= model.canonical_correlations[1]
