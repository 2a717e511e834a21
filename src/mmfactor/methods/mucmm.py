"""``mucmm``: Multimodal Understanding through Correlation Maximization and Minimization
(Shi & Niethammer, arXiv 2305.03125, 2023).

Only the abstract is public (no equations, no code), so every choice below is ours, a
reading of the abstract, and marked *design choice*. The abstract's elements: a lightweight
head on any pre-trained encoder; common representations found by correlation
maximisation, individual ones by correlation minimisation; scores that summarise them and
the gradients of those scores on the input.

- **Encoders** ``f_m``: any ``torch.nn.Module`` per modality (``encoders={m: module}``,
  frozen by default, so only the heads train), or precomputed embeddings as a vector
  modality (``encoder={"vector": "identity"}``), or the family's encoders (trained with the
  heads).
- **Heads** (*design choice*: linear by default, ``head_hidden`` for an MLP):
  common ``c_m = g^c_m(f_m(x_m))`` ``(B, k)``, individual ``u_m = g^u_m(f_m(x_m))``
  ``(B, r)``, each standardised by batch statistics in training and running statistics at
  evaluation (``BatchNorm1d`` without affine, its statistics over every process's rows
  under data parallelism): ``c~_m``, ``u~_m``.
- **Correlation maximisation** over every pair of modalities (*design choice*, two
  options): ``pearson`` (default): ``-mean_j corr(c_mj, c_nj)``, plus ``decorrelation``
  times the mean squared off-diagonal correlation inside each ``c_m``, so the k coordinates
  do not all follow the strongest common direction; or ``dcca``: minus the total canonical
  correlation of ``c_m`` and ``c_n`` divided by k (:class:`TotalCorrelation`).
- **Correlation minimisation** (*design choice*): the mean squared Pearson correlation
  between the coordinates of ``u_m`` and those of ``c_m``, of every ``c_n`` and of every
  ``u_n`` (n != m); ``decorrelation`` also applies inside ``u_m``.
- **Reconstruction against collapse** (*design choice*): a linear decoder rebuilds the
  batch-centred features ``f_m(x_m)`` (detached) from ``[c~_m ; u~_m]``; the error is the
  squared error over the features' total batch variance (the share of variance left
  unexplained, 1 for a decoder that outputs 0), so its scale does not depend on the
  encoder's. Without it ``u_m`` could satisfy the minimisation by carrying
  nothing.

Objective::

    L = L_max + individual_weight * L_min + rec_weight * L_rec

**Scores** per sample (spec): common ``s_c = sum_j c~_1j c~_2j`` (the mean over pairs of
modalities for more than two) and individual ``s_u,m = 0.5 ||u~_m||^2``; large ``s_c``: the
modalities agree strongly on this sample; large ``s_u,m``: modality m holds much that the
others do not explain. :func:`mmfactor.interpret.score_gradients` draws their gradients on
the input. In the linear setting (identity encoders, linear heads) ``grad_x1 s_c`` lies in
the span of the common head's weights and ``grad_x1 s_u,1`` in that of the individual
head's (tested on ``linear`` data against the true loadings).

Factors: ``shared`` = ``[c~_1 ; ... ; c~_M]`` ``(B, M k)`` (every modality's common code, as
the CCA baselines), ``specific[m]`` = ``u~_m`` ``(B, r)``, ``extras``: ``score:common`` and
``score:<m>`` ``(B,)``. An absent modality's codes are zero and it leaves the scores' sums.

Example:
    >>> import mmfactor as mf
    >>> data = mf.datasets.load("linear", n=400)
    >>> model = mf.methods.build("mucmm", data.modalities, embed_dim=2, individual_dim=2,
    ...                          encoder={"vector": "identity"})
    >>> run = mf.fit(model, data, max_epochs=2, progress=False)
    >>> sorted(mf.encode(model, data, split="test").extras)
    ['score:common', 'score:x1', 'score:x2']
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

import torch
from torch import nn

from mmfactor.checks import check_choice, check_float, check_int
from mmfactor.data.batching import Batch
from mmfactor.distributed import GlobalBatchNorm1d, gather, gather_nograd
from mmfactor.encoders.external import ExternalEncoder
from mmfactor.encoders.heads import MLPHead
from mmfactor.errors import InputError
from mmfactor.losses.correlation import TotalCorrelation, correlation_matrix
from mmfactor.methods.base import Factors, Loss, Method, encoder_name, zero_missing
from mmfactor.methods.registry import register

COMMON_LOSSES = ("pearson", "dcca")


def mean_squared_off_diagonal(corr: torch.Tensor) -> torch.Tensor:
    """Mean of the squared off-diagonal entries of a square correlation matrix (0 if 1 x 1)."""
    k = corr.shape[0]
    if k < 2:
        return corr.new_zeros(())
    off = corr - torch.diag_embed(corr.diagonal())
    return off.pow(2).sum() / (k * (k - 1))


@register("mucmm")
class MUCMM(Method):
    """Common codes by correlation maximisation, individual codes by correlation
    minimisation, heads on (possibly frozen) encoders (module doc; design choices marked).

    Args:
        embed_dim: width k of each common code ``c_m``.
        individual_dim: width r of each individual code ``u_m`` (None: k).
        encoders: ``{modality: nn.Module}`` pre-trained encoders (others: the family's).
        freeze_encoders: keep the given encoders' weights fixed (only the heads train).
        feature_dim: output width of the family's encoders, when they are used (None: 64).
        head_hidden: hidden width of the heads (0: linear heads).
        common_loss: ``pearson`` or ``dcca`` (module doc).
        decorrelation: weight of the soft decorrelation inside each code.
        individual_weight, rec_weight: weights of the minimisation and reconstruction terms.
        (others: see :class:`~mmfactor.methods.base.Method`)
    """

    def __init__(
        self,
        modalities,
        embed_dim: int = 8,
        individual_dim: int | None = None,
        encoders: Mapping[str, nn.Module] | None = None,
        freeze_encoders: bool = True,
        feature_dim: int | None = None,
        head_hidden: int = 0,
        common_loss: str = "pearson",
        decorrelation: float = 1.0,
        individual_weight: float = 1.0,
        rec_weight: float = 1.0,
        **kwargs: Any,
    ) -> None:
        self.external = dict(encoders or {})
        self.freeze_encoders = bool(freeze_encoders)
        self.feature_dim = 64 if feature_dim is None else feature_dim
        super().__init__(modalities, embed_dim, **kwargs)
        unknown = [m for m in self.external if m not in self.modalities]
        if unknown:
            raise InputError(f"mucmm: encoders given for unknown modalities {unknown}")
        check_choice(self.name, "common_loss", common_loss, COMMON_LOSSES)
        self.individual_dim = embed_dim if individual_dim is None else individual_dim
        check_int(self.name, "individual_dim", self.individual_dim, minimum=1)
        check_int(self.name, "head_hidden", head_hidden, minimum=0)
        for option, weight in (
            ("decorrelation", decorrelation),
            ("individual_weight", individual_weight),
            ("rec_weight", rec_weight),
        ):
            check_float(self.name, option, weight, minimum=0)
        self.common_loss = common_loss
        self.decorrelation = float(decorrelation)
        self.individual_weight, self.rec_weight = float(individual_weight), float(rec_weight)
        k, r = embed_dim, self.individual_dim
        width = {m: cast(int, self.encoders[m].out_dim) for m in self.modality_names}
        self.common_heads = nn.ModuleDict(
            {m: MLPHead(width[m], head_hidden, k) for m in self.modality_names}
        )
        self.individual_heads = nn.ModuleDict(
            {m: MLPHead(width[m], head_hidden, r) for m in self.modality_names}
        )
        self.common_norms = nn.ModuleDict(
            {m: GlobalBatchNorm1d(k, affine=False) for m in self.modality_names}
        )
        self.individual_norms = nn.ModuleDict(
            {m: GlobalBatchNorm1d(r, affine=False) for m in self.modality_names}
        )
        self.decoders = nn.ModuleDict({m: nn.Linear(k + r, width[m]) for m in self.modality_names})
        self.total_correlation = TotalCorrelation(ridge=1e-3, gather=False)
        self.pairs = self.modality_pairs()

    def modality_encoders(self, names: list[str], out_dim: int) -> nn.ModuleDict:
        """The given modules (wrapped, frozen by default) and the family's encoders to
        ``feature_dim`` for the others; for ``identity`` encoders the features' own width."""
        encoders: dict[str, nn.Module] = {}
        for m in names:
            spec = self.modalities[m]
            if m in self.external:
                encoders[m] = ExternalEncoder(self.external[m], spec, self.freeze_encoders)
            else:
                identity = encoder_name(spec, self.encoder_choice) == "identity"
                encoders[m] = self.encoder_for(spec, spec.dim if identity else self.feature_dim)
        return nn.ModuleDict(encoders)

    # --- codes and scores ------------------------------------------------------------------
    def projections(self, batch: Batch) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
        """``(features f_m, standardised common c~_m, standardised individual u~_m)``, each
        ``{m: (B, width)}``."""
        features = self.embed(batch)
        common = {m: self.common_norms[m](self.common_heads[m](f)) for m, f in features.items()}
        individual = {
            m: self.individual_norms[m](self.individual_heads[m](f)) for m, f in features.items()
        }
        return features, common, individual

    def scores(self, batch: Batch) -> dict[str, torch.Tensor]:
        """``score:common`` and ``score:<m>`` per sample ``(B,)`` (module doc)."""
        _, common, individual = self.projections(batch)
        return self._scores(common, individual, batch)

    def _scores(self, common: dict, individual: dict, batch: Batch) -> dict[str, torch.Tensor]:
        products, weights = [], []
        for a, b in self.pairs:
            both = (batch.present[a] & batch.present[b]).to(common[a].dtype)
            products.append((common[a] * common[b]).sum(1) * both)
            weights.append(both)
        s_common = torch.stack(products).sum(0) / torch.stack(weights).sum(0).clamp_min(1.0)
        out = {"score:common": s_common}
        for m, u in individual.items():
            out[f"score:{m}"] = 0.5 * u.pow(2).sum(1) * batch.present[m].to(u.dtype)
        return out

    def encode(self, batch: Batch) -> Factors:
        _, common, individual = self.projections(batch)
        scores = self._scores(common, individual, batch)
        common = zero_missing(common, batch.present)
        return Factors(
            shared=torch.cat([common[m] for m in self.modality_names], 1),
            specific=zero_missing(individual, batch.present),
            extras=scores,
        )

    # --- the objective -----------------------------------------------------------------------
    def loss(self, batch: Batch) -> Loss:
        """``L_max + individual_weight L_min + rec_weight L_rec`` (module doc); each term on
        the rows where the modalities it involves are present.

        Every term is a statistic of the whole batch (correlations, the features' variance):
        under data parallelism the codes of all processes are gathered first, so each
        process computes the one-process loss of the global batch."""
        features, common, individual = self.projections(batch)
        features = {m: gather_nograd(f.detach()) for m, f in features.items()}
        common = {m: gather(c) for m, c in common.items()}
        individual = {m: gather(u) for m, u in individual.items()}
        present = {m: gather_nograd(p) for m, p in batch.present.items()}
        maximise, minimise = [], []
        for a, b in self.pairs:
            rows = present[a] & present[b]
            ca, cb, ua, ub = (
                common[a][rows],
                common[b][rows],
                individual[a][rows],
                individual[b][rows],
            )
            if self.common_loss == "pearson":
                maximise.append(-correlation_matrix(ca, cb).diagonal().mean())
            else:
                maximise.append(self.total_correlation(ca, cb) / self.embed_dim)
            for u, others in ((ua, (cb, ub)), (ub, (ca, ua))):
                minimise += [correlation_matrix(u, o).pow(2).mean() for o in others]
        decorrelate, rec = [], {}
        for m in self.modality_names:
            rows = present[m]
            c, u, f = common[m][rows], individual[m][rows], features[m][rows]
            minimise.append(correlation_matrix(u, c).pow(2).mean())
            decorrelate += [mean_squared_off_diagonal(correlation_matrix(z, z)) for z in (c, u)]
            f = f - f.mean(0)  # the decoder's bias need not chase the features' mean
            f_hat = self.decoders[m](torch.cat([c, u], 1))
            rec[f"rec_{m}"] = (f_hat - f).pow(2).mean() / f.pow(2).mean().clamp_min(1e-8)
        parts = {
            "maximise": torch.stack(maximise).mean(),
            "minimise": torch.stack(minimise).mean(),
            "decorrelate": torch.stack(decorrelate).mean(),
        }
        total = (
            parts["maximise"]
            + self.decorrelation * parts["decorrelate"]
            + self.individual_weight * parts["minimise"]
            + self.rec_weight * torch.stack(list(rec.values())).mean()
        )
        return Loss(total, {**parts, **rec})
