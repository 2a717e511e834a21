import numpy as np
import pytest
from sklearn.base import clone

import mmfactor as mf
from mmfactor.errors import InputError


def views(n=300, seed=0):
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, 3))
    return [z @ rng.normal(size=(3, 12)), z @ rng.normal(size=(3, 9))], (z[:, 0] > 0).astype(int)


def test_params_and_clone():
    est = mf.FactorizedEmbedding(method="supervised", embed_dim=8, method_params={"dropout": 0})
    params = est.get_params()
    assert params["method"] == "supervised" and params["embed_dim"] == 8
    est.set_params(embed_dim=4)
    twin = clone(est)
    # exact: clone copies the parameters (lr, valid_fraction: floats), it computes none
    assert twin.get_params() == est.get_params() and twin is not est


def test_fit_transform_shapes():
    Xs, y = views()
    est = mf.FactorizedEmbedding(method="supervised", embed_dim=8, max_epochs=2)
    out = est.fit(Xs, y).transform(Xs)
    assert out.shape == (300, 16) and np.isfinite(out).all()
    assert est.transform_factors(Xs).specific["x2"].shape == (300, 8)
    with pytest.raises(InputError, match="differ from fit"):
        est.transform([Xs[0], Xs[1][:, :5]])


def test_errors():
    Xs, _ = views()
    with pytest.raises(InputError, match="needs labels"):
        mf.FactorizedEmbedding(method="supervised").fit(Xs)
    with pytest.raises(InputError, match="list of at least two arrays"):
        mf.FactorizedEmbedding().fit(Xs[0])
    with pytest.raises(InputError, match="no specific factors"):
        mf.FactorizedEmbedding(method="clip", embed_dim=4, max_epochs=1, output="specific").fit(
            Xs
        ).transform(Xs)
