"""``supervised``: late fusion, the plain supervised baseline (FactorCL paper, Sec. 5).

Each modality has its own encoder; the embeddings are concatenated and an MLP head predicts
the target. Loss: the task loss on labeled samples only.

Factors: ``shared`` is ``None`` (nothing is learned to be shared); ``specific[m]`` is
modality m's embedding ``(B, embed_dim)``.
Missing modality: its embedding is replaced by zeros before fusion and in ``specific``
(embedding-level zero imputation), so the head sees only the observed modalities.
"""

from __future__ import annotations

import torch

from mmfactor.data.batching import Batch
from mmfactor.data.dataset import TaskSpec
from mmfactor.encoders.heads import MLPHead
from mmfactor.methods.base import Factors, Loss, Method, labeled_rows, task_loss, zero_missing
from mmfactor.methods.registry import register


@register("supervised")
class Supervised(Method):
    """Late fusion: ``head([Enc_1(x_1); ...; Enc_M(x_M)])``.

    Args:
        head_hidden: width of the head's hidden layer (0: linear head).
        dropout: dropout before the head's output layer.
        (others: see :class:`~mmfactor.methods.base.Method`)

    Example:
        >>> import mmfactor as mf
        >>> data = mf.datasets.load("synthetic", n=600)
        >>> model = mf.methods.build("supervised", data.modalities, embed_dim=32)
    """

    uses_labels = True
    has_head = True

    def __init__(
        self,
        modalities,
        embed_dim: int = 128,
        head_hidden: int = 128,
        dropout: float = 0.0,
        **kwargs,
    ) -> None:
        super().__init__(modalities, embed_dim, **kwargs)
        self.head_hidden, self.dropout = head_hidden, dropout

    def build_task_modules(self, task: TaskSpec) -> None:
        self.head = MLPHead(
            self.embed_dim * len(self.modality_names), self.head_hidden, task.out_dim, self.dropout
        )

    def _fused(self, batch: Batch) -> dict[str, torch.Tensor]:
        return zero_missing(self.embed(batch), batch.present)

    def encode(self, batch: Batch) -> Factors:
        return Factors(shared=None, specific=self._fused(batch))

    def predict(self, batch: Batch) -> torch.Tensor:
        return self.head(torch.cat(list(self._fused(batch).values()), 1))

    def loss(self, batch: Batch) -> Loss:
        assert self.task is not None and batch.y is not None, "supervised needs a target"
        out, y = labeled_rows(self.predict(batch), batch)
        task = task_loss(self.task, out, y)
        return Loss(task, {"task": task})
