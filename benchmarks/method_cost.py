"""What a training step of the fusion methods costs against clip's, on the same batch:
samples/s and FLOPs (counted by torch) of forward + backward + Adam, and their ratio.

The issue's rule: a method slower than clip by more than twice its FLOP ratio needs a
profile. All figures come from this one run, on this machine.

    python benchmarks/method_cost.py [--data trifeatures] [--batch 128] [--steps 5]
        [--methods clip,cross-self,comm,infmasking]

Each method runs with its documented config for the data set's family (for Trifeatures:
AlexNet at width 0.125, small stem, 32 px).
"""

from __future__ import annotations

import argparse

import torch
from throughput import step_cost  # this script's folder is on sys.path

import mmfactor as mf
from mmfactor.config import dataset_family
from mmfactor.data.batching import make_loader

DATA_OPTIONS = {"trifeatures": {"size": 32, "n": 512}, "av-digits": {}}


def cost(name: str, data: mf.MultimodalDataset, batch_size: int, steps: int) -> tuple[float, float]:
    """(samples/s, FLOPs per step) of ``name``'s training step on one batch of ``data``."""
    options = mf.methods.default_config(name, dataset_family(data.name))["method"]
    torch.manual_seed(0)
    model = mf.methods.build(name, data.modalities, **options)
    batch = next(iter(make_loader(data, data.indices("train"), batch_size)))
    seconds, flops = step_cost(model, batch, steps, lr=3e-4)
    return batch_size / seconds, flops


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="trifeatures", choices=sorted(DATA_OPTIONS))
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--methods", default="clip,cross-self,comm,infmasking")
    args = parser.parse_args()
    data = mf.datasets.load(args.data, **DATA_OPTIONS[args.data])
    methods = args.methods.split(",")
    figures = {m: cost(m, data, args.batch, args.steps) for m in methods}
    rate0, flops0 = figures[methods[0]]
    print(
        f"{args.data}, batch {args.batch}, {torch.get_num_threads()} threads; against {methods[0]}"
    )
    header = ("method", "samples/s", "GFLOP/step", "slower", "FLOPs", "slower / FLOPs")
    print("{:<12} {:>10} {:>11} {:>7} {:>6} {:>15}".format(*header))
    for m, (rate, flops) in figures.items():
        slower, more = rate0 / rate, flops / flops0
        row = f"{m:<12} {rate:>10.0f} {flops / 1e9:>11.2f} {slower:>6.1f}x {more:>5.1f}x"
        print(f"{row} {slower / more:>15.2f}")


if __name__ == "__main__":
    main()
