"""The raw-input reference: probes on the inputs themselves, the bar a learned
representation has to clear (``raw`` rows of the benchmark tables)."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from mmfactor.checks import check_int
from mmfactor.data.batching import Batch, image_input
from mmfactor.data.dataset import MultimodalDataset
from mmfactor.methods.base import Factors

#: Principal components an image modality keeps in the raw reference (see RawFeatures).
IMAGE_COMPONENTS = 256


class RawFeatures(nn.Module):
    """Not a method: ``specific[m]`` is modality m's input, flattened for vectors, the masked
    mean over real steps for sequences, and for images the coordinates of the flattened
    pixels (in ``[0, 1]``) on their first ``image_components`` principal components, fitted
    on the train split by :meth:`fit` (:func:`_principal_axes`). A missing modality gives
    zeros.

    Why images are projected: a linear probe on 2 x 3 x 32 x 32 pixels has 61,440 weights per
    10 classes, and fitting it on 10,000 pairs for every target and strength took longer than
    training the methods. The projection is linear, so the probe stays a linear probe on the
    pixels, restricted to their highest-variance subspace (PCA, as ``sklearn.decomposition
    .PCA``). Without :meth:`fit` (or with ``image_components=0``) images are flattened whole.

    Evaluate it like a trained method: ``mf.evaluate(RawFeatures().fit(data), data)``.

    Example:
        >>> import mmfactor as mf
        >>> data = mf.datasets.load("trifeatures", size=16, n=100, per_combination=1,
        ...                         cache=False)
        >>> raw = RawFeatures(image_components=8).fit(data)
        >>> raw.components["x1"].shape
        torch.Size([768, 8])
    """

    name = "raw"
    has_head = False

    def __init__(self, image_components: int = IMAGE_COMPONENTS) -> None:
        super().__init__()
        self.image_components = check_int(
            "RawFeatures", "image_components", image_components, minimum=0
        )
        self.train_stats: dict[str, object] = {}
        #: Per image modality: the pixel mean ``(D,)`` and the components ``(D, k)``.
        self.means: dict[str, torch.Tensor] = {}
        self.components: dict[str, torch.Tensor] = {}

    def fit(self, data: MultimodalDataset, split: str = "train") -> RawFeatures:
        """Fit the principal components of each image modality wider than
        ``image_components`` on ``split``'s rows (present ones); returns ``self``."""
        if self.image_components == 0:
            return self
        rows = data.indices(split)
        for m, spec in data.modalities.items():
            if spec.kind != "image" or int(np.prod(spec.shape)) <= self.image_components:
                continue
            keep = rows[np.asarray(data.present[m])[rows]]
            x = image_input(np.asarray(data.arrays[m])[keep]).flatten(1).double()
            mean = x.mean(0)
            self.means[m] = mean.float()
            self.components[m] = _principal_axes(x - mean, self.image_components).float()
        return self

    def predict(self, batch: Batch) -> torch.Tensor | None:
        return None

    def encode(self, batch: Batch) -> Factors:
        out = {}
        for m, x in batch.x.items():
            if m in batch.mask:
                w = batch.mask[m].to(x.dtype)[:, :, None]
                x = (x * w).sum(1) / w.sum(1).clamp_min(1.0)
            x = x.reshape(len(x), -1)
            if m in self.components:
                x = (x.float() - self.means[m].to(x.device)) @ self.components[m].to(x.device)
            out[m] = x * batch.present[m].to(x.dtype)[:, None]
        return Factors(shared=None, specific=out)


def _principal_axes(x: torch.Tensor, k: int) -> torch.Tensor:
    """The first ``k`` principal axes ``(D, k)`` of the centred rows ``x`` ``(N, D)``: exact
    (eigenvectors of the D x D scatter matrix) up to D = 8192, else a randomised SVD seeded 0
    with 20 extra directions and 6 power iterations (224-px images: D = 150,528)."""
    k = min(k, *x.shape)
    if x.shape[1] <= 8192:
        _, vectors = torch.linalg.eigh(x.T @ x)
        return vectors[:, -k:].flip(1)
    with torch.random.fork_rng(devices=[]):  # pca_lowrank draws from the global generator
        torch.manual_seed(0)
        _, _, v = torch.pca_lowrank(x, q=min(k + 20, *x.shape), center=False, niter=6)
    return v[:, :k]
