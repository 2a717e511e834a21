"""Contrastive losses as small modules: cross-modal InfoNCE and supervised contrastive.

Both gather embeddings across data-parallel processes, so every rank contrasts against the
global batch (negatives are global); each rank's loss is the mean over its own rows, and
data-parallel gradient averaging then yields the full-batch gradient.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from mmfactor.checks import check_float
from mmfactor.distributed import gather, gather_nograd, local_rows


class InfoNCELoss(nn.Module):
    """Symmetric InfoNCE (NT-Xent) between two views, as in CLIP (Radford et al. 2021).

    For L2-normalised ``a``, ``b`` ``(B, d)`` and temperature tau, the loss is the mean of
    ``CE(a_i . b_j / tau, j = i)`` over rows and over columns. Its negative plus ``log B`` is
    the InfoNCE lower bound on I(A; B) (van den Oord et al. 2018) for the dot-product critic.

    Example:
        >>> loss = InfoNCELoss(temperature=0.1)
        >>> float(loss(torch.randn(8, 4), torch.randn(8, 4))) > 0
        True
    """

    def __init__(self, temperature: float = 0.1, normalize: bool = True) -> None:
        super().__init__()
        check_float("InfoNCELoss", "temperature", temperature, minimum=0, min_open=True)
        self.temperature = temperature
        self.normalize = normalize

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        if self.normalize:
            a, b = F.normalize(a, dim=1), F.normalize(b, dim=1)
        rows = local_rows(a.shape[0], a.device)
        b_all, a_all = gather(b), gather(a)
        logits_ab = a @ b_all.T / self.temperature
        logits_ba = b @ a_all.T / self.temperature
        return 0.5 * (F.cross_entropy(logits_ab, rows) + F.cross_entropy(logits_ba, rows))


class SupConLoss(nn.Module):
    """Supervised contrastive loss (Khosla et al. 2020, Eq. 2, the "L_out" form).

    ``views`` ``(B, V, d)``: V views per sample (here: one per modality); ``labels`` ``(B,)``.
    Every other view of a sample with the same label is a positive; the anchor itself is
    excluded from the denominator. Features are L2-normalised (the FactorCL reference code
    forgets this). With all labels distinct it reduces to the
    multi-view InfoNCE of SimCLR.
    """

    def __init__(self, temperature: float = 0.1) -> None:
        super().__init__()
        check_float("SupConLoss", "temperature", temperature, minimum=0, min_open=True)
        self.temperature = temperature

    def forward(self, views: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        b, v, _ = views.shape
        feats = F.normalize(views, dim=2)
        all_feats = gather(feats).reshape(-1, feats.shape[2])  # (W*B*V, d), sample-major
        all_labels = gather_nograd(labels).repeat_interleave(v)
        anchors = feats.reshape(b * v, -1)
        anchor_labels = labels.repeat_interleave(v)
        logits = anchors @ all_feats.T / self.temperature
        self_index = local_rows(b, views.device).repeat_interleave(v) * v + torch.arange(
            v, device=views.device
        ).repeat(b)
        not_self = torch.ones_like(logits, dtype=torch.bool)
        not_self[torch.arange(b * v, device=views.device), self_index] = False
        logits = logits.masked_fill(~not_self, float("-inf"))
        positive = (anchor_labels[:, None] == all_labels[None, :]) & not_self
        log_prob = logits - torch.logsumexp(logits, dim=1, keepdim=True)
        n_pos = positive.sum(1).clamp_min(1)
        mean_log_prob_pos = log_prob.masked_fill(~positive, 0.0).sum(1) / n_pos
        return -mean_log_prob_pos.mean()


class NTXentLoss(nn.Module):
    """SimCLR's NT-Xent (Chen et al., ICML 2020) between two views ``a``, ``b`` ``(B, d)``:
    each of the 2B embeddings has its pair as the positive and the other 2B - 2 embeddings of
    both views as negatives, over the global batch; L2-normalised, temperature tau. It is
    :class:`SupConLoss` with every sample its own class. CoMM's loss is made of it.

    Example:
        >>> float(NTXentLoss(0.1)(torch.randn(8, 4), torch.randn(8, 4))) > 0
        True
    """

    def __init__(self, temperature: float = 0.1) -> None:
        super().__init__()
        self.supcon = SupConLoss(temperature)

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        # Global row numbers as labels: distinct on every process.
        return self.supcon(torch.stack([a, b], 1), local_rows(a.shape[0], a.device))
