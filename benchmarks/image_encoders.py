"""Training throughput of the image encoders (``cnn``, ``alexnet``, ``resnet18``) on CPU, with
weights and inputs in channels-last memory format against contiguous (NCHW) ones.

One step: forward of a random batch in train mode, ``out.square().mean()``, backward. For each
configuration, one warm-up step per format, then ``--repeats`` steps per format, interleaved
(so a load change on the machine hits both alike); printed: images/s of the median step for
each format and their ratio (> 1: channels-last is faster). ``cnn`` has no ``channels_last``
option; the benchmark converts it from outside.

    python benchmarks/image_encoders.py [--repeats 3] [--threads N] [--only resnet18]
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

import torch
from torch import nn

from mmfactor.data.dataset import ModalitySpec
from mmfactor.encoders import build_encoder

SMALL = [32, 64]  # batch 128
CONFIGS: list[tuple[str, dict[str, Any], list[int], int]] = [
    ("cnn", {"channels": [32, 64, 128], "batchnorm": True}, SMALL, 128),
    ("alexnet", {"stem": "small", "width": 0.25, "hidden": 0}, SMALL, 128),
    ("alexnet", {"stem": "small", "width": 1.0, "hidden": 0}, SMALL, 128),
    ("resnet18", {"stem": "small", "width": 0.5}, SMALL, 128),
    ("resnet18", {"stem": "small", "width": 1.0}, SMALL, 128),
    ("cnn", {"channels": [32, 64, 128], "batchnorm": True}, [224], 32),
    ("alexnet", {"stem": "imagenet"}, [224], 32),
    ("resnet18", {"stem": "imagenet"}, [224], 32),
]


def build(name: str, options: dict[str, Any], size: int, channels_last: bool) -> nn.Module:
    spec = ModalitySpec("img", "image", (3, size, size))
    if name == "cnn":
        model = build_encoder(name, spec, 128, **options)
        return model.to(memory_format=torch.channels_last) if channels_last else model
    return build_encoder(name, spec, 128, channels_last=channels_last, **options)


def step_seconds(model: nn.Module, x: torch.Tensor) -> float:
    start = time.perf_counter()
    model.zero_grad(set_to_none=True)
    model(x).square().mean().backward()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--only", nargs="+", default=None, help="encoder names to run")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    print("| encoder | options | px | batch | contiguous img/s | channels-last img/s | ratio |")
    print("|---|---|---|---|---|---|---|")
    for name, options, sizes, batch in CONFIGS:
        if args.only and name not in args.only:
            continue
        for size in sizes:
            torch.manual_seed(0)
            models = {cl: build(name, options, size, cl).train() for cl in (False, True)}
            x = torch.randn(batch, 3, size, size)
            times: dict[bool, list[float]] = {False: [], True: []}
            for model in models.values():  # warm-up (allocator, mkldnn primitives)
                step_seconds(model, x)
            for _ in range(args.repeats):
                for cl, model in models.items():
                    times[cl].append(step_seconds(model, x))
            rate = {cl: batch / statistics.median(t) for cl, t in times.items()}
            opts = ", ".join(f"{k}={v}" for k, v in options.items())
            print(
                f"| {name} | {opts} | {size} | {batch} | {rate[False]:.0f} | {rate[True]:.0f} | "
                f"{rate[True] / rate[False]:.2f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
