"""``supcon``: supervised contrastive learning across modalities (Khosla et al. 2020).

Each modality's projection is one view of the sample; every view of every sample with the
same label is a positive (:class:`~mmfactor.losses.SupConLoss`, features L2-normalised).
Samples of the unlabeled pool count as their own class, so for them the loss is the
cross-modal SimCLR loss. Classification targets only.

Factors and missing-modality handling as in ``clip``.
"""

from __future__ import annotations

import torch

from mmfactor.data.batching import Batch
from mmfactor.losses import SupConLoss
from mmfactor.methods.base import Loss
from mmfactor.methods.clip import CLIP
from mmfactor.methods.registry import register


@register("supcon")
class SupCon(CLIP):
    """SupCon over modality views. Arguments as :class:`~mmfactor.methods.clip.CLIP`."""

    uses_labels = True
    task_kinds = ("classification",)  # labels define the positives

    def __init__(self, modalities, **kwargs) -> None:
        super().__init__(modalities, **kwargs)
        self.supcon = SupConLoss(self.infonce.temperature)

    def loss(self, batch: Batch) -> Loss:
        assert batch.y is not None, "supcon needs a target"
        emb = self.embed(batch)
        views = torch.stack([self.projections[m](emb[m]) for m in self.modality_names], 1)
        labels = batch.y.long()
        if batch.labeled is not None and batch.index is not None:
            # Unlabeled samples get a distinct negative pseudo-label each.
            labels = torch.where(batch.labeled, labels, -1 - batch.index.to(labels.device))
        loss = self.supcon(views, labels)
        return Loss(loss, {"supcon": loss})
