"""Fit an estimator on two arrays and read out a held-out estimate: :func:`estimate_mi`."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from mmfactor.errors import InputError
from mmfactor.estimators.critics import Hidden
from mmfactor.estimators.registry import build
from mmfactor.optim import build_optimizer


def _as_matrix(x: Any, name: str) -> torch.Tensor:
    arr = np.asarray(x, dtype=np.float32)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2 or not np.isfinite(arr).all():
        raise InputError(f"estimate_mi: {name} must be a finite (n, d) array, got {arr.shape}")
    return torch.from_numpy(arr)


def _as_condition(c: Any, n: int) -> torch.Tensor:
    arr = np.asarray(c)
    if arr.shape[0] != n or arr.ndim not in (1, 2):
        raise InputError(f"estimate_mi: c must have {n} rows and 1 or 2 dims, got {arr.shape}")
    if arr.ndim == 1:
        if not np.issubdtype(arr.dtype, np.integer) or arr.min() < 0:
            raise InputError("estimate_mi: 1-d c must hold non-negative integer labels")
        return torch.from_numpy(arr.astype(np.int64))
    return torch.from_numpy(arr.astype(np.float32))


def estimate_mi(
    a: Any,
    b: Any,
    estimator: str = "infonce",
    *,
    c: Any = None,
    steps: int = 1000,
    batch_size: int = 128,
    seed: int = 0,
    lr: float = 1e-3,
    hidden: Hidden = (128, 64),
    critic: str | None = None,
    condition: str = "concat",
    held_out: float = 0.2,
    **opts: Any,
) -> float:
    """Estimate I(A; B) (or I(A; B | C)) in nats from samples ``a`` ``(n, d_a)``, ``b``
    ``(n, d_b)``.

    Shuffles the rows with ``seed``, keeps a ``held_out`` fraction aside, trains the
    estimator's own parameters (``learning_loss``, Adam, ``steps`` mini-batches of
    ``batch_size`` drawn epoch by epoch) on the rest and returns ``mi`` averaged over the
    held-out batches (the last partial batch dropped; one batch of all held-out rows if
    fewer than ``batch_size``). Deterministic for a seed on the CPU; the global random state
    is left untouched. Batch-size dependent bounds (InfoNCE <= log B) see ``batch_size``.

    ``c``: integer labels ``(n,)`` or features ``(n, k)``; with ``condition`` ``concat`` or
    ``both`` its width (number of classes for labels) is ``c_dim`` unless given in ``opts``.
    Other ``opts`` go to :func:`mmfactor.estimators.build`.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> x = rng.normal(size=(2000, 1))
        >>> y = 0.8 * x + 0.6 * rng.normal(size=(2000, 1))
        >>> 0.2 < estimate_mi(x, y, "infonce", steps=200, hidden=(32,)) < 0.6  # truth 0.51
        True
    """
    ta, tb = _as_matrix(a, "a"), _as_matrix(b, "b")
    n = ta.shape[0]
    if tb.shape[0] != n:
        raise InputError(f"estimate_mi: a has {n} rows, b has {tb.shape[0]}")
    if steps < 1 or batch_size < 2 or not 0.0 < held_out < 1.0 or lr <= 0:
        raise InputError(
            f"estimate_mi: need steps >= 1, batch_size >= 2, 0 < held_out < 1 and lr > 0; got "
            f"{steps}, {batch_size}, {held_out}, {lr}"
        )
    n_test = int(round(n * held_out))
    n_train = n - n_test
    if n_test < 2 or n_train < batch_size:
        raise InputError(
            f"estimate_mi: {n} samples leave {n_train} for training (batch_size {batch_size}) "
            f"and {n_test} held out (need >= 2)"
        )
    tc = None if c is None else _as_condition(c, n)
    if tc is not None and condition in ("concat", "both") and "c_dim" not in opts:
        opts["c_dim"] = int(tc.max()) + 1 if tc.dim() == 1 else tc.shape[1]

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        gen = torch.Generator().manual_seed(seed)
        order = torch.randperm(n, generator=gen)
        train_idx, test_idx = order[:n_train], order[n_train:]
        est = build(
            estimator, ta.shape[1], tb.shape[1], critic, hidden, condition=condition, **opts
        )
        opt = build_optimizer("adam", est.parameters(), lr)
        est.train()
        per_epoch = n_train // batch_size
        perm = train_idx
        for step in range(steps):
            if step % per_epoch == 0:
                perm = train_idx[torch.randperm(n_train, generator=gen)]
            idx = perm[(step % per_epoch) * batch_size : (step % per_epoch + 1) * batch_size]
            opt.zero_grad(set_to_none=True)
            loss = est.learning_loss(ta[idx], tb[idx], None if tc is None else tc[idx])
            loss.backward()
            opt.step()

        est.eval()
        size = min(batch_size, n_test)
        values = []
        with torch.no_grad():
            for start in range(0, n_test - size + 1, size):
                idx = test_idx[start : start + size]
                values.append(est.mi(ta[idx], tb[idx], None if tc is None else tc[idx]))
    return float(torch.stack(values).mean())


def correlated_gaussians(
    n: int, d: int, rho: float, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, float]:
    """The standard test problem with a known answer: ``a ~ N(0, I_d)``,
    ``b = rho a + sqrt(1 - rho^2) eps``, so each dimension pair has correlation ``rho`` and
    I(A; B) = -(d / 2) log(1 - rho^2) nats. Returns ``a``, ``b`` ``(n, d)`` and that MI.

    Example:
        >>> a, b, mi = correlated_gaussians(100, 5, 0.8)
        >>> a.shape, round(mi, 3)
        ((100, 5), 2.554)
    """
    if not -1 < rho < 1:
        raise InputError(f"rho must be in (-1, 1), got {rho}")
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(n, d))
    b = rho * a + math.sqrt(1 - rho**2) * rng.normal(size=(n, d))
    return a, b, -d / 2 * math.log(1 - rho**2)
