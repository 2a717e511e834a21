"""How training cost scales: time per epoch as the data set grows and as the batch grows, peak
memory, the fitted growth exponents, and each method's training step against the machine's
matmul rate. All figures are measured in this one run, on this machine (CPU).

    python benchmarks/scaling.py                          # full sweep (long: tens of minutes)
    python benchmarks/scaling.py --quick                  # tiny sizes, a few minutes
    python benchmarks/scaling.py --methods clip,factorcl-sup:concat --ns 1000,10000
    python benchmarks/scaling.py --batches 64,256,1024 --fixed-n 10000 --out scaling.json
    python benchmarks/scaling.py --threads 1 ...          # on a shared machine (see below)

Rows (``--methods``, comma list; ``factorcl-sup`` alone means both critics): ``clip``,
``factorcl-sup:concat`` (the faithful concat critic, O(B^2) critic work per batch),
``factorcl-sup:separable``, ``mfm``, ``mird``.

Setting: synthetic data (``mf.datasets.load("synthetic", n=N)``, two 100-d modalities, train
split 70% of N), target ``mix@0.5``. One fixed architecture for every method: ``embed_dim``
64, MLP encoders 100-256-256 (``encoder_options={"hidden": [256, 256]}``), every other option
at the method class's default (factorcl-sup: proj_dim 64, critic_hidden [128], 1 critic step
per batch; mird: 5 estimator steps per batch), ``torch.manual_seed(seed)`` before each
``mf.methods.build``; ``mf.fit`` with Adam lr 1e-3 (engine default), ``patience=0``.

1. **N sweep** (``--ns``, default 1000,3000,10000,30000,100000) at ``--fixed-batch`` (256).
2. **Batch sweep** (``--batches``, default 64,128,256,512,1024) at ``--fixed-n`` (10000).

Each (method, N, batch) configuration runs ``mf.fit`` for ``--epochs`` (2) epochs in a fresh
subprocess (``scaling.py --one SPEC``), so peak memory does not carry over between them.
*Time per epoch* is the median wall time of the training epochs after the first (the first
pays one-off warm-up), training batches only (validation excluded), timed by a callback
passed to ``mf.fit``; with ``--epochs 1`` it is the first epoch's. ``mf.fit``'s own
``train_seconds / epochs`` (all epochs, warm-up included) is kept in the JSON as a
cross-check. *Samples/s* is the samples of those epochs over their time. *Peak RSS* is the
child's ``ru_maxrss`` (absolute, MiB); *base RSS* the same read after imports and data
loading, before the model is built, so peak - base is what training added.

Growth exponents are least-squares slopes of log(time per epoch) against log(N) and against
log(batch), and of log(peak - base RSS) against log(batch). An epoch does N/B steps of O(B)
work for the linear methods (exponent ~1 in N, ~0 in B once per-step overhead is amortised)
and of O(B^2) critic work for the concat critic (per-epoch work ~N*B: ~1 in N, ~1 in B).
Small sizes sit in the overhead-dominated regime and pull the slopes down.

3. **Step vs matmul**: for each method, throughput.py's ``step_gflops`` (FLOPs counted by
torch, forward + backward + Adam of the main loss on one batch of ``--fixed-batch`` at
``--fixed-n``; estimator/critic steps are not in it) over its ``matmul_gflops`` (2048^2 fp32),
the median of paired ratios measured alternately; next to the samples/s of the same
configuration through ``mf.fit``.

On a machine shared with other jobs, torch's intra-op thread pool oversubscribes the cores
and methods made of many small operations (mfm, mird) can slow down by 10-100x, far more
than the others; ``--threads 1`` (also passed to every configuration's subprocess) avoids it.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import Callback

import mmfactor as mf
from mmfactor.data.batching import make_loader
from mmfactor.io import write_json

TARGET = "mix@0.5"
ARCH: dict[str, Any] = {"embed_dim": 64, "encoder_options": {"hidden": [256, 256]}}
ROWS: dict[str, tuple[str, str, dict[str, Any]]] = {  # key: (label, method, options)
    "clip": ("clip", "clip", {}),
    "factorcl-sup:concat": ("factorcl-sup (concat)", "factorcl-sup", {"critic": "concat"}),
    "factorcl-sup:separable": (
        "factorcl-sup (separable)",
        "factorcl-sup",
        {"critic": "separable"},
    ),
    "mfm": ("mfm", "mfm", {}),
    "mird": ("mird", "mird", {}),
}
FULL = {"ns": "1000,3000,10000,30000,100000", "batches": "64,128,256,512,1024"}
FULL_FIXED = {"fixed_n": 10000, "fixed_batch": 256}
QUICK = {"ns": "500,1000,2000", "batches": "32,64,128"}
QUICK_FIXED = {"fixed_n": 1000, "fixed_batch": 64}


# --- child: one configuration ------------------------------------------------------------


def peak_rss_mib() -> float:
    """This process's peak resident set size so far, MiB (ru_maxrss: KiB on Linux)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10


