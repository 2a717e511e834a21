"""Metrics for probes, prediction heads and benchmark tables.

All functions take 1-D arrays of ``N`` samples (a trailing axis of size 1 is accepted and
flattened) and return plain Python floats, so results can go straight into JSON records.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable

import numpy as np
from sklearn.metrics import accuracy_score, balanced_accuracy_score, f1_score

from mmfactor.errors import InputError


def _pair(
    y_true: np.ndarray, y_pred: np.ndarray, dtype: type = np.float64
) -> tuple[np.ndarray, np.ndarray]:
    """``y_true`` and ``y_pred`` as 1-D arrays of equal, non-zero length."""
    t = np.asarray(y_true)
    p = np.asarray(y_pred)
    # (N, 1) columns are common (regression heads); anything wider is a caller bug.
    if t.ndim == 2 and t.shape[1] == 1:
        t = t[:, 0]
    if p.ndim == 2 and p.shape[1] == 1:
        p = p[:, 0]
    if t.ndim != 1 or p.ndim != 1:
        raise InputError(f"metrics need 1-D y_true and y_pred, got shapes {t.shape} and {p.shape}")
    if t.shape[0] != p.shape[0]:
        raise InputError(
            f"y_true and y_pred differ in length: {t.shape[0]} vs {p.shape[0]} samples"
        )
    if t.shape[0] == 0:
        raise InputError("metrics need at least one sample")
    return t.astype(dtype, copy=False), p.astype(dtype, copy=False)


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation; 0.0 when either side is constant (undefined otherwise)."""
    a = a - a.mean()
    b = b - b.mean()
    denom = np.sqrt(np.dot(a, a) * np.dot(b, b))
    if denom == 0.0 or not np.isfinite(denom):
        return 0.0
    return float(np.clip(np.dot(a, b) / denom, -1.0, 1.0))


def classification_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """Accuracy, balanced accuracy (the mean of the per-class recalls, over the classes in
    ``y_true``: 0.5 for a constant guess on two classes, whatever their balance) and F1
    (macro and support-weighted) of predicted class labels.

    Args:
        y_true: ``(N,)`` integer class labels.
        y_pred: ``(N,)`` predicted labels (not scores; take ``argmax`` first).

    F1 averages over the classes present in either array; a class never predicted counts
    as F1 = 0 (``zero_division=0``) instead of emitting a warning.
    """
    t, p = _pair(y_true, y_pred, dtype=np.int64)
    with warnings.catch_warnings():  # scikit-learn warns of predicted classes not in y_true
        warnings.simplefilter("ignore", UserWarning)
        balanced = float(balanced_accuracy_score(t, p))
    return {
        "accuracy": float(np.mean(t == p)),
        "balanced_accuracy": balanced,
        "f1_macro": float(f1_score(t, p, average="macro", zero_division=0)),
        "f1_weighted": float(f1_score(t, p, average="weighted", zero_division=0)),
    }


def r2_columns(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    """R^2 of each column of ``(N, J)`` predictions, ``1 - SS_res / SS_tot``; for a constant
    column (``SS_tot = 0``) 1.0 for a perfect prediction and 0.0 otherwise (scikit-learn's
    ``force_finite`` convention)."""
    err = y_pred - y_true
    ss_res = np.einsum("ij,ij->j", err, err)
    centred = y_true - y_true.mean(0)
    ss_tot = np.einsum("ij,ij->j", centred, centred)
    safe = np.where(ss_tot > 0.0, ss_tot, 1.0)
    return np.where(ss_tot > 0.0, 1.0 - ss_res / safe, np.where(ss_res == 0.0, 1.0, 0.0))


def regression_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """MSE, MAE, R^2 and Pearson correlation of ``(N,)`` predictions.

    R^2 as :func:`r2_columns`.
    ``corr`` is 0.0 when either array is constant.
    """
    t, p = _pair(y_true, y_pred)
    err = p - t
    return {
        "mse": float(np.dot(err, err)) / t.shape[0],
        "mae": float(np.mean(np.abs(err))),
        "r2": float(r2_columns(t[:, None], p[:, None])[0]),
        "corr": _pearson(t, p),
    }


def sentiment_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """The MOSI / MOSEI sentiment metrics, with MMSA's conventions, for labels in [-3, 3].

    Args:
        y_true: ``(N,)`` continuous sentiment labels in ``[-3, 3]``.
        y_pred: ``(N,)`` real-valued predictions (any range; clipped where stated).

    Returns a dict with:

    - ``acc2_has0`` / ``f1_has0``: binary accuracy / weighted F1 on **all** samples, with
      ``y >= 0`` positive and ``y < 0`` negative, for labels and predictions alike
      (MMSA's "Has0", the convention of the older papers: zero counts as positive).
    - ``acc2_non0`` / ``f1_non0``: the same with samples whose *label* is exactly 0 dropped,
      and ``y > 0`` positive (MMSA's "Non0"; a prediction of exactly 0 counts as negative).
      ``nan`` when every label is 0.
    - ``acc7``: 7-class accuracy after clipping both arrays to ``[-3, 3]`` and rounding to the
      nearest integer with ``np.round`` (halves to even, as MMSA does), on all samples.
    - ``mae``: mean absolute error of the unclipped predictions, on all samples.
    - ``corr``: Pearson correlation on all samples (0.0 if either side is constant, where
      MMSA would give ``nan``).

    F1 is scikit-learn's ``average="weighted"`` over the two classes, as in MMSA.
    """
    t, p = _pair(y_true, y_pred)
    if not (np.isfinite(t).all() and np.isfinite(p).all()):
        raise InputError("sentiment_metrics: y_true and y_pred must be finite")

    bin_t, bin_p = t >= 0, p >= 0
    acc2_has0 = float(np.mean(bin_t == bin_p))
    f1_has0 = float(f1_score(bin_t, bin_p, average="weighted", zero_division=0))

    keep = t != 0
    if keep.any():
        nz_t, nz_p = t[keep] > 0, p[keep] > 0
        acc2_non0 = float(accuracy_score(nz_t, nz_p))
        f1_non0 = float(f1_score(nz_t, nz_p, average="weighted", zero_division=0))
    else:
        acc2_non0 = f1_non0 = float("nan")

    cls_t = np.round(np.clip(t, -3.0, 3.0))
    cls_p = np.round(np.clip(p, -3.0, 3.0))
    return {
        "acc2_has0": acc2_has0,
        "f1_has0": f1_has0,
        "acc2_non0": acc2_non0,
        "f1_non0": f1_non0,
        "acc7": float(np.mean(cls_t == cls_p)),
        "mae": float(np.mean(np.abs(p - t))),
        "corr": _pearson(t, p),
    }


def mean_std(values: Iterable[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (``ddof=1``) of ``values``; std is 0.0 for n = 1."""
    v = np.asarray(list(values), dtype=np.float64).reshape(-1)
    if v.size == 0:
        raise InputError("mean_std needs at least one value")
    mean = float(v.mean())
    std = float(v.std(ddof=1)) if v.size > 1 else 0.0
    return mean, std
