"""``misa``: Modality-Invariant and -Specific Representations (Hazarika, Zimmermann, Poria,
ACM MM 2020), the orthogonality baseline MIRD argues against.

Each modality's utterance encoding ``u_m`` (its encoder, then ``Linear -> ReLU ->
LayerNorm`` to ``hidden``) is split by a weight-tied shared projection ``h^c_m = E_c(u_m)``
and a private one ``h^p_m = E^p_m(u_m)`` (each ``Linear -> Sigmoid``). The objective (paper
Eq. 9)::

    L = task + alpha * L_sim + beta * L_diff + gamma * L_recon

- ``L_sim``: central moment discrepancy (5 moments) between the shared vectors of every
  modality pair, averaged over pairs;
- ``L_diff``: soft orthogonality between each modality's shared and private matrices and
  between every pair of private matrices (:class:`~mmfactor.losses.disentangle.
  SoftOrthogonality`), summed;
- ``L_recon``: mean squared error of rebuilding ``u_m`` from ``h^c_m + h^p_m``, averaged
  over modalities.

with the paper's weights alpha 0.3, beta 0.1, gamma 1.0. The prediction reads the 2M
vectors through one Transformer encoder layer (2 heads) over them as tokens, then an MLP on
their concatenation, as in the released code.

Factors: ``shared`` = [h^c_1 ; ... ; h^c_M], ``specific[m]`` = h^p_m. Missing modality: its
shared and private vectors are zeroed before fusion and in the factors.

Example:
    >>> import mmfactor as mf
    >>> data = mf.datasets.load("synthetic", n=300)
    >>> model = mf.methods.build("misa", data.modalities, embed_dim=16, hidden=8)
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from mmfactor.checks import check_float, check_int, check_probability
from mmfactor.data.batching import Batch
from mmfactor.data.dataset import TaskSpec
from mmfactor.encoders.heads import MLPHead
from mmfactor.errors import InputError
from mmfactor.losses.disentangle import CMD, SoftOrthogonality
from mmfactor.methods.base import Factors, Loss, Method, labeled_rows, task_loss, zero_missing
from mmfactor.methods.registry import register


def _projection(in_dim: int, out_dim: int) -> nn.Module:
    return nn.Sequential(nn.Linear(in_dim, out_dim), nn.Sigmoid())


@register("misa")
class MISA(Method):
    """MISA: shared and private subspaces kept apart by orthogonality, aligned by CMD.

    Args:
        hidden: width of the utterance encodings and of the shared and private vectors.
        alpha: weight of the similarity (CMD) loss; beta: of the difference loss; gamma:
            of the reconstruction loss.
        moments: CMD's number of moments.
        dropout: dropout in the prediction MLP.
        fusion_heads: attention heads of the fusion layer (must divide ``hidden``).
        fusion_dropout: dropout inside the fusion layer (0.1, torch's default, as the
            released code).
        (others: see :class:`~mmfactor.methods.base.Method`)
    """

    uses_labels = True
    has_head = True

    def __init__(
        self,
        modalities,
        embed_dim: int = 128,
        hidden: int = 128,
        alpha: float = 0.3,
        beta: float = 0.1,
        gamma: float = 1.0,
        moments: int = 5,
        dropout: float = 0.5,
        fusion_heads: int = 2,
        fusion_dropout: float = 0.1,
        **kwargs: Any,
    ) -> None:
        super().__init__(modalities, embed_dim, **kwargs)
        for option, weight in (("alpha", alpha), ("beta", beta), ("gamma", gamma)):
            check_float(self.name, option, weight, minimum=0)
        check_int(self.name, "hidden", hidden, minimum=1)
        check_int(self.name, "fusion_heads", fusion_heads, minimum=1)
        if hidden % fusion_heads:
            raise InputError(
                f"misa: hidden ({hidden}) must be positive and divisible by fusion_heads "
                f"({fusion_heads})"
            )
        check_probability(self.name, "dropout", dropout)
        check_probability(self.name, "fusion_dropout", fusion_dropout)
        names = self.modality_names
        self.hidden, self.dropout = hidden, dropout
        self.alpha, self.beta, self.gamma = float(alpha), float(beta), float(gamma)
        self.utterance = nn.ModuleDict(
            {
                m: nn.Sequential(nn.Linear(embed_dim, hidden), nn.ReLU(), nn.LayerNorm(hidden))
                for m in names
            }
        )
        self.shared = _projection(hidden, hidden)  # weight-tied across modalities
        self.private = nn.ModuleDict({m: _projection(hidden, hidden) for m in names})
        self.recon = nn.ModuleDict({m: nn.Linear(hidden, hidden) for m in names})
        self.fusion = nn.TransformerEncoderLayer(
            hidden, fusion_heads, 2 * hidden, dropout=fusion_dropout, batch_first=True
        )
        self.cmd, self.orthogonality = CMD(moments), SoftOrthogonality()

    def build_task_modules(self, task: TaskSpec) -> None:
        width = 2 * len(self.modality_names) * self.hidden
        self.head = MLPHead(width, width // 2, task.out_dim, self.dropout)

    def _parts(
        self, batch: Batch
    ) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        """Utterance encodings u_m, shared h^c_m and private h^p_m, absent modalities zeroed."""
        u = {m: self.utterance[m](e) for m, e in self.embed(batch).items()}
        shared = zero_missing({m: self.shared(v) for m, v in u.items()}, batch.present)
        private = zero_missing({m: self.private[m](v) for m, v in u.items()}, batch.present)
        return u, shared, private

    def _predict(self, shared: dict[str, torch.Tensor], private: dict[str, torch.Tensor]):
        tokens = torch.stack([*shared.values(), *private.values()], 1)  # (B, 2M, hidden)
        return self.head(self.fusion(tokens).flatten(1))

    def encode(self, batch: Batch) -> Factors:
        _, shared, private = self._parts(batch)
        return Factors(shared=torch.cat(list(shared.values()), 1), specific=private)

    def predict(self, batch: Batch) -> torch.Tensor:
        _, shared, private = self._parts(batch)
        return self._predict(shared, private)

    def loss(self, batch: Batch) -> Loss:
        """Paper Eq. 9: task + alpha * sim (CMD) + beta * diff + gamma * recon."""
        assert self.task is not None and batch.y is not None, "misa needs a target"
        u, shared, private = self._parts(batch)
        out, y = labeled_rows(self._predict(shared, private), batch)
        names = self.modality_names
        pairs = self.modality_pairs()
        sim = torch.stack([self.cmd(shared[a], shared[b]) for a, b in pairs]).mean()
        diff = sum(self.orthogonality(shared[m], private[m]) for m in names) + sum(
            self.orthogonality(private[a], private[b]) for a, b in pairs
        )
        rec = {
            f"rec_{m}": (self.recon[m](shared[m] + private[m]) - u[m]).pow(2).mean() for m in names
        }
        recon = torch.stack(list(rec.values())).mean()
        task = task_loss(self.task, out, y)
        total = task + self.alpha * sim + self.beta * diff + self.gamma * recon
        return Loss(total, {"task": task, "sim": sim, "diff": diff, **rec})  # type: ignore[arg-type]
