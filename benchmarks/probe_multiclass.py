"""The linear probe's solver for more than two classes when Newton-Cholesky's Hessian is too
big (features x classes > ``NEWTON_MAX_COEF``): scikit-learn's ``newton-cg`` (truncated
Newton, Hessian-vector products) against ``lbfgs``, on one trained model's factors, in one run.

    python benchmarks/probe_multiclass.py RUN_DIR [--targets shared unique:x1] [--block all]

RUN_DIR is a run directory of ``mmfactor fit`` or a bench. For each target both solvers fit
the probe's whole C grid (warm starts along the grid, single-threaded BLAS as in the probes
of problems this size); printed: seconds for each, their ratio, the valid accuracy of the C
each selects, and each path's largest difference of predicted train probabilities from a
tight fit (newton-cg at tol 1e-8, untimed). Both minimise the same strictly convex objective.
"""

from __future__ import annotations

import argparse
import copy
import time
import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from threadpoolctl import threadpool_limits

from mmfactor.evaluate.probe_fits import LINEAR_C_GRID, LINEAR_TOL
from mmfactor.evaluate.protocol import Encodings
from mmfactor.runs import load_run


def path(Z: np.ndarray, y: np.ndarray, solver: str, tol: float) -> list[LogisticRegression]:
    """Warm-started fits along the C grid, as the probe runs them."""
    model = LogisticRegression(tol=tol, warm_start=True, solver=solver, max_iter=10_000)
    fits = []
    for C in LINEAR_C_GRID:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            fits.append(copy.deepcopy(model.set_params(C=C).fit(Z, y)))
    return fits


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dir")
    parser.add_argument("--targets", nargs="+", default=None)
    parser.add_argument("--block", default="all")
    args = parser.parse_args()
    model, data, _ = load_run(args.run_dir)
    encoded = Encodings(model, data)
    x_train, x_valid = encoded.blocks("train")[args.block], encoded.blocks("valid")[args.block]
    mean, std = x_train.mean(0), x_train.std(0) + 1e-12
    z_train, z_valid = (x_train - mean) / std, (x_valid - mean) / std
    targets = args.targets or [
        t for t in data.target_names if data.targets[t].kind == "classification"
    ]
    print(f"{args.run_dir}: block {args.block!r}, train {z_train.shape}")
    print(
        "| target | classes | lbfgs s | newton-cg s | speed-up | valid acc lbfgs | "
        "valid acc newton-cg | lbfgs max |dp| | newton-cg max |dp| |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for target in targets:
        y = data.targets[target].values
        y_train, y_valid = y[data.indices("train")], y[data.indices("valid")]
        seconds, selected, paths = {}, {}, {}
        with threadpool_limits(1):
            for solver in ("lbfgs", "newton-cg"):
                start = time.perf_counter()
                paths[solver] = path(z_train, y_train, solver, LINEAR_TOL)
                seconds[solver] = time.perf_counter() - start
                selected[solver] = max(f.score(z_valid, y_valid) for f in paths[solver])
            tight = path(z_train, y_train, "newton-cg", 1e-8)
        gap = {
            s: max(
                float(np.abs(a.predict_proba(z_train) - b.predict_proba(z_train)).max())
                for a, b in zip(fits, tight, strict=True)
            )
            for s, fits in paths.items()
        }
        print(
            f"| {target} | {np.unique(y_train).size} | {seconds['lbfgs']:.1f} | "
            f"{seconds['newton-cg']:.1f} | {seconds['lbfgs'] / seconds['newton-cg']:.1f}x | "
            f"{selected['lbfgs']:.4f} | {selected['newton-cg']:.4f} | "
            f"{gap['lbfgs']:.1e} | {gap['newton-cg']:.1e} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
