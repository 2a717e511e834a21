"""Unsupervised image features: k-means on whitened patches, triangle encoding, pooled over the
image (Coates, Lee & Ng, "An Analysis of Single-Layer Networks in Unsupervised Feature
Learning", AISTATS 2011).

Fitted on images alone (no target), in seconds on a CPU, and translation-invariant: what the
PID's projection estimator (:func:`mmfactor.diagnostics.information_decomposition`) reads from
image modalities, where linear projections of pixels cannot see a shape or a texture at a
random position. Two departures from the paper, both to keep colour, which Trifeatures uses as
an attribute: patches are not normalised for brightness and contrast one by one, and the
features are pooled over the whole image (the paper pools over quadrants), since the objects
lie at random positions.

Example:
    >>> import numpy as np
    >>> images = np.random.default_rng(0).integers(0, 256, (20, 3, 16, 16), dtype=np.uint8)
    >>> features = PatchFeatures(k=8, patch=3, samples=500).fit(images)
    >>> features.transform(images).shape
    (20, 8)
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.cluster import MiniBatchKMeans

from mmfactor.checks import check_float, check_int
from mmfactor.data.batching import image_input
from mmfactor.data.dataset import ModalitySpec, MultimodalDataset
from mmfactor.errors import InputError


class PatchFeatures:
    """``k`` features per image: the triangle activation ``max(0, mean_j d_j - d_i)`` of each
    centroid ``i`` (``d_j``: distance of a whitened patch to centroid ``j``), averaged over all
    ``patch x patch`` windows (stride 1).

    Args:
        k: centroids (features).
        patch: window side in pixels.
        samples: patches drawn at random from the images to fit on.
        whitening: ZCA regulariser, as a share of the mean eigenvalue of the patch covariance.
        seed: seeds the patch draw and k-means.

    Shapes: :meth:`fit` and :meth:`transform` take images ``(N, C, H, W)`` (uint8, as image
    data sets store them, or floats); :meth:`transform` returns ``(N, k)`` float32.
    """

    def __init__(
        self,
        k: int = 128,
        patch: int = 5,
        samples: int = 50_000,
        whitening: float = 0.1,
        seed: int = 0,
    ) -> None:
        name = "patch features"
        self.k = check_int(name, "k", k, minimum=1)
        self.patch = check_int(name, "patch", patch, minimum=1)
        self.samples = check_int(name, "samples", samples, minimum=1)
        self.whitening = check_float(name, "whitening", whitening, minimum=0)
        self.seed = seed
        self.whiten: torch.Tensor | None = None  # (d, C, p, p): rows of the ZCA matrix
        self.offset = torch.zeros(0)  # (d,): the whitened patch mean
        self.centroids = torch.zeros(0)  # (k, d)

    def fit(self, images: np.ndarray) -> PatchFeatures:
        """Whitening and centroids from ``samples`` random windows of ``images``."""
        self._check(images)
        rng = np.random.default_rng(self.seed)
        n, c, h, w = images.shape
        p = self.patch
        which = rng.integers(0, n, self.samples)
        top = rng.integers(0, h - p + 1, self.samples)
        left = rng.integers(0, w - p + 1, self.samples)
        # (samples, C, p, p) windows by advanced indexing, flattened like conv weights
        rows = top[:, None] + np.arange(p)
        cols = left[:, None] + np.arange(p)
        windows = image_input(
            images[
                which[:, None, None, None],
                np.arange(c)[:, None, None],
                rows[:, None, :, None],
                cols[:, None, None, :],
            ]
        )
        patches = windows.reshape(self.samples, -1).double()
        mean = patches.mean(0)
        evals, evecs = torch.linalg.eigh(torch.cov((patches - mean).T))
        evals = evals.clamp_min(0) + self.whitening * evals.clamp_min(0).mean() + 1e-12
        zca = evecs @ torch.diag(evals.rsqrt()) @ evecs.T  # symmetric
        whitened = ((patches - mean) @ zca).numpy()
        kmeans = MiniBatchKMeans(self.k, random_state=self.seed, n_init=3, batch_size=4096)
        kmeans.fit(whitened)
        self.whiten = zca.float().reshape(-1, c, p, p)
        self.offset = (mean @ zca).float()
        self.centroids = torch.as_tensor(kmeans.cluster_centers_, dtype=torch.float32)
        return self

    @torch.no_grad()
    def transform(self, images: np.ndarray, batch_size: int = 64) -> np.ndarray:
        """The ``(N, k)`` pooled triangle activations of ``images``."""
        if self.whiten is None:
            raise InputError("patch features: call fit before transform")
        self._check(images)
        if images.shape[1] != self.whiten.shape[1]:
            raise InputError(
                f"patch features: fitted on {self.whiten.shape[1]} channels, got {images.shape[1]}"
            )
        centroids = self.centroids[None]
        out = []
        for start in range(0, len(images), batch_size):
            # images converted a batch at a time (uint8 stays uint8 in memory until then);
            # whitened windows as a convolution, one row per window: (B, H' W', d)
            x = image_input(images[start : start + batch_size]).float()
            z = F.conv2d(x, self.whiten).flatten(2).transpose(1, 2)
            distance = torch.cdist(z - self.offset, centroids)  # (B, H' W', k)
            triangle = (distance.mean(2, keepdim=True) - distance).clamp_min(0)
            out.append(triangle.mean(1))
        return torch.cat(out).numpy()

    def _check(self, images: np.ndarray) -> None:
        if images.ndim != 4:
            raise InputError(f"patch features: images must be (N, C, H, W), got {images.shape}")
        if min(images.shape[2:]) < self.patch:
            raise InputError(
                f"patch features: images of {images.shape[2]} x {images.shape[3]} px are "
                f"smaller than the {self.patch} px window"
            )


def with_patch_features(
    data: MultimodalDataset, rows: np.ndarray | None = None, **options: int | float
) -> MultimodalDataset:
    """``data`` with each image modality replaced by its :class:`PatchFeatures` (a vector
    modality of ``k`` features), fitted per modality on the images of ``rows`` (default: the
    train split); other modalities unchanged."""
    rows = data.indices("train") if rows is None else rows
    arrays, modalities = dict(data.arrays), dict(data.modalities)
    for m, spec in data.modalities.items():
        if spec.kind == "image":
            features = PatchFeatures(**options).fit(data.arrays[m][rows])  # type: ignore[arg-type]
            arrays[m] = features.transform(data.arrays[m])
            modalities[m] = ModalitySpec(m, "vector", (features.k,))
    return replace(data, arrays=arrays, modalities=modalities)
