"""``cross-self``: cross-modal InfoNCE plus within-modality InfoNCE on augmentations.

The "Cross+Self" baseline of the FactorCL paper (Sec. 5): the ``clip`` objective plus, for
each modality, InfoNCE between ``x_m`` and an augmentation ``x_m'`` through a separate
self-projection head. The self term keeps some modality-specific information that the
cross-modal term alone discards. Factors and missing-modality handling as in ``clip``.
"""

from __future__ import annotations

from torch import nn

from mmfactor.augment import default_augmentation
from mmfactor.data.batching import Batch
from mmfactor.methods.base import Loss, augmented
from mmfactor.methods.clip import CLIP
from mmfactor.methods.registry import register


@register("cross-self")
class CrossSelf(CLIP):
    """``clip`` + ``self_weight`` * sum_m InfoNCE(Proj'_m(Enc_m(x_m)), Proj'_m(Enc_m(x_m'))).

    Args:
        self_weight: weight of the within-modality terms.
        (others as :class:`~mmfactor.methods.clip.CLIP`)
    """

    def __init__(self, modalities, self_weight: float = 1.0, **kwargs) -> None:
        super().__init__(modalities, **kwargs)
        self.self_weight = self_weight
        self.self_projections = self.projection_heads()
        self.augment = nn.ModuleDict(
            {m: default_augmentation(spec) for m, spec in self.modalities.items()}
        )

    def loss(self, batch: Batch) -> Loss:
        emb = self.embed(batch)
        cross = self.cross_modal(emb)
        emb_aug = self.embed(augmented(batch, self.augment))
        within = sum(
            self.infonce(self.self_projections[m](emb[m]), self.self_projections[m](emb_aug[m]))
            for m in self.modality_names
        )
        total = cross + self.self_weight * within
        return Loss(total, {"infonce_cross": cross, "infonce_self": within})
