import numpy as np
import pytest

import mmfactor as mf
from mmfactor.errors import InputError


def test_linear_views_have_the_stated_loadings_and_covariance():
    data = mf.datasets.load(
        "linear",
        n=20000,
        dims=[7, 5],
        common_rank=2,
        individual_rank=1,
        signal=2.0,
        noise=0.5,
        seed=3,
    )
    a = np.asarray(data.info["loadings"]["common:x1"])
    b = np.asarray(data.info["loadings"]["individual:x1"])
    basis = np.hstack([a, b]) / 2.0
    np.testing.assert_allclose(basis.T @ basis, np.eye(3), atol=1e-12)
    # Cov(x1) = 4 P + 0.25 I: isotropic inside the signal subspace.
    expected = 4.0 * basis @ basis.T + 0.25 * np.eye(7)
    np.testing.assert_allclose(np.cov(data.arrays["x1"].T), expected, atol=0.12)
    x1 = data.arrays["x1"] - data.latents["common"] @ a.T - data.latents["individual:x1"] @ b.T
    assert np.std(x1) == pytest.approx(0.5, rel=0.02)
    assert set(data.targets) == {"common", "individual:x1", "individual:x2"}


def test_linear_rejects_bad_options():
    with pytest.raises(InputError, match="dims"):
        mf.datasets.load("linear", dims=[3, 20], common_rank=2, individual_rank=2)
    with pytest.raises(InputError, match="n must"):
        mf.datasets.load("linear", n=0)
    with pytest.raises(InputError, match="noise"):
        mf.datasets.load("linear", noise=-1.0)
