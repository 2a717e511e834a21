"""Training throughput of every method, clip's achieved GFLOP/s against a plain matmul, and
the training engine's overhead against a bare PyTorch loop doing the same steps.

All figures are measured in this one run, on this machine, and printed as ratios.

    python benchmarks/throughput.py [--n 4000] [--epochs 3] [--batch 256]
    python benchmarks/throughput.py --accelerator gpu [--precision bf16-mixed]

With ``--accelerator gpu`` (``benchmarks/gpu_check.sh``) it prints the training throughput
of every method on the GPU and the GPU's matmul rate; the CPU-only comparisons are skipped.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import tempfile
import time
from collections.abc import Iterator
from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode

import mmfactor as mf
from mmfactor.data.batching import make_loader
from mmfactor.optim import build_optimizer


def matmul_gflops(
    size: int = 2048, repeats: int = 10, device: str = "cpu", dtype: torch.dtype = torch.float32
) -> float:
    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)
    a @ b  # warm-up
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    sync()
    t0 = time.perf_counter()
    for _ in range(repeats):
        a @ b
    sync()
    return 2 * size**3 * repeats / (time.perf_counter() - t0) / 1e9


def build(name: str, data: mf.MultimodalDataset, width: int) -> mf.methods.Method:
    torch.manual_seed(0)
    # Linear CCA projects the raw features: k cannot exceed their widths.
    widths = [spec.shape[-1] for spec in data.modalities.values()]
    return mf.methods.build(
        name,
        data.modalities,
        embed_dim=min(128, *widths) if name == "cca" else 128,
        encoder_options={"hidden": [width, width]},
        task=data.target("mix@0.5").task,
    )


def step_cost(
    model: mf.methods.Method, batch: mf.datasets.Batch, steps: int, lr: float = 1e-3
) -> tuple[float, float]:
    """(seconds per step, FLOPs per step) of forward + backward + Adam on one batch, FLOPs
    counted by torch; timed over ``steps`` steps after 3 warm-up steps."""
    opt = build_optimizer("adam", model.parameters(), lr=lr)

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        model.loss(batch).total.backward()
        opt.step()

    counter = FlopCounterMode(display=False)
    with counter:
        step()
    for _ in range(3):
        step()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    return (time.perf_counter() - t0) / steps, float(counter.get_total_flops())


def step_gflops(model: mf.methods.Method, batch: mf.datasets.Batch, steps: int) -> float:
    """Achieved GFLOP/s of forward + backward + Adam on one batch, FLOPs counted by torch."""
    seconds, flops = step_cost(model, batch, steps)
    return flops / seconds / 1e9


@contextlib.contextmanager
def timed_compute(model: mf.methods.Method) -> Iterator[list[float]]:
    """Time the model's own work wherever it is called from: ``model.loss`` (forward),
    ``Tensor.backward`` and ``Adam.step``. Yields a one-element list holding the seconds."""
    spent = [0.0]

    def timed(fn: Any) -> Any:
        def wrapper(*a: Any, **kw: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return fn(*a, **kw)
            finally:
                spent[0] += time.perf_counter() - t0

        return wrapper

    backward, step = torch.Tensor.backward, torch.optim.Adam.step
    torch.Tensor.backward = timed(backward)  # type: ignore[method-assign]
    torch.optim.Adam.step = timed(step)  # type: ignore[method-assign]
    model.loss = timed(model.loss)  # type: ignore[method-assign]
    try:
        yield spent
    finally:
        torch.Tensor.backward, torch.optim.Adam.step = backward, step  # type: ignore[method-assign]
        del model.loss


def bare_loop_seconds(
    model: mf.methods.Method, data: mf.MultimodalDataset, epochs: int, batch: int
) -> tuple[float, float]:
    """The engine's work without the engine: same loaders, Adam steps, a validation pass.
    Returns the wall time and the part spent in the model's own work."""
    opt = build_optimizer("adam", model.parameters(), lr=1e-3)
    train = make_loader(
        data, data.indices("train"), batch, target="mix@0.5", shuffle=True, drop_last=True
    )
    valid = make_loader(data, data.indices("valid"), batch, target="mix@0.5")
    with timed_compute(model) as spent:
        t0 = time.perf_counter()
        for epoch in range(epochs):
            train.sampler.set_epoch(epoch)
            model.train()
            for b in train:
                opt.zero_grad(set_to_none=True)
                model.loss(b).total.backward()
                opt.step()
            model.eval()
            with torch.no_grad():
                for b in valid:
                    model.loss(b)
        total = time.perf_counter() - t0
    return total, spent[0]


