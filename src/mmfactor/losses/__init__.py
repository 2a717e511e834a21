"""Loss modules shared by the methods."""

from mmfactor.losses.contrastive import InfoNCE, SupConLoss
from mmfactor.losses.disentangle import CMD, SoftOrthogonality
from mmfactor.losses.distributed import gather, gather_nograd
from mmfactor.losses.mmd import MMDPrior, gaussian_kernel

__all__ = [
    "CMD",
    "InfoNCE",
    "MMDPrior",
    "SoftOrthogonality",
    "SupConLoss",
    "gather",
    "gather_nograd",
    "gaussian_kernel",
]
