"""Cost of the linear probe on one trained model's factor block: for each C of the probe's
grid, the fit time, lbfgs iterations and valid accuracy, each fit from a cold start.

    python benchmarks/probe_iterations.py RUN_DIR [--target shared] [--block all]

RUN_DIR is a run directory written by ``mmfactor fit`` or a bench (``runs/<data>/<method>/
seed<k>``). The probes of :mod:`mmfactor.evaluate.probe_fits` use the same solver, tolerance
and C grid (warm-started along the grid, so a bench spends somewhat less).
"""

from __future__ import annotations

import argparse
import time
import warnings

from sklearn.linear_model import LogisticRegression

from mmfactor.evaluate import probe_fits
from mmfactor.evaluate.protocol import Encodings
from mmfactor.runs import load_run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dir")
    parser.add_argument("--target", default="shared")
    parser.add_argument("--block", default="all")
    args = parser.parse_args()
    model, data, _ = load_run(args.run_dir)
    encoded = Encodings(model, data)
    x_train, x_valid = encoded.blocks("train")[args.block], encoded.blocks("valid")[args.block]
    y = data.targets[args.target].values
    y_train, y_valid = y[data.indices("train")], y[data.indices("valid")]
    mean, std = x_train.mean(0), x_train.std(0) + 1e-12
    z_train, z_valid = (x_train - mean) / std, (x_valid - mean) / std
    print(f"{args.run_dir}: block {args.block!r} {z_train.shape}, target {args.target!r}")
    print("| C | seconds | iterations | valid accuracy |\n|---|---|---|---|")
    for C in probe_fits.LINEAR_C_GRID:
        probe = LogisticRegression(C=C, tol=probe_fits.LINEAR_TOL, max_iter=10_000)
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            probe.fit(z_train, y_train)
        seconds = time.perf_counter() - start
        accuracy = (probe.predict(z_valid) == y_valid).mean()
        print(
            f"| {C:g} | {seconds:.1f} | {int(probe.n_iter_.max())} | {accuracy:.3f} |", flush=True
        )


if __name__ == "__main__":
    main()
