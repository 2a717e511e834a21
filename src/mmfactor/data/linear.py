"""``linear``: two views with known common and individual loadings and isotropic noise, the
setting in which joint-and-individual methods (JIVE/AJIVE, MUCMM's linear analysis) can be
checked against the truth.

For each modality m::

    x_m = A_m z_c + B_m z_m + noise * e_m,      z_c ~ N(0, I_k), z_m ~ N(0, I_r), e_m ~ N(0, I)

where ``[A_m B_m]`` has orthonormal columns times ``signal`` (a random rotation), so the
covariance of ``x_m`` is ``signal^2 P + noise^2 I`` with P the projection on the signal
subspace: isotropic inside it. ``data.info["loadings"]`` holds ``A_m`` under
``common:<m>`` and ``B_m`` under ``individual:<m>`` (lists of rows, ``(D_m, k)`` and
``(D_m, r)``); ``data.latents`` holds ``z_c`` (``common``) and ``z_m`` (``individual:<m>``).

Targets: ``common`` (classes: the sign of the first common latent) and ``individual:<m>``
(the sign of modality m's first individual latent).

Example:
    >>> import numpy as np, mmfactor as mf
    >>> data = mf.datasets.load("linear", n=100, dims=[6, 5], common_rank=2, individual_rank=1)
    >>> np.asarray(data.info["loadings"]["common:x2"]).shape
    (5, 2)
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from mmfactor.checks import check_float, check_int
from mmfactor.data.arrays import as_target, random_splits
from mmfactor.data.dataset import ModalitySpec, MultimodalDataset
from mmfactor.errors import InputError


def load_linear(
    n: int = 2000,
    dims: Sequence[int] = (20, 20),
    common_rank: int = 2,
    individual_rank: int = 2,
    signal: float = 1.0,
    noise: float = 0.3,
    seed: int = 0,
) -> MultimodalDataset:
    """Linear two-or-more-view data with known loadings (module doc).

    Args:
        n: samples (70/15/15 train/valid/test).
        dims: feature count of each modality (``x1``, ``x2``, ...); each at least
            ``common_rank + individual_rank``.
        common_rank, individual_rank: k and r.
        signal, noise: scale of the loadings and standard deviation of the noise.
        seed: seeds loadings, latents, noise and splits.
    """
    for name, value in (
        ("n", n),
        ("common_rank", common_rank),
        ("individual_rank", individual_rank),
    ):
        check_int("linear", name, value, minimum=1)
    dims = [int(d) for d in dims]
    if len(dims) < 2 or min(dims) < common_rank + individual_rank:
        raise InputError(
            f"linear: dims needs two or more widths of at least common_rank + individual_rank "
            f"= {common_rank + individual_rank}, got {dims}"
        )
    check_float("linear", "signal", signal, minimum=0, min_open=True)
    check_float("linear", "noise", noise, minimum=0)
    rng = np.random.default_rng(seed)
    z_common = rng.standard_normal((n, common_rank))
    arrays, loadings, latents = {}, {}, {"common": z_common}
    targets = {
        "common": as_target("common", (z_common[:, 0] > 0).astype(np.int64), "classification")
    }
    for i, d in enumerate(dims, start=1):
        m = f"x{i}"
        basis, _ = np.linalg.qr(rng.standard_normal((d, common_rank + individual_rank)))
        a, b = signal * basis[:, :common_rank], signal * basis[:, common_rank:]
        z_m = rng.standard_normal((n, individual_rank))
        x = z_common @ a.T + z_m @ b.T + noise * rng.standard_normal((n, d))
        arrays[m] = x.astype(np.float32)
        loadings[f"common:{m}"] = a.tolist()
        loadings[f"individual:{m}"] = b.tolist()
        latents[f"individual:{m}"] = z_m
        targets[f"individual:{m}"] = as_target(
            f"individual:{m}", (z_m[:, 0] > 0).astype(np.int64), "classification"
        )
    return MultimodalDataset(
        modalities={m: ModalitySpec(m, "vector", (x.shape[1],)) for m, x in arrays.items()},
        arrays=arrays,
        targets=targets,
        splits=random_splits(n, seed=seed),
        latents=latents,
        info={"loadings": loadings, "splits": "random 70/15/15, seeded"},
        name="linear",
        default_target="common",
    )
