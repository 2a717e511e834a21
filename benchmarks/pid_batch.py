"""BROJA on binned projections against Liang et al.'s neural BATCH estimator.

For the toy cases of ``mf.diagnostics.bit_toy`` (exact parts known) and the targets
``shared``, ``unique:x1``, ``unique:x2`` and ``synergy`` of ``synthetic`` (which should come
out as redundancy, unique information and synergy), prints the four parts in bits by
``information_decomposition(..., method="broja", correct_bias=True)`` and by
``method="batch"`` (default options), side by side, with the seconds each took::

    python benchmarks/pid_batch.py [--n 4000] [--seed 0]
"""

from __future__ import annotations

import argparse
import time

import mmfactor as mf
from mmfactor.diagnostics import TOY_PARTS, bit_toy, information_decomposition

TARGETS = ["shared", "unique:x1", "unique:x2", "synergy"]


def timed(data: mf.MultimodalDataset, target: str | None, method: str, seed: int) -> str:
    start = time.perf_counter()
    if method == "broja":
        out = information_decomposition(data, target, correct_bias=True, seed=seed)
    else:
        out = information_decomposition(data, target, method="batch", seed=seed)
    seconds = time.perf_counter() - start
    cells = " | ".join(f"{v:6.3f}" for v in (*out.parts.values(), out.total))
    return f"{cells} | {seconds:5.1f} s | {out.dominant}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=4000, help="samples per data set")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    header = (
        "| {} | method | redundancy | unique x1 | unique x2 | synergy | total | time | "
        "dominant |\n|---|---|---|---|---|---|---|---|---|"
    )

    print(f"Toy cases (bit_toy, n = {args.n}), bits:\n")
    print(header.format("case (exact R/U1/U2/S)"))
    for case, exact in TOY_PARTS.items():
        data = bit_toy(case, n=args.n, seed=args.seed)
        name = f"{case} ({'/'.join(f'{v:g}' for v in exact)})"
        for method in ("broja", "batch"):
            print(f"| {name} | {method} | {timed(data, None, method, args.seed)} |")

    data = mf.datasets.load("synthetic", n=args.n, seed=args.seed, targets=TARGETS)
    print(f"\nsynthetic (n = {args.n}), bits:\n")
    print(header.format("target"))
    for target in TARGETS:
        for method in ("broja", "batch"):
            print(f"| {target} | {method} | {timed(data, target, method, args.seed)} |")


if __name__ == "__main__":
    main()
