"""Loss modules shared by the methods."""

from mmfactor.losses.contrastive import InfoNCE, SupConLoss
from mmfactor.losses.distributed import gather, gather_nograd

__all__ = ["InfoNCE", "SupConLoss", "gather", "gather_nograd"]
