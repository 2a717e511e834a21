"""``infmasking``: InfMasking, CoMM with infinite masking (Wen et al., NeurIPS 2025,
arXiv 2509.25270).

CoMM's model and terms (:mod:`mmfactor.methods.comm`), plus: before the fusion, a large
random share (``mask_ratio``, 0.7) of every modality's tokens is replaced by a learned mask
token, ``num_masks`` (T, 6) times; the T masked fusions of all modalities are contrasted with
the unmasked one. The expectation over infinitely many masks is replaced by a closed-form
bound from the masked embeddings' mean mu and covariance Sigma (per sample, over the T
masks), with the masking strength lambda ramped linearly over the epochs
(``mask_lambda * (epoch + 1) / max_epochs``). For the L2-normalised full embedding q of one
augmentation, the masked ones k_t of the same augmentation and temperature tau:

    InfMask(q, k) = CE([q . (mu + Sigma' q / 2), q . k_t(j), q . q(j)] / tau, positive first)
                    + q Sigma' q / (2 tau),           Sigma' = lambda Sigma / tau

with the negatives k_t(j) and q(j) of every other sample j, gathered across processes. The
loss is the mean of InfMask for both augmentations and CoMM's M + 1 terms. This is the form
of the released code (``losses/infmasking_loss.py``); Sigma q and q Sigma q are computed from
the T deviations directly, without the (B, d, d) covariance.

Deviation: a modality of one token (a vector encoder's output) keeps at least one token,
where the released code's ``int(L * (1 - ratio))`` would mask it whole every time.

Factors: as ``comm``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from mmfactor.checks import check_float, check_int, check_probability
from mmfactor.data.batching import Batch
from mmfactor.distributed import gather, local_rows, rank_share
from mmfactor.methods.base import Loss, augmented
from mmfactor.methods.comm import CoMM
from mmfactor.methods.registry import register


@register("infmasking")
class InfMasking(CoMM):
    """CoMM plus the infinite-masking term.

    Args:
        mask_ratio: share of each modality's tokens replaced in a masked fusion.
        num_masks: masked fusions per augmentation (T).
        mask_lambda: the masking strength at the last epoch (ramped up linearly).
        (others as :class:`~mmfactor.methods.comm.CoMM`)

    Example:
        >>> from mmfactor.data.dataset import ModalitySpec
        >>> specs = {m: ModalitySpec(m, "vector", (5,)) for m in ("x1", "x2")}
        >>> model = InfMasking(specs, embed_dim=8, width=8, heads=2, proj_hidden=16)
        >>> model.num_masks, model.mask_ratio
        (6, 0.7)
    """

    masks_tokens = True

    def __init__(
        self,
        modalities,
        mask_ratio: float = 0.7,
        num_masks: int = 6,
        mask_lambda: float = 1.0,
        **kwargs,
    ) -> None:
        super().__init__(modalities, **kwargs)
        self.mask_ratio = check_probability("infmasking", "mask_ratio", mask_ratio)
        self.num_masks = check_int("infmasking", "num_masks", num_masks, minimum=2)
        self.mask_lambda = check_float("infmasking", "mask_lambda", mask_lambda, minimum=0)
        self.progress = 1.0  # (epoch + 1) / max_epochs, set by the engine

    def set_progress(self, epoch: int, max_epochs: int) -> None:
        self.progress = (epoch + 1) / max_epochs

    def fuse_masked(self, batch: Batch) -> torch.Tensor:
        """CoMM's M + 1 fusions, then ``num_masks`` fusions of all modalities with randomly
        masked tokens: ``(M + 1 + T, B, width)``."""
        tokens, masks = self.modality_tokens(batch)
        b, t = len(batch), self.num_masks
        device = next(iter(tokens.values())).device
        replaced = []
        for m in self.modality_names:
            n = tokens[m].shape[1]
            keep = max(1, int(n * (1 - self.mask_ratio)))
            # A random permutation per sample and mask (the same numbers one process draws).
            noise = rank_share(lambda s: torch.rand(s, device=device), (b, t, n))
            rank = noise.argsort(-1).argsort(-1)
            replaced.append((rank >= keep).transpose(0, 1))  # (T, B, n)
        masked = torch.cat(replaced, 2)
        unmasked = masked.new_zeros(len(self.subsets), *masked.shape[1:])
        subsets = self.subsets + [self.subsets[-1]] * t
        return self.fusion(tokens, masks, subsets, torch.cat([unmasked, masked]))

    def infmask(self, q: torch.Tensor, keys: list[torch.Tensor]) -> torch.Tensor:
        """The closed-form masking term of ``q`` ``(B, d)`` against its T masked versions."""
        tau = self.ntxent.supcon.temperature
        strength = self.mask_lambda * self.progress / tau
        q = F.normalize(q, dim=1)
        k = F.normalize(torch.stack(keys), dim=2)  # (T, B, d)
        mu = k.mean(0)
        along_q = ((k - mu) * q).sum(2)  # (T, B): (k_t - mu) . q
        q_sigma_q = strength * along_q.square().mean(0)  # q Sigma' q, (B,)
        positive = (q * mu).sum(1) + q_sigma_q / 2
        rows = local_rows(q.shape[0], q.device)
        k_all, q_all = gather(k.transpose(0, 1)), gather(q)  # (N, T, d), (N, d)
        negatives = torch.cat(
            [torch.einsum("bd,ntd->btn", q, k_all), (q @ q_all.T)[:, None]], 1
        )  # (B, T + 1, N)
        own = torch.arange(q_all.shape[0], device=q.device)[None] == rows[:, None]
        negatives = negatives.masked_fill(own[:, None], float("-inf"))
        logits = torch.cat([positive[:, None], negatives.flatten(1)], 1) / tau
        target = torch.zeros(q.shape[0], dtype=torch.long, device=q.device)
        return F.cross_entropy(logits, target) + q_sigma_q.mean() / (2 * tau)

    def loss(self, batch: Batch) -> Loss:
        k = len(self.fusion_names)
        z1 = self.project(self.fuse_masked(augmented(batch, self.augment)))
        z2 = self.project(self.fuse_masked(augmented(batch, self.augment)))
        infmask = {
            "infmask_1": self.infmask(z1[k - 1], z1[k:]),
            "infmask_2": self.infmask(z2[k - 1], z2[k:]),
        }
        terms = {**infmask, **self.ntxent_terms(z1[:k], z2[:k])}
        return Loss(torch.stack(list(terms.values())).mean(), terms)
