"""The two-class linear probe's solver (``mmfactor.evaluate.logistic``) against scikit-learn's
Newton-Cholesky path that it replaced, on probe-sized problems, in one run.

Features: ``synthetic``'s two modalities (n = 4000: 2800 train rows) through a fixed random
tanh layer of width p, standardised (correlated, like learned factors); targets: the data
set's eight binary targets (shared, unique, mix@r). For each width, both solvers fit the
whole C grid of the probe for every target (warm starts along the grid, single-threaded BLAS
as in the probes); printed: seconds for each, their ratio, and for each the largest
difference of predicted probabilities on the train rows, over all targets and C, from a
tight fit (Newton-Cholesky at tol 1e-10, untimed).

    python benchmarks/probe_speed.py [--widths 64 256 640]
"""

from __future__ import annotations

import argparse
import copy
import time
from typing import Any

import numpy as np
from sklearn.linear_model import LogisticRegression
from threadpoolctl import threadpool_limits

import mmfactor as mf
from mmfactor.evaluate.logistic import logistic_path
from mmfactor.evaluate.probe_fits import LINEAR_C_GRID, LINEAR_TOL


def features(data: mf.MultimodalDataset, width: int) -> np.ndarray:
    x = np.concatenate([data.arrays["x1"], data.arrays["x2"]], axis=1).astype(np.float64)
    rng = np.random.default_rng(width)
    h = np.tanh(x @ rng.normal(size=(x.shape[1], width)) / np.sqrt(x.shape[1]))
    train = h[data.indices("train")]
    return (train - train.mean(0)) / train.std(0)


def scikit_learn_path(
    Z: np.ndarray, y: np.ndarray, tol: float = LINEAR_TOL
) -> list[LogisticRegression]:
    """What the probe ran before: Newton-Cholesky with warm starts along the C grid."""
    model = LogisticRegression(tol=tol, warm_start=True, solver="newton-cholesky")
    fits = []
    for C in LINEAR_C_GRID:
        model.set_params(C=C, max_iter=1000)
        fits.append(copy.deepcopy(model.fit(Z, y)))
    return fits


def largest_gap(Z: np.ndarray, paths: list[list[Any]], tight: list[list[Any]]) -> float:
    """Largest |probability difference| between matching fits of two sets of paths."""
    return max(
        float(np.abs(a.predict_proba(Z) - b.predict_proba(Z)).max())
        for fits_a, fits_b in zip(paths, tight, strict=True)
        for a, b in zip(fits_a, fits_b, strict=True)
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--widths", type=int, nargs="+", default=[64, 256, 640])
    args = parser.parse_args()
    data = mf.datasets.load("synthetic", n=4000, seed=0)
    targets = [t for t in data.target_names if t != "synergy"]
    print(
        "| width | targets x C | scikit-learn s | mmfactor s | speed-up | "
        "scikit-learn max |dp| | mmfactor max |dp| |"
    )
    print("|---|---|---|---|---|---|---|")
    for width in args.widths:
        Z = features(data, width)
        labels = [data.targets[t].values[data.indices("train")] for t in targets]
        with threadpool_limits(1):
            start = time.perf_counter()
            reference = [scikit_learn_path(Z, y) for y in labels]
            t_ref = time.perf_counter() - start
            start = time.perf_counter()
            ours = [logistic_path(Z, y, LINEAR_C_GRID) for y in labels]
            t_ours = time.perf_counter() - start
            tight = [scikit_learn_path(Z, y, tol=1e-10) for y in labels]

        n_fits = len(targets) * len(LINEAR_C_GRID)
        print(
            f"| {width} | {n_fits} | {t_ref:.2f} | {t_ours:.2f} | {t_ref / t_ours:.2f}x | "
            f"{largest_gap(Z, reference, tight):.1e} | {largest_gap(Z, ours, tight):.1e} |"
        )


if __name__ == "__main__":
    main()
