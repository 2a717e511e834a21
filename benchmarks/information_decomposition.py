"""Partial information decomposition on data with a known answer.

1. The toy cases (``mf.diagnostics.bit_toy``): a redundant bit, a unique bit, an XOR and a
   unique + synergistic pair, sampled with feature noise, against their exact parts.
2. ``synthetic``'s targets: ``shared`` should come out as redundancy, ``unique:x1`` as
   information unique to x1, ``synergy`` as synergy; ``mix@r`` in between.

Prints bits (plug-in, and the shuffle estimate of the bias) and the advice sentence::

    python benchmarks/information_decomposition.py [--n 6000] [--method broja]
"""

from __future__ import annotations

import argparse
import time

import mmfactor as mf
from mmfactor.diagnostics import TOY_PARTS, bit_toy, information_decomposition


def row(name: str, out: mf.diagnostics.InformationDecomposition, expected: str = "") -> str:
    parts = list(out.parts.values())
    bias = out.bias["total"] if out.bias else float("nan")
    cells = " | ".join(f"{v:.3f}" for v in parts)
    return f"| {name} | {cells} | {out.total:.3f} | {bias:.3f} | {expected}{out.dominant} |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=6000, help="samples of synthetic")
    parser.add_argument("--method", default="broja", choices=["broja", "imin"])
    args = parser.parse_args()
    header = (
        "| {} | redundancy | unique x1 | unique x2 | synergy | total | bias | {} |\n"
        "|---|---|---|---|---|---|---|---|"
    )

    print(f"Toy cases (n = 4000, method {args.method}), bits:\n")
    print(header.format("case", "expected -> dominant"))
    for case, expected in TOY_PARTS.items():
        out = information_decomposition(bit_toy(case), method=args.method)
        print(row(case, out, "/".join(f"{v:g}" for v in expected) + " -> "))

    targets = ["shared", "unique:x1", "unique:x2", "synergy", "mix@0", "mix@0.5", "mix@1.0"]
    data = mf.datasets.load("synthetic", n=args.n, targets=targets)
    print(f"\nsynthetic (n = {args.n}, method {args.method}), bits:\n")
    print(header.format("target", "dominant"))
    advice = {}
    for target in targets:
        start = time.perf_counter()
        out = information_decomposition(data, target, method=args.method)
        print(row(target, out) + f" {time.perf_counter() - start:.1f} s")
        advice[target] = out.advice()
    print()
    for target, sentence in advice.items():
        print(f"- {target}: {sentence}")


if __name__ == "__main__":
    main()
