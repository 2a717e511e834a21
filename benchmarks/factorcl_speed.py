"""FactorCL training speed at the paper's synthetic setting, measured in one run.

Setting (``factorcl-synthetic`` defaults, the released code's sizes): encoders
100-512-512-512-128, batch 256, concat critics 512-512 on 128-d heads, 5 critic steps per
batch on 128 rows. Prints:

1. training samples/s through ``mf.fit`` for ``clip`` and for ``factorcl-sup`` with each
   critic (the separable one also with a single hidden layer), each one's time per sample
   and FLOPs per step relative to ``clip``'s;
2. the concat critic's training step (main step + critic steps, FLOPs counted by torch)
   in GFLOP/s next to a plain matmul of the same total size as one critic layer,
   (65,536 x 512) x (512 x 512): the machine's limit;
3. the same step done the way the released code does it (tiled critic inputs, the label
   critic on all B^2 pairs, every critic's weight gradient in the main step, critic steps
   re-encoding fresh batches of 128 and back-propagating into the encoders), timed here,
   against which the speed-up is stated; and the reference figure of the issue (25
   samples/s, 10.4 s per step).

    python benchmarks/factorcl_speed.py [--steps 10] [--pairs 3]
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import statistics
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

import mmfactor as mf
from mmfactor.data.batching import Batch, make_loader
from mmfactor.estimators.critics import ConcatCritic
from mmfactor.methods.factorcl import FactorCLSup
from mmfactor.optim import build_optimizer

DATA = "factorcl-synthetic"
REFERENCE_SAMPLES_PER_SECOND = 25.0  # the figure for the released code


def build(name: str, data: mf.MultimodalDataset, **overrides: Any) -> mf.methods.Method:
    torch.manual_seed(0)
    cfg = mf.methods.default_config(name, DATA)
    return mf.methods.build(
        name, data.modalities, task=data.target("y").task, **{**cfg["method"], **overrides}
    )


def fit_samples_per_second(
    name: str, data: mf.MultimodalDataset, steps: int, **overrides: Any
) -> float:
    """``mf.fit`` for one epoch of ``steps`` batches (train rows only): samples/s."""
    cfg = mf.methods.default_config(name, DATA)["train"]
    batch = cfg["batch_size"]
    train = data.indices("train")[: steps * batch]
    small = data.subset(
        np.concatenate([train, data.indices("valid")[:batch]]),
        {"train": np.arange(len(train)), "valid": np.arange(len(train), len(train) + batch)},
    )
    run = mf.fit(
        build(name, data, **overrides),
        small,
        max_epochs=1,
        batch_size=batch,
        lr=cfg["lr"],
        progress=False,
    )
    return run.samples_per_second


def step_gflop(name: str, data: mf.MultimodalDataset, **overrides: Any) -> float:
    """FLOPs of one training step (main + critic steps) counted by torch, in GFLOP."""
    model = build(name, data, **overrides)
    batch = next(iter(make_loader(data, data.indices("train"), 256, target="y")))
    counter = FlopCounterMode(display=False)
    with counter:
        engine_step(model, batch, optimizers(model))
    return counter.get_total_flops() / 1e9


def engine_step(model: mf.methods.Method, batch: Batch, opts: list[torch.optim.Optimizer]) -> None:
    """What the engine does per batch: the main step with the estimators frozen, then
    ``estimator_steps`` critic steps with everything else frozen."""
    main, est = list(model.main_parameters()), list(model.estimator_parameters())
    for p in est:
        p.requires_grad_(False)
    loss = model.loss(batch)
    opts[0].zero_grad(set_to_none=True)
    loss.total.backward()
    opts[0].step()
    if not est:
        return
    for p in est:
        p.requires_grad_(True)
    for p in main:
        p.requires_grad_(False)
    for _ in range(model.estimator_steps):
        opts[1].zero_grad(set_to_none=True)
        model.estimator_loss(batch, loss.state).backward()
        opts[1].step()
    for p in main:
        p.requires_grad_(True)


@contextlib.contextmanager
def released_code_critics() -> Iterator[None]:
    """Concat critics on the tiled ``(B_a B_b, d_a + d_b)`` input, and the label critic on
    all B^2 (row, label) pairs, as the released code computes them."""

    def tiled(self: ConcatCritic, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        n_a, n_b = a.shape[0], b.shape[0]
        pairs = torch.cat(
            [a[:, None, :].expand(n_a, n_b, -1), b[None, :, :].expand(n_a, n_b, -1)], 2
        )
        weight, bias = self.first_layer()
        return self.rest(F.linear(pairs.reshape(n_a * n_b, -1), weight, bias)).view(n_a, n_b)

    def label_on_all_pairs(
        self: FactorCLSup, m: str, z: torch.Tensor, ey: torch.Tensor, y: torch.Tensor
    ) -> torch.Tensor:
        return self.nce_y[m].mi(z, ey)

    forward, label_nce = ConcatCritic.forward, FactorCLSup.label_nce
    ConcatCritic.forward = tiled  # type: ignore[method-assign]
    FactorCLSup.label_nce = label_on_all_pairs  # type: ignore[method-assign]
    try:
        yield
    finally:
        ConcatCritic.forward = forward  # type: ignore[method-assign]
        FactorCLSup.label_nce = label_nce  # type: ignore[method-assign]


def released_code_step(
    model: FactorCLSup, batch: Batch, fresh: list[Batch], opts: list[torch.optim.Optimizer]
) -> None:
    """The released code's step: nothing frozen in the main step; each critic step encodes a
    fresh batch and back-propagates its critic loss through encoders and heads too."""
    with released_code_critics():
        opts[0].zero_grad(set_to_none=True)
        opts[1].zero_grad(set_to_none=True)
        model.loss(batch).total.backward()
        opts[0].step()
        for b in fresh:
            emb = model.embed(b)
            ze, zb = model.project("e", emb), model.project("b", emb)
            c = model.embed_label(b.y)
            opts[1].zero_grad(set_to_none=True)
            loss = model.club["0_1"].learning_loss(ze["x1"], ze["x2"])
            loss = loss + model.club_cond["0_1"].learning_loss(zb["x1"], zb["x2"], c)
            loss.backward()
            opts[1].step()


def optimizers(model: mf.methods.Method) -> list[torch.optim.Optimizer]:
    opts = [build_optimizer("adam", model.main_parameters(), 1e-4)]
    if any(True for _ in model.estimator_parameters()):
        opts.append(build_optimizer("adam", model.estimator_parameters(), 1e-4))
    return opts


def seconds(fn: Any, repeats: int) -> float:
    """Median wall time of ``fn()`` over ``repeats`` calls after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=10, help="batches per factorcl-sup fit")
    p.add_argument("--clip-steps", type=int, default=40, help="batches per clip fit")
    p.add_argument("--pairs", type=int, default=3, help="paired step/matmul measurements")
    args = p.parse_args()
    data = mf.datasets.load(DATA)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; {DATA}, batch 256")
    fit_samples_per_second("clip", data, 4)  # warm-up: one-off initialisation costs

    print("\n## Training samples/s through mf.fit (one epoch)")
    settings = [
        ("clip", "clip", args.clip_steps, {}),
        ("factorcl-sup, separable critic 512-512", "factorcl-sup", args.steps,
         {"critic": "separable"}),
        ("factorcl-sup, separable critic 512", "factorcl-sup", args.steps,
         {"critic": "separable", "critic_hidden": [512]}),
        ("factorcl-sup, concat critic 512-512 (default)", "factorcl-sup", args.steps,
         {"critic": "concat"}),
    ]  # fmt: skip
    rows = [
        (label, fit_samples_per_second(name, data, steps, **kw), step_gflop(name, data, **kw))
        for label, name, steps, kw in settings
    ]
    clip, clip_gflop = rows[0][1], rows[0][2]
    print(
        "| setting | samples/s | s/step | time per sample / clip's | GFLOP/step | "
        "FLOPs / clip's |\n|---|---|---|---|---|---|"
    )
    for label, sps, gflop in rows:
        print(
            f"| {label} | {sps:.1f} | {256 / sps:.3f} | {clip / sps:.1f}x | {gflop:.1f} | "
            f"{gflop / clip_gflop:.1f}x |"
        )
    print(
        f"targets: separable within 4x of clip ({clip / rows[1][1]:.1f}x at 512-512, "
        f"{clip / rows[2][1]:.1f}x at 512); concat >= 2x the reference's "
        f"{REFERENCE_SAMPLES_PER_SECOND:.0f} samples/s "
        f"({rows[3][1] / REFERENCE_SAMPLES_PER_SECOND:.2f}x)"
    )

    print("\n## Concat critic step vs the machine's matmul")
    loader = make_loader(data, data.indices("train"), 256, target="y", shuffle=True, seed=0)
    batches = iter(loader)
    batch = next(batches)
    model = build("factorcl-sup", data, critic="concat")
    opts = optimizers(model)
    counter = FlopCounterMode(display=False)
    with counter:
        engine_step(model, batch, opts)
    flops = counter.get_total_flops()
    x, w = torch.randn(256 * 256, 512), torch.randn(512, 512)
    layer_flops = 2 * x.shape[0] * 512 * 512
    pairs = []
    for _ in range(args.pairs):  # alternate: the machine's speed drifts over seconds
        step = seconds(lambda: engine_step(model, batch, opts), 2)
        mm = seconds(lambda: x @ w, 3)
        pairs.append((flops / step / 1e9, layer_flops / mm / 1e9, step))
    achieved, limit, step = (statistics.median(c) for c in zip(*pairs, strict=True))
    ratio = statistics.median(lim / ach for ach, lim, _ in pairs)
    print(
        f"one training step: {flops / 1e9:.0f} GFLOP in {step:.2f} s = {achieved:.0f} GFLOP/s; "
        f"matmul (65536 x 512) x (512 x 512): {limit:.0f} GFLOP/s; limit / achieved "
        f"{ratio:.2f} (median of {args.pairs} pairs; target <= 1.5)"
    )

    print("\n## The same step as the released code computes it")
    assert isinstance(model, FactorCLSup)
    fresh_loader = make_loader(data, data.indices("train"), 128, target="y", shuffle=True, seed=1)
    fresh = list(itertools.islice(fresh_loader, model.estimator_steps))
    with counter:
        released_code_step(model, batch, fresh, opts)
    ref_flops = counter.get_total_flops()
    ref = seconds(lambda: released_code_step(model, batch, fresh, opts), 2)
    ours = seconds(lambda: engine_step(model, batch, opts), 2)
    print(
        f"released-code step: {ref_flops / 1e9:.0f} GFLOP, {ref:.2f} s "
        f"({256 / ref:.1f} samples/s); mmfactor: {flops / 1e9:.0f} GFLOP, {ours:.2f} s "
        f"({256 / ours:.1f} samples/s); speed-up {ref / ours:.2f}x measured here, "
        f"{256 / ours / REFERENCE_SAMPLES_PER_SECOND:.2f}x the issue's 25 samples/s"
    )


if __name__ == "__main__":
    main()