class EpochTimer(Callback):
    """Wall time and samples of each training epoch, from its start to the end of its last
    batch (the engine's validation pass runs at the epoch's end, after that)."""

    def __init__(self) -> None:
        self.seconds: list[float] = []
        self.samples: list[int] = []
        self._start = self._last = 0.0
        self._n = 0

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._start = self._last = time.perf_counter()
        self._n = 0

    def on_train_batch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        self._last = time.perf_counter()
        self._n += len(batch)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.seconds.append(self._last - self._start)
        self.samples.append(self._n)


def build_row(key: str, data: mf.MultimodalDataset, seed: int) -> mf.methods.Method:
    _, name, options = ROWS[key]
    torch.manual_seed(seed)
    return mf.methods.build(name, data.modalities, task=data.target(TARGET).task, **ARCH, **options)


def run_one(spec: dict[str, Any]) -> dict[str, Any]:
    """Train one configuration in this (fresh) process; its times and memory."""
    if spec.get("threads"):
        torch.set_num_threads(spec["threads"])
    data = mf.datasets.load("synthetic", n=spec["n"])
    base = peak_rss_mib()
    model = build_row(spec["row"], data, spec["seed"])
    timer = EpochTimer()
    run = mf.fit(
        model,
        data,
        target=TARGET,
        max_epochs=spec["epochs"],
        batch_size=spec["batch"],
        patience=0,
        progress=False,
        seed=spec["seed"],
        callbacks=[timer],
    )
    measured = slice(1, None) if len(timer.seconds) > 1 else slice(None)
    seconds, samples = timer.seconds[measured], timer.samples[measured]
    return {
        **spec,
        "train_size": len(data.indices("train")),
        "parameters": sum(p.numel() for p in model.parameters()),
        "seconds_per_epoch": statistics.median(seconds),
        "samples_per_second": sum(samples) / sum(seconds),
        "epoch_seconds": timer.seconds,
        "epoch_samples": timer.samples,
        "fit_seconds_per_epoch": run.train_seconds / run.epochs,
        "fit_samples_per_second": run.samples_per_second,
        "base_rss_mib": base,
        "peak_rss_mib": peak_rss_mib(),
        "threads": torch.get_num_threads(),
    }


# --- parent: the sweeps --------------------------------------------------------------------


