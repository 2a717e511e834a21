"""The raw-input reference: probes on the inputs themselves, the bar a learned
representation has to clear (``raw`` rows of the benchmark tables)."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from mmfactor.data.batching import Batch
from mmfactor.methods.base import Factors


class RawFeatures(nn.Module):
    """Not a method: ``specific[m]`` is modality m's input, flattened for vectors and images,
    and the masked mean over real steps for sequences. A missing modality gives zeros.

    Evaluate it like a trained method: ``mf.evaluate(RawFeatures(), data)``.
    """

    name = "raw"
    has_head = False

    def __init__(self) -> None:
        super().__init__()
        self.train_stats: dict[str, Any] = {}

    def predict(self, batch: Batch) -> torch.Tensor | None:
        return None

    def encode(self, batch: Batch) -> Factors:
        out = {}
        for m, x in batch.x.items():
            if m in batch.mask:
                w = batch.mask[m].to(x.dtype)[:, :, None]
                x = (x * w).sum(1) / w.sum(1).clamp_min(1.0)
            out[m] = x.reshape(len(x), -1) * batch.present[m].to(x.dtype)[:, None]
        return Factors(shared=None, specific=out)