def engine_seconds(
    model: mf.methods.Method,
    data: mf.MultimodalDataset,
    epochs: int,
    batch: int,
    out: str | None = None,
) -> tuple[float, float]:
    """``mf.fit`` with its defaults (CSV logs, best weights; with ``out``, also the run
    directory's checkpoint after the last epoch, ``model.pt`` and ``metrics.json``): the wall
    time and the part spent in the model's own work."""
    with timed_compute(model) as spent:
        t0 = time.perf_counter()
        mf.fit(
            model, data, max_epochs=epochs, batch_size=batch, patience=0, progress=False, out=out
        )
        total = time.perf_counter() - t0
    return total, spent[0]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=4000)
    p.add_argument("--epochs", type=int, default=15)  # the quick suite's setting
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--width", type=int, default=512)
    p.add_argument("--pairs", type=int, default=7, help="bare/engine pairs for the overhead")
    p.add_argument("--accelerator", default="cpu", choices=["cpu", "gpu"])
    p.add_argument("--precision", default="32-true", help="e.g. bf16-mixed (Lightning's names)")
    args = p.parse_args()
    device = {"accelerator": args.accelerator, "precision": args.precision}
    torch.set_num_threads(torch.get_num_threads())
    data = mf.datasets.load("synthetic", n=args.n)
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads; synthetic n={args.n}, "
        f"batch {args.batch}, MLP encoders {args.width}-{args.width}; "
        f"{args.accelerator}, precision {args.precision}"
    )
    if args.accelerator == "gpu":
        print(f"device: {torch.cuda.get_device_name()}")

    # Warm-up: the first fit of a process pays one-off initialisation costs.
    mf.fit(build("clip", data, args.width), data, max_epochs=1, progress=False, **device)

    print("\n## Training throughput through mf.fit (train epochs only)")
    print("| method | samples/s | s/epoch |\n|---|---|---|")
    for name in mf.methods.available():
        model = build(name, data, args.width)
        run = mf.fit(
            model,
            data,
            target="mix@0.5",
            max_epochs=args.epochs,
            batch_size=args.batch,
            patience=0,
            progress=False,
            **device,
        )
        per_epoch = f"{run.train_seconds / run.epochs:.2f}" if run.epochs else "closed form"
        print(f"| {name} | {run.samples_per_second:.0f} | {per_epoch} |")
    if args.accelerator == "gpu":
        for dtype in (torch.float32, torch.bfloat16):
            rate = matmul_gflops(8192, repeats=20, device="cuda", dtype=dtype)
            print(f"\nGPU 8192x8192 matmul, {dtype}: {rate / 1e3:.1f} TFLOP/s")
        return

    print("\n## clip training step vs the machine's matmul")
    # Alternate the two measurements and take the median of the paired ratios: the
    # machine's speed drifts between measurements a second apart.
    batch = next(iter(make_loader(data, data.indices("train"), args.batch, target="mix@0.5")))
    model = build("clip", data, args.width)
    pairs = [(matmul_gflops(repeats=4), step_gflops(model, batch, steps=10)) for _ in range(7)]
    limit, achieved = (statistics.median(c) for c in zip(*pairs, strict=True))
    ratio = statistics.median(a / m for m, a in pairs)
    print(
        f"plain 2048x2048 matmul: {limit:.1f} GFLOP/s; clip step (batch {args.batch}, forward + "
        f"backward + Adam): {achieved:.1f} GFLOP/s; ratio {ratio:.2f} (median of 7 pairs, "
        f"range {min(a / m for m, a in pairs):.2f}-{max(a / m for m, a in pairs):.2f}; "
        "target >= 0.50)"
    )

    print("\n## Engine overhead (same steps, same data, validation each epoch)")
    # The machine's speed drifts by tens of percent over seconds on a shared host, more than
    # the effect measured. So besides wall times, time the step and validation calls inside
    # both loops: what is left of a run's wall time is its machinery (data loading, hooks,
    # logging, checkpoints), and the engine's overhead is the extra machinery it adds,
    # relative to the bare loop's whole run.
    rows = []
    for i in range(args.pairs):
        bare = bare_loop_seconds(build("clip", data, args.width), data, args.epochs, args.batch)
        plain = engine_seconds(build("clip", data, args.width), data, args.epochs, args.batch)
        with tempfile.TemporaryDirectory() as tmp:
            run_dir = engine_seconds(
                build("clip", data, args.width), data, args.epochs, args.batch, f"{tmp}/r{i}"
            )
        rows.append([t - inner for t, inner in (bare, plain, run_dir)] + [bare[0]])
    bare_m, plain_m, dir_m, bare_total = (statistics.median(c) for c in zip(*rows, strict=True))
    print(
        f"medians of {args.pairs} runs each: bare loop {bare_total:.2f} s, machinery "
        f"(data loading, loop) {bare_m:.3f} s; mf.fit machinery {plain_m:.3f} s without a run "
        f"directory, {dir_m:.3f} s with one (checkpoint, model.pt, metrics.json)"
    )
    print(
        f"engine overhead (extra machinery / bare run): {(plain_m - bare_m) / bare_total:+.1%}"
        f" without a run directory, {(dir_m - bare_m) / bare_total:+.1%} with one; "
        "target <= +10%"
    )


if __name__ == "__main__":
    main()
