"""``factorcl-synthetic``: the generator released with FactorCL (Liang et al., NeurIPS 2023).

Latents ``w_s`` in R^10 and ``w_1``, ``w_2`` in R^6, each ``N(0, 0.5 I)``. We read ``0.5 I``
as the *covariance* (variance 0.5, standard deviation ``sqrt(0.5)``), as the released code
does: ``np.random.multivariate_normal(zeros(d), np.eye(d) * 0.5)`` (its comment calls 0.5 a
standard deviation, but the value is passed as the covariance). The scale does not change the
labels, only the feature scale.

Observations ``x_m = [w_s; w_m] T_m`` with ``T_m`` ``(16, 100)``, entries ``U[0, 1]`` drawn
once per seed, no noise; label ``y = 1[sum(w_s) + sum(w_1) + sum(w_2) >= 0]``.

Splits: a random 80/20 train/test split as in the paper; the ``valid`` split is carved out of
the 80% (10% of it, i.e. 8% of all samples), so ``train`` is 72%, ``valid`` 8%, ``test`` 20%
(for ``n=30000``: 21600 / 2400 / 6000).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from mmfactor.checks import check_int
from mmfactor.data.arrays import random_splits
from mmfactor.data.dataset import ModalitySpec, MultimodalDataset, Target

D_SHARED, D_UNIQUE, DIM = 10, 6, 100
VARIANCE = 0.5  # the covariance of every latent is VARIANCE * I
TEST_FRACTION = 0.2
VALID_OF_TRAIN = 0.1  # share of the 80% train part held out for validation


def load(seed: int = 0, n: int = 30000) -> MultimodalDataset:
    """The FactorCL synthetic data set.

    Returns:
        A :class:`MultimodalDataset` named ``"factorcl-synthetic"``: vector modalities ``x1``,
        ``x2`` ``(n, 100)`` float32; target ``"y"`` (binary, classes ``"0"``, ``"1"``);
        latents ``{"shared": (n, 10), "unique:x1": (n, 6), "unique:x2": (n, 6)}``; splits
        train/valid/test 72/8/20%.

    Raises:
        InputError: ``seed`` not a non-negative integer or ``n`` below 10.
    """
    seed = check_int("factorcl-synthetic", "seed", seed, minimum=0)
    n = check_int("factorcl-synthetic", "n", n, minimum=10)
    # Separate streams: the transforms depend on the seed only, not on n.
    t_rng = np.random.default_rng([seed, 0])
    transforms = [t_rng.uniform(0.0, 1.0, (D_SHARED + D_UNIQUE, DIM)) for _ in range(2)]
    rng = np.random.default_rng([seed, 1])
    std = math.sqrt(VARIANCE)
    w_s = rng.standard_normal((n, D_SHARED)) * std
    w_u = [rng.standard_normal((n, D_UNIQUE)) * std for _ in range(2)]
    x = [np.concatenate([w_s, w], axis=1) @ t for w, t in zip(w_u, transforms, strict=True)]
    y = (w_s.sum(1) + w_u[0].sum(1) + w_u[1].sum(1) >= 0).astype(np.int64)

    test = TEST_FRACTION
    splits = random_splits(n, seed=seed, valid=(1 - test) * VALID_OF_TRAIN, test=test)
    info: dict[str, Any] = {
        "options": {"seed": seed, "n": n},
        "generator": "FactorCL synthetic (Liang et al., NeurIPS 2023, released code)",
        "latents": {"shared": D_SHARED, "unique:x1": D_UNIQUE, "unique:x2": D_UNIQUE},
        "latent_covariance": f"{VARIANCE} * I (variance {VARIANCE}, std sqrt({VARIANCE}))",
        "transforms": {
            "shape": [D_SHARED + D_UNIQUE, DIM],
            "entries": "U[0, 1]",
            "seeding": "numpy default_rng([seed, 0])",
        },
        "label": "1[sum(w_s) + sum(w_1) + sum(w_2) >= 0]",
        "splits": "random 80/20 train/test; valid = 10% of the train part (72/8/20)",
    }
    return MultimodalDataset(
        modalities={m: ModalitySpec(m, "vector", (DIM,)) for m in ("x1", "x2")},
        arrays={"x1": x[0].astype(np.float32), "x2": x[1].astype(np.float32)},
        targets={"y": Target("y", y, "classification", ("0", "1"))},
        splits=splits,
        latents={
            "shared": w_s.astype(np.float32),
            "unique:x1": w_u[0].astype(np.float32),
            "unique:x2": w_u[1].astype(np.float32),
        },
        info=info,
        name="factorcl-synthetic",
        default_target="y",
    )
