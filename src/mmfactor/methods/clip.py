"""``clip``: symmetric cross-modal InfoNCE (CLIP, Radford et al. 2021; "SimCLR" in FactorCL).

Each modality is encoded and projected (``Proj_m``) to a common space; the loss is the
symmetric InfoNCE (:class:`~mmfactor.losses.InfoNCELoss`) between L2-normalised projections,
averaged over all modality pairs. It learns what the modalities share (redundant
information, nuisance included) and has no reason to keep what only one of them holds.

Factors: ``shared`` = ``[Enc_1(x_1); ...; Enc_M(x_M)]`` (the encoder outputs, probed as in
the FactorCL paper); no ``specific`` factors. Missing modality: its block is zeros.
"""

from __future__ import annotations

import torch
from torch import nn

from mmfactor.data.batching import Batch
from mmfactor.encoders.heads import modality_heads
from mmfactor.losses import InfoNCELoss
from mmfactor.methods.base import Factors, Loss, Method, zero_missing
from mmfactor.methods.registry import register


@register("clip")
class CLIP(Method):
    """Cross-modal contrastive learning over every pair of modalities.

    Args:
        proj_dim: width of the projections the loss compares.
        proj_hidden: hidden width of the projection heads (0: linear).
        temperature: InfoNCE temperature tau.
    """

    def __init__(
        self,
        modalities,
        embed_dim: int = 128,
        proj_dim: int = 64,
        proj_hidden: int = 128,
        temperature: float = 0.1,
        **kwargs,
    ) -> None:
        super().__init__(modalities, embed_dim, **kwargs)
        self.proj_dim, self.proj_hidden = proj_dim, proj_hidden
        self.projections = self.projection_heads()
        self.infonce = InfoNCELoss(temperature)

    def projection_heads(self) -> nn.ModuleDict:
        """One ``embed_dim -> proj_hidden -> proj_dim`` head per modality."""
        return modality_heads(self.modality_names, self.embed_dim, self.proj_hidden, self.proj_dim)

    def encode(self, batch: Batch) -> Factors:
        emb = zero_missing(self.embed(batch), batch.present)
        return Factors(shared=torch.cat(list(emb.values()), 1))

    def cross_modal(self, emb: dict[str, torch.Tensor]) -> torch.Tensor:
        """Mean symmetric InfoNCE over modality pairs of the projected embeddings."""
        z = {m: self.projections[m](e) for m, e in emb.items()}
        pairs = self.modality_pairs()
        return sum(self.infonce(z[a], z[b]) for a, b in pairs) / len(pairs)

    def loss(self, batch: Batch) -> Loss:
        cross = self.cross_modal(self.embed(batch))
        return Loss(cross, {"infonce_cross": cross})
