"""Training engine (PyTorch Lightning)."""

from mmfactor.train.engine import LitMethod, Run, fit

__all__ = ["LitMethod", "Run", "fit"]
