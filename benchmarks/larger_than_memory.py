"""Training on an ``arrays`` HDF5 file larger than the memory the process may use.

The script writes a two-modality HDF5 file of ``--gib`` GiB (two 512-d float32 modalities
with a shared and a private latent each, a class target of the shared latent, a
train/valid/test split array), then trains ``--method`` on it in a child process whose memory
is capped at ``--limit-gib`` GiB, with ``--workers`` DataLoader worker processes streaming
the batches. The cap is ``RLIMIT_AS``, the address space of the trainer and of each worker
(any user can set it). A memory map of the file would count against it, so the file is
written chunked: mmfactor then reads it through ``H5Array``, a batch at a time. (A cgroup
memory cap was tried and left out: the page cache the writer fills is charged to the
writer's group, not the trainer's, so it does not show what the trainer needs.)

Before training, a first capped child checks that the cap bites: reading one whole
modality into memory must fail with ``MemoryError``. The script prints samples/s, epochs,
seconds, the peak resident memory of the trainer and of its workers, the file size and the
cap.

    python benchmarks/larger_than_memory.py --gib 3 --limit-gib 1.5 --workers 2
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np

WIDTH = 512  # features per modality
ROW_BYTES = 2 * WIDTH * 4


def write_file(path: Path, gib: float, seed: int = 0) -> int:
    """Write the data set in blocks (never all in memory); returns the number of samples."""
    n = int(gib * 2**30 // ROW_BYTES)
    rng = np.random.default_rng(seed)
    mix = {m: rng.normal(size=(16, WIDTH)).astype(np.float32) / 4 for m in ("a", "b")}
    w_y = rng.normal(size=8)
    chunks = (16, WIDTH)  # 32 KiB chunks: a random row costs little more than itself
    block = 32768
    labels = np.empty(n, dtype=np.int64)
    tmp = path.with_suffix(".part")
    with h5py.File(tmp, "w") as f:
        ds = {
            m: f.create_dataset(f"x_{m}", (n, WIDTH), dtype="float32", chunks=chunks)
            for m in ("a", "b")
        }
        for start in range(0, n, block):
            stop = min(n, start + block)
            shared = rng.normal(size=(stop - start, 8)).astype(np.float32)
            for m in ("a", "b"):
                private = rng.normal(size=(stop - start, 8)).astype(np.float32)
                latent = np.concatenate([shared, private], 1)
                noise = rng.normal(scale=0.5, size=(stop - start, WIDTH)).astype(np.float32)
                ds[m][start:stop] = np.tanh(latent @ mix[m]) + noise
            labels[start:stop] = shared @ w_y > 0
        f["y"] = labels
        split = rng.choice(np.array([b"train", b"valid", b"test"]), size=n, p=[0.8, 0.1, 0.1])
        f["split"] = split
    os.replace(tmp, path)
    return n


def child(args: argparse.Namespace) -> None:
    import torch

    import mmfactor as mf

    data = mf.datasets.load("arrays", path=args.file)
    rows, width = data.arrays["a"].shape
    if args.child == "probe":  # the cap must bite: one whole modality is more than it allows
        np.asarray(data.arrays["a"]) + 0
        print(json.dumps({"whole_modality_read": "succeeded"}))
        return
    torch.manual_seed(0)
    model = mf.methods.build(
        args.method, data.modalities, embed_dim=64, encoder_options={"hidden": [256]}
    )
    run = mf.fit(
        model,
        data,
        target="y",
        max_epochs=args.epochs,
        batch_size=args.batch,
        num_workers=args.workers,
        patience=0,
        progress=False,
    )
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10
    workers = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**10
    print(
        json.dumps(
            {
                "method": args.method,
                "samples": rows,
                "train_samples": len(data.indices("train")),
                "epochs": run.epochs,
                "train_seconds": round(run.train_seconds, 1),
                "samples_per_second": round(run.samples_per_second),
                "peak_rss_trainer_mib": round(own),
                "peak_rss_largest_worker_mib": round(workers),
                "modality_gib": round(rows * width * 4 / 2**30, 2),
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gib", type=float, default=3.0, help="file size to write")
    parser.add_argument("--limit-gib", type=float, default=1.5, help="memory cap of the trainer")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--method", default="clip")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--batch", type=int, default=512)
    parser.add_argument("--dir", default=None, help="where to write the file (default: a temp dir)")
    parser.add_argument("--child", choices=("probe", "train"), help=argparse.SUPPRESS)
    parser.add_argument("--file", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        child(args)
        return

    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        path = Path(tmp) / "big.h5"
        start = time.perf_counter()
        n = write_file(path, args.gib)
        size = path.stat().st_size
        print(
            f"wrote {path.name}: {n} samples, {size / 2**30:.2f} GiB (chunked) in "
            f"{time.perf_counter() - start:.0f} s",
            file=sys.stderr,
        )
        limit = int(args.limit_gib * 2**30)

        def capped(role: str) -> subprocess.CompletedProcess[str]:
            command = [sys.executable, __file__, "--child", role, "--file", str(path)]
            command += ["--method", args.method, "--epochs", str(args.epochs)]
            command += ["--batch", str(args.batch), "--workers", str(args.workers)]
            return subprocess.run(
                command,
                preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_AS, (limit, limit)),
                capture_output=True,
                text=True,
                check=False,
            )

        probe, proc = capped("probe"), capped("train")
        if proc.returncode != 0:
            sys.exit(
                f"training under the cap failed (rc {proc.returncode}):\n{proc.stderr[-3000:]}"
            )
        if probe.returncode == 0:
            bite = "succeeded: the cap does not bite"
        elif "MemoryError" in probe.stderr:
            bite = "MemoryError"
        else:
            bite = f"failed otherwise (rc {probe.returncode}): {probe.stderr[-300:]}"
        result = json.loads(proc.stdout.strip().splitlines()[-1])
        result.update(
            file_gib=round(size / 2**30, 2),
            cap="RLIMIT_AS",
            cap_gib=args.limit_gib,
            workers=args.workers,
            reading_one_modality_whole=bite,
        )
        print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
