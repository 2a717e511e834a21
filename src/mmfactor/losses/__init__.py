"""Loss modules shared by the methods."""

from mmfactor.losses.contrastive import InfoNCELoss, NTXentLoss, SupConLoss
from mmfactor.losses.disentangle import CMD, SoftOrthogonality
from mmfactor.losses.mmd import MMDPrior, gaussian_kernel

__all__ = [
    "CMD",
    "InfoNCELoss",
    "MMDPrior",
    "NTXentLoss",
    "SoftOrthogonality",
    "SupConLoss",
    "gaussian_kernel",
]
