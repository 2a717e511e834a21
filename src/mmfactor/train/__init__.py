"""Training: :func:`fit` (the engine, on PyTorch Lightning) and its options,
:class:`TrainOptions`."""

from mmfactor.train.engine import Run, fit
from mmfactor.train.module import LitMethod
from mmfactor.train.options import TrainOptions

__all__ = ["LitMethod", "Run", "TrainOptions", "fit"]
