"""Loss modules shared by the methods."""

from mmfactor.losses.contrastive import InfoNCELoss, SupConLoss
from mmfactor.losses.disentangle import CMD, SoftOrthogonality
from mmfactor.losses.mmd import MMDPrior, gaussian_kernel

__all__ = [
    "CMD",
    "InfoNCELoss",
    "MMDPrior",
    "SoftOrthogonality",
    "SupConLoss",
    "gaussian_kernel",
]
