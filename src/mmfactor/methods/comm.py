"""``comm``: CoMM, contrastive multimodal learning in one fused space (Dufumier,
Castillo-Navarro et al., "What to align in multimodal contrastive learning?", ICLR 2025).

One multimodal encoder: each modality's encoder gives tokens (an image encoder's last feature
map, a sequence encoder's steps, a vector encoder's output as one token), and a small
Transformer fuses them (:class:`~mmfactor.encoders.fusion.TokenFusion`: 1 layer, 8 heads, CLS
pooling in the paper). For every batch it draws two augmentations t', t'' and forms M + 1
fused embeddings of each: one per modality i with only i kept (the others masked out of the
attention) and one with all modalities. Through the projection head (3 layers, batch norm,
hidden 512, output 256), with NT-Xent (SimCLR's loss, negatives from both views, gathered
across processes):

    L = 1 / (M + 1) * sum_{i in 1..M, all} (NT-Xent(Z'_i, Z''_all) + NT-Xent(Z''_i, Z'_all)) / 2

The paper's reading: under label-preserving augmentations the all-modality term captures
redundant, unique and synergistic information; the single-modality terms speed up learning
the unimodal (redundant and unique) parts.

Factors: ``shared`` = the fused all-modality embedding (what the paper probes);
``specific[m]`` = the fused embedding with only m kept. These are views of one joint space,
not disentangled factors: ``specific[m]`` holds what m alone says there (its redundant and
unique information alike) and nothing of the other modalities; it is not orthogonal to, nor
free of, the shared part. A modality absent from a row is masked out of that row's fusions
(its single-modality embedding is then the CLS token alone).
"""

from __future__ import annotations

from typing import ClassVar, cast

import torch
from torch import nn

from mmfactor.augment import default_augmentation
from mmfactor.checks import check_float, check_int
from mmfactor.data.batching import Batch
from mmfactor.distributed import GlobalBatchNorm1d
from mmfactor.encoders import Encoder
from mmfactor.encoders.fusion import TokenFusion
from mmfactor.losses import NTXentLoss
from mmfactor.methods.base import Factors, Loss, Method, augmented
from mmfactor.methods.registry import register

ALL = "all"


@register("comm")
class CoMM(Method):
    """CoMM: NT-Xent between each modality-masked fusion of one augmentation and the full
    fusion of the other.

    Args:
        width: the fusion Transformer's width (its output, the factors' width).
        heads: attention heads.
        layers: Transformer layers.
        proj_hidden: hidden width of the 3-layer projection head.
        proj_dim: output width of the projection head.
        temperature: NT-Xent temperature.
        embed_dim, encoder, encoder_options: as :class:`~mmfactor.methods.base.Method`;
            only the encoders' tokens are used, so their output layers are frozen.

    Example:
        >>> from mmfactor.data.dataset import ModalitySpec
        >>> specs = {m: ModalitySpec(m, "vector", (5,)) for m in ("x1", "x2")}
        >>> model = CoMM(specs, embed_dim=8, width=8, heads=2, proj_hidden=16, proj_dim=4)
        >>> model.fusion_names
        ['x1', 'x2', 'all']
    """

    #: Whether the fusion has a learned token for masked tokens (InfMasking's).
    masks_tokens: ClassVar[bool] = False

    def __init__(
        self,
        modalities,
        embed_dim: int = 128,
        width: int = 128,
        heads: int = 8,
        layers: int = 1,
        proj_hidden: int = 512,
        proj_dim: int = 256,
        temperature: float = 0.1,
        **kwargs,
    ) -> None:
        super().__init__(modalities, embed_dim, **kwargs)
        check_int("comm", "proj_hidden", proj_hidden, minimum=1)
        check_int("comm", "proj_dim", proj_dim, minimum=1)
        check_float("comm", "temperature", temperature, minimum=0, min_open=True)
        encoders = {m: cast(Encoder, e) for m, e in self.encoders.items()}
        for encoder in encoders.values():
            for layer in encoder.output_layers():
                layer.requires_grad_(False)
        self.fusion = TokenFusion(
            {m: e.token_dim for m, e in encoders.items()},
            width,
            heads,
            layers,
            grids={m: g for m, e in encoders.items() if (g := e.token_grid()) is not None},
            mask_token=self.masks_tokens,
        )
        self.head = nn.Sequential(
            nn.Linear(width, proj_hidden), GlobalBatchNorm1d(proj_hidden), nn.ReLU(),
            nn.Linear(proj_hidden, proj_hidden), GlobalBatchNorm1d(proj_hidden), nn.ReLU(),
            nn.Linear(proj_hidden, proj_dim),
        )  # fmt: skip
        self.ntxent = NTXentLoss(temperature)
        self.augment = nn.ModuleDict({m: default_augmentation(s) for m, s in modalities.items()})
        self.fusion_names = [*self.modality_names, ALL]
        self.subsets = [(m,) for m in self.modality_names] + [tuple(self.modality_names)]

    def modality_tokens(
        self, batch: Batch
    ) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        """Every modality's tokens ``(B, T_m, d_m)`` and mask ``(B, T_m)`` (an absent
        modality's tokens are masked out)."""
        tokens, masks = {}, {}
        for m in self.modality_names:
            encoder = cast(Encoder, self.encoders[m])
            tokens[m], real = encoder.tokens(batch.x[m], batch.mask.get(m))
            present = batch.present[m][:, None]
            masks[m] = present.expand(tokens[m].shape[:2]) if real is None else real & present
        return tokens, masks

    def fuse(self, batch: Batch) -> torch.Tensor:
        """The M + 1 fused embeddings ``(M + 1, B, width)``, in :attr:`fusion_names` order."""
        return self.fusion(*self.modality_tokens(batch), self.subsets)

    def encode(self, batch: Batch) -> Factors:
        z = dict(zip(self.fusion_names, self.fuse(batch), strict=True))
        return Factors(shared=z[ALL], specific={m: z[m] for m in self.modality_names})

    def project(self, fused: torch.Tensor) -> list[torch.Tensor]:
        # One head call per fusion, as the paper: batch-norm statistics per embedding kind.
        return [self.head(z) for z in fused]

    def ntxent_terms(
        self, z1: list[torch.Tensor], z2: list[torch.Tensor]
    ) -> dict[str, torch.Tensor]:
        """CoMM's M + 1 terms, each fusion of one augmentation against the other's full one."""
        return {
            f"ntxent_{name}": (self.ntxent(z1[i], z2[-1]) + self.ntxent(z2[i], z1[-1])) / 2
            for i, name in enumerate(self.fusion_names)
        }

    def loss(self, batch: Batch) -> Loss:
        z1 = self.project(self.fuse(augmented(batch, self.augment)))
        z2 = self.project(self.fuse(augmented(batch, self.augment)))
        ntxent = self.ntxent_terms(z1, z2)
        return Loss(torch.stack(list(ntxent.values())).mean(), ntxent)