def run_config(spec: dict[str, Any], timeout: float | None) -> dict[str, Any]:
    """Run one configuration in a fresh interpreter; its result, or ``error``."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--one", json.dumps(spec)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {**spec, "error": f"timed out after {timeout:.0f} s"}
    if proc.returncode != 0:
        if proc.returncode == -9:
            why = "killed by SIGKILL (out of memory?)"
        else:
            lines = proc.stderr.strip().splitlines()
            why = f"exit {proc.returncode}: {lines[-1] if lines else 'no message'}"
        return {**spec, "error": why}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def exponent(xs: list[float], ys: list[float | None]) -> float | None:
    """Least-squares slope of log(y) against log(x) over the points with y > 0."""
    pts = [(x, y) for x, y in zip(xs, ys, strict=True) if y is not None and y > 0]
    if len(pts) < 2:
        return None
    x, y = np.log(np.array(pts, dtype=float)).T
    return float(np.polyfit(x, y, 1)[0])


def throughput_module() -> ModuleType:
    """benchmarks/throughput.py (benchmarks/ is not a package)."""
    path = Path(__file__).resolve().parent / "throughput.py"
    spec = importlib.util.spec_from_file_location("throughput", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def step_vs_matmul(
    rows: list[str], n: int, batch_size: int, seed: int, pairs: int, steps: int
) -> list[dict[str, Any]]:
    """Each row's training-step GFLOP/s over the machine's matmul GFLOP/s (median of paired
    ratios: the machine's speed drifts between measurements seconds apart)."""
    tp = throughput_module()
    data = mf.datasets.load("synthetic", n=n)
    loader = make_loader(data, data.indices("train"), batch_size, target=TARGET)
    batch = next(iter(loader))
    out = []
    for key in rows:
        model = build_row(key, data, seed)
        measured = [
            (tp.matmul_gflops(repeats=4), tp.step_gflops(model, batch, steps=steps))
            for _ in range(pairs)
        ]
        limit, achieved = (statistics.median(c) for c in zip(*measured, strict=True))
        ratio = statistics.median(a / m for m, a in measured)
        out.append(
            {
                "row": key,
                "batch": len(batch),
                "step_gflops": achieved,
                "matmul_gflops": limit,
                "ratio": ratio,
            }
        )
        print(f"step vs matmul: {ROWS[key][0]}: ratio {ratio:.3f}", file=sys.stderr, flush=True)
    return out


def cell(r: dict[str, Any] | None, fmt: str, key: str) -> str:
    if r is None:
        return "-"
    if "error" in r:
        return "failed"
    return format(r[key], fmt)


def fmt_exp(e: float | None) -> str:
    return "-" if e is None else f"{e:+.2f}"


def rate(r: dict[str, Any] | None) -> str:
    if r is None or "error" in r:
        return cell(r, "", "")
    sps = r["samples_per_second"]
    return f"{sps / 1e3:.1f}k" if sps >= 1e3 else f"{sps:.0f}"


def report(
    rows: list[str],
    ns: list[int],
    batches: list[int],
    results: dict[tuple, dict[str, Any]],
    args: argparse.Namespace,
    gflops: list[dict[str, Any]],
) -> dict[str, Any]:
    """Print the three tables; the exponents, for the JSON."""
    fb, fn = args.fixed_batch, args.fixed_n
    exps: dict[str, dict[str, float | None]] = {}

    def val(r: dict[str, Any] | None, key: str) -> float | None:
        return None if r is None or "error" in r else r[key]

    print(f"\n## Time per epoch (s) by N (batch {fb}; train split 70% of N)\n")
    heads = [f"N={n}" for n in ns] + [
        "exponent (N)",
        f"peak RSS at N={ns[-1]} (MiB)",
        "base RSS (MiB)",
    ]
    print("| method | " + " | ".join(heads) + " |")
    print("|---" * (len(ns) + 4) + "|")
    for key in rows:
        rs = [results.get((key, n, fb)) for n in ns]
        e = exponent([float(n) for n in ns], [val(r, "seconds_per_epoch") for r in rs])
        exps.setdefault(key, {})["time_vs_n"] = e
        last = rs[-1]
        print(
            f"| {ROWS[key][0]} | "
            + " | ".join(cell(r, ".3f", "seconds_per_epoch") for r in rs)
            + f" | {fmt_exp(e)} | {cell(last, '.0f', 'peak_rss_mib')}"
            f" | {cell(last, '.0f', 'base_rss_mib')} |"
        )

    print(f"\n## Time per epoch (s) and samples/s by batch size (N={fn})\n")
    print("| method | " + " | ".join(f"B={b}" for b in batches) + " | exponent (B) |")
    print("|---" * (len(batches) + 2) + "|")
    for key in rows:
        rs = [results.get((key, fn, b)) for b in batches]
        e = exponent([float(b) for b in batches], [val(r, "seconds_per_epoch") for r in rs])
        exps[key]["time_vs_batch"] = e
        cells = [
            cell(r, "", "")
            if val(r, "seconds_per_epoch") is None
            else f"{r['seconds_per_epoch']:.3f} s, {rate(r)}/s"
            for r in rs
        ]
        print(f"| {ROWS[key][0]} | " + " | ".join(cells) + f" | {fmt_exp(e)} |")

    print(f"\n## Peak RSS (MiB) by batch size (N={fn}); exponent of peak - base RSS\n")
    print("| method | " + " | ".join(f"B={b}" for b in batches) + " | base RSS | exponent (B) |")
    print("|---" * (len(batches) + 3) + "|")
    for key in rows:
        rs = [results.get((key, fn, b)) for b in batches]
        incr = [
            None if r is None or "error" in r else r["peak_rss_mib"] - r["base_rss_mib"] for r in rs
        ]
        e = exponent([float(b) for b in batches], incr)
        exps[key]["memory_vs_batch"] = e
        bases = [val(r, "base_rss_mib") for r in rs]
        base = statistics.median([b for b in bases if b is not None]) if any(bases) else None
        print(
            f"| {ROWS[key][0]} | "
            + " | ".join(cell(r, ".0f", "peak_rss_mib") for r in rs)
            + f" | {'-' if base is None else f'{base:.0f}'} | {fmt_exp(e)} |"
        )

    if gflops:
        print(f"\n## Training step vs the machine's matmul (N={fn}, batch {fb})\n")
        print("| method | step GFLOP/s | matmul GFLOP/s | ratio | samples/s (mf.fit) |")
        print("|---|---|---|---|---|")
        for g in gflops:
            r = results.get((g["row"], fn, fb))
            print(
                f"| {ROWS[g['row']][0]} | {g['step_gflops']:.1f} | {g['matmul_gflops']:.1f} | "
                f"{g['ratio']:.3f} | {rate(r)} |"
            )
        print(
            "\nstep: forward + backward + Adam of the main loss (estimator/critic steps not "
            "included); matmul: 2048x2048 fp32; ratio: median of paired ratios."
        )
    return exps


def int_list(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def row_list(text: str) -> list[str]:
    out: list[str] = []
    for key in (x.strip() for x in text.split(",") if x.strip()):
        keys = [k for k in ROWS if k.split(":")[0] == key] if key == "factorcl-sup" else [key]
        for k in keys:
            if k not in ROWS:
                raise argparse.ArgumentTypeError(f"unknown method {k!r}; rows: {', '.join(ROWS)}")
            if k not in out:
                out.append(k)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=" ".join(__doc__.split("\n\n")[0].split()))
    p.add_argument("--methods", type=row_list, default=list(ROWS), help=", ".join(ROWS))
    p.add_argument("--ns", type=int_list, help=f"N sweep (default {FULL['ns']})")
    p.add_argument("--batches", type=int_list, help=f"batch sweep (default {FULL['batches']})")
    p.add_argument("--fixed-n", type=int, help="N of the batch sweep (default 10000)")
    p.add_argument("--fixed-batch", type=int, help="batch of the N sweep (default 256)")
    p.add_argument("--epochs", type=int, default=2, help="epochs per fit; the first is warm-up")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quick", action="store_true", help="ns 500,1000,2000; batches 32,64,128")
    p.add_argument(
        "--threads", type=int, default=None, help="torch threads (default: torch's choice)"
    )
    p.add_argument("--timeout", type=float, default=None, help="seconds per configuration")
    p.add_argument("--pairs", type=int, default=None, help="matmul/step pairs (default 3)")
    p.add_argument("--no-gflops", action="store_true", help="skip the step vs matmul table")
    p.add_argument("--out", type=Path, help="also write the results here as JSON")
    p.add_argument("--one", help=argparse.SUPPRESS)  # internal: one configuration
    args = p.parse_args()
    if args.one:
        print(json.dumps(run_one(json.loads(args.one))))
        return

    if args.threads:
        torch.set_num_threads(args.threads)
    sizes, fixed = (QUICK, QUICK_FIXED) if args.quick else (FULL, FULL_FIXED)
    ns = sorted(args.ns or int_list(sizes["ns"]))
    batches = sorted(args.batches or int_list(sizes["batches"]))
    args.fixed_n = args.fixed_n or fixed["fixed_n"]
    args.fixed_batch = args.fixed_batch or fixed["fixed_batch"]
    pairs = args.pairs or (2 if args.quick else 3)
    if args.epochs < 1 or min(ns + batches) < 2:
        p.error("--epochs must be >= 1, sizes >= 2")

    configs: list[tuple[str, int, int]] = []
    for key in args.methods:
        for c in [(key, n, args.fixed_batch) for n in ns] + [
            (key, args.fixed_n, b) for b in batches
        ]:
            if c not in configs:
                configs.append(c)
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} CPUs; "
        f"{len(configs)} configurations, {args.epochs} epochs each, one subprocess each",
        file=sys.stderr,
        flush=True,
    )
    results: dict[tuple, dict[str, Any]] = {}
    t0 = time.perf_counter()
    for i, (key, n, b) in enumerate(configs, 1):
        spec = {"row": key, "n": n, "batch": b, "epochs": args.epochs, "seed": args.seed}
        spec["threads"] = args.threads
        r = results[(key, n, b)] = run_config(spec, args.timeout)
        what = (
            r["error"]
            if "error" in r
            else f"{r['seconds_per_epoch']:.3f} s/epoch, {r['samples_per_second']:.0f} samples/s, "
            f"peak RSS {r['peak_rss_mib']:.0f} MiB (base {r['base_rss_mib']:.0f})"
        )
        print(
            f"[{i}/{len(configs)} {time.perf_counter() - t0:.0f}s] {ROWS[key][0]} N={n} "
            f"batch={b}: {what}",
            file=sys.stderr,
            flush=True,
        )

    gflops = (
        []
        if args.no_gflops
        else step_vs_matmul(
            args.methods, args.fixed_n, args.fixed_batch, args.seed, pairs, 5 if args.quick else 10
        )
    )
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads; synthetic, target "
        f"{TARGET}; embed_dim 64, MLP encoders 256-256; {args.epochs} epochs per fit, time per "
        "epoch from the epochs after the first, validation excluded"
    )
    exps = report(args.methods, ns, batches, results, args, gflops)
    if args.out:
        write_json(
            args.out,
            {
                "settings": {
                    "ns": ns,
                    "batches": batches,
                    "fixed_n": args.fixed_n,
                    "fixed_batch": args.fixed_batch,
                    "epochs": args.epochs,
                    "seed": args.seed,
                    "architecture": ARCH,
                    "target": TARGET,
                    "torch": torch.__version__,
                    "threads": torch.get_num_threads(),
                    "cpus": os.cpu_count(),
                },
                "configs": list(results.values()),
                "exponents": exps,
                "step_vs_matmul": gflops,
            },
        )


if __name__ == "__main__":
    main()
