"""Optimisers, by name: what the engine and :func:`mmfactor.estimators.estimate_mi` train
with. Plain torch, no Lightning, so the estimators need not import the training engine."""

from __future__ import annotations

from collections.abc import Iterable

import torch

OPTIMIZERS = ("adam", "adamw", "sgd")


def build_optimizer(
    name: str, params: Iterable[torch.nn.Parameter], lr: float, weight_decay: float = 0.0
) -> torch.optim.Optimizer:
    """The optimiser ``name`` (one of :data:`OPTIMIZERS`) over ``params``.

    Adam and AdamW use the fused kernels where torch has them (CPU since torch 2.4): the same
    update, one kernel instead of a Python loop over parameters (measured ~10% of a small
    MLP's step)."""
    params = list(params)
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, weight_decay=weight_decay)
    cls = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW}[name]
    try:
        return cls(params, lr=lr, weight_decay=weight_decay, fused=True)
    except (RuntimeError, TypeError, ValueError):  # no fused kernel for this device/dtype
        return cls(params, lr=lr, weight_decay=weight_decay)
