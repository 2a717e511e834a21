"""FactorCL side by side with the paper's released synthetic setting.

Trains ``factorcl-sup`` and ``factorcl-ssl`` (10 epochs) and ``clip`` (20 epochs) on
``factorcl-synthetic`` with the ``factorcl-synthetic`` defaults (the released code's sizes:
encoders 100-512-512-512-128, batch 256, lr 1e-4, concat critics 512-512, 5 critic steps
per batch) and prints linear-probe test accuracy next to the released notebook's figures.

Two probes: on the encoder outputs [e_1 ; e_2] (what the notebook probes, its
``get_embedding``) and on all of mmfactor's factor blocks (``all``). The probe is
mmfactor's (standardised logistic regression, strength chosen on valid), not the
notebook's unscaled one.

    python benchmarks/factorcl_paper.py --out runs/factorcl-paper [--set train.accelerator=gpu]

Each run lives in ``OUT/<method>`` and resumes if interrupted; ``OUT/results.json`` holds
the figures.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

import mmfactor as mf
from mmfactor.config import resolve
from mmfactor.data.batching import make_loader
from mmfactor.evaluate.probes import fit_probe, score_probe
from mmfactor.evaluate.protocol import encode
from mmfactor.io import write_json
from mmfactor.runs import data_from_config, train_from_config

DATA = "factorcl-synthetic"
#: Linear-probe accuracy (%) of the released notebook (Synthetic/synthetic_example.ipynb).
NOTEBOOK = {"factorcl-sup": 98.63, "factorcl-ssl": 97.17, "clip": 95.55}


@torch.no_grad()
def embeddings(model: mf.methods.Method, data: mf.MultimodalDataset, split: str) -> np.ndarray:
    """[e_1 ; ... ; e_M] of one split ``(N, M embed_dim)``."""
    model.eval()
    device = next(model.parameters()).device
    parts = []
    for batch in make_loader(data, data.indices(split), 2048):
        emb = model.embed(batch.to(device))
        parts.append(torch.cat([emb[m] for m in model.modality_names], 1).cpu().numpy())
    return np.concatenate(parts)


def probe_accuracy(features: dict[str, np.ndarray], data: mf.MultimodalDataset, seed: int) -> float:
    y = {s: data.targets["y"].values[data.indices(s)] for s in ("train", "valid", "test")}
    probe = fit_probe(
        "linear-probe",
        "classification",
        (features["train"], y["train"]),
        (features["valid"], y["valid"]),
        seed=seed,
    )
    return score_probe(probe, features["test"], y["test"], "classification")["accuracy"]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True)
    p.add_argument("--methods", default=",".join(NOTEBOOK))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--set", action="append", default=[], dest="sets", metavar="KEY=VALUE")
    args = p.parse_args()
    out = Path(args.out)
    rows: list[dict[str, Any]] = []
    for method in args.methods.split(","):
        train = {"seed": args.seed, "target": "y", "progress": False}
        cfg = resolve(method, DATA, sets=args.sets, overrides={"train": train})
        data = data_from_config(cfg)
        t0 = time.perf_counter()
        run, _ = train_from_config(cfg, out / method, data=data)
        wall = time.perf_counter() - t0
        model = run.model
        emb = {s: embeddings(model, data, s) for s in ("train", "valid", "test")}
        factors = {
            s: encode(model, data, split=s).blocks()["all"] for s in ("train", "valid", "test")
        }
        row = {
            "method": method,
            "epochs": run.epochs,
            "train_seconds": run.train_seconds,
            "wall_seconds": wall,
            "samples_per_second": run.samples_per_second,
            "device": str(next(model.parameters()).device),
            "probe_embedding": probe_accuracy(emb, data, args.seed),
            "probe_all_factors": probe_accuracy(factors, data, args.seed),
            "notebook": NOTEBOOK.get(method),
        }
        rows.append(row)
        print(row, flush=True)
    write_json(out / "results.json", rows)
    print("\n| method | epochs | probe on [e1; e2] | probe on all factors | notebook | s/epoch |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['method']} | {r['epochs']} | {100 * r['probe_embedding']:.2f} | "
            f"{100 * r['probe_all_factors']:.2f} | {r['notebook']} | "
            f"{r['train_seconds'] / r['epochs']:.1f} |"
        )


if __name__ == "__main__":
    main()
