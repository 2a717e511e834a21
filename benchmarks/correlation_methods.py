"""MUCMM, CCA and deep CCA (issue 8's figures), in one run.

1. Linear setting: ``mucmm`` with identity encoders and linear heads on ``linear`` data
   (two 20-d views, common rank 2, individual rank 2, isotropic noise 0.3, n 3000; k = r = 2
   as the true ranks): the
   cosines of the principal angles between the span of the score gradients over the test
   samples and the true loading subspaces, seeds 0-2. 1.0 means the gradients live exactly
   in the true subspace.
2. ``uci-mfeat`` (fou + pix, stratified 70/15/15 split, 10 components per view): linear-probe
   test accuracy on the digit for ``cca``, ``dcca`` and ``mucmm`` (``shared``: both views'
   common codes, as mvlearn probes its embeddings; ``mucmm`` also with its individual codes,
   ``all``) and the raw concatenated features, seeds 0-2, beside mvlearn's published figures
   (CCA 0.873, DCCA 0.889, raw 0.982; 70/30 split). Every method runs with its documented
   ``uci-mfeat`` config (chosen on the validation split); ``mucmm`` also with a small CNN
   over the pixel image as its pixel encoder (a user-supplied module, trained).
3. Pictures: ``mucmm``'s score gradients on the 240 pixel features (a 16 x 15 image) for
   one test digit of each class, common score against the pixel view's individual score:
   ``OUT/mfeat_score_gradients[_cnn][_smoothgrad].png`` (MLP or CNN pixel encoder; plain
   gradients or SmoothGrad over 30 noisy copies).

Usage: ``python benchmarks/correlation_methods.py [--out runs/correlation]`` (about 5
minutes on 2 cores).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import nn

import mmfactor as mf
from mmfactor.data.batching import make_loader
from mmfactor.evaluate.metrics import mean_std
from mmfactor.evaluate.reference import RawFeatures
from mmfactor.interpret import plot_score_gradients, score_gradients

MVLEARN = {"cca": 0.873, "dcca": 0.889, "raw": 0.982}
# label -> (method, options made fresh per run: a module must not be shared across runs)
VARIANTS: dict[str, tuple[str, Callable[[], dict]]] = {
    "cca": ("cca", dict),
    "dcca": ("dcca", dict),
    "mucmm": ("mucmm", dict),
    "mucmm, CNN pixel encoder": (
        "mucmm",
        lambda: {"encoders": {"pix": pixel_cnn()}, "freeze_encoders": False},
    ),
}
PIX_SHAPE = (16, 15)  # mfeat-pix: 15 x 16 pixel averages, stored row by row


def cell(values: list[float]) -> str:
    m, s = mean_std(values)
    return f"{m:.3f} ± {s:.3f}"


def pixel_cnn() -> nn.Module:
    """A small CNN over the 240 pixel features seen as the 16 x 15 image (any module works
    as a MUCMM encoder; this one is trained with the heads)."""
    return nn.Sequential(
        nn.Unflatten(1, (1, *PIX_SHAPE)),
        nn.Conv2d(1, 16, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(4),
        nn.Flatten(),
        nn.Linear(512, 256),
    )


def train(name: str, data, seed: int, family: str, **options) -> mf.methods.Method:
    config = mf.methods.default_config(name, family)
    torch.manual_seed(seed)
    model = mf.methods.build(name, data.modalities, **{**config["method"], **options})
    mf.fit(model, data, seed=seed, progress=False, **config["train"])
    return model


def principal_cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    qa, _ = np.linalg.qr(a)
    qb, _ = np.linalg.qr(b)
    return np.linalg.svd(qa.T @ qb, compute_uv=False)


def linear_setting(seeds: list[int]) -> str:
    rows: dict[str, list[float]] = {}
    for seed in seeds:
        data = mf.datasets.load("linear", n=3000, seed=seed)
        # The ranks are known here (as JIVE-type analyses assume them chosen).
        model = train("mucmm", data, seed, "linear", embed_dim=2, individual_dim=2)
        loadings = {k: np.asarray(v) for k, v in data.info["loadings"].items()}
        batch = next(iter(make_loader(data, data.indices("test"), len(data.indices("test")))))
        grads = score_gradients(model, batch)
        for m in data.modality_names:
            for score in ("score:common", f"score:{m}"):
                span = np.linalg.svd(grads[score][m].T, full_matrices=False)[0][:, :2]
                for truth in ("common", "individual"):
                    cos = principal_cosines(span, loadings[f"{truth}:{m}"])
                    rows.setdefault(f"{score} on {m} vs true {truth}", []).append(float(cos.min()))
        print(f"linear seed {seed} done", flush=True)
    lines = ["| gradient span vs loadings | smallest principal cosine |", "|---|---|"]
    lines += [f"| {k} | {cell(v)} |" for k, v in rows.items()]
    return "\n".join(lines)


def mfeat(seeds: list[int], out: Path) -> str:
    acc: dict[str, list[float]] = {}
    for seed in seeds:
        data = mf.datasets.load("uci-mfeat", views=["fou", "pix"], seed=seed)
        for label, (name, make_options) in VARIANTS.items():
            start = time.perf_counter()
            options = make_options()
            model = train(name, data, seed, "uci-mfeat", **options)
            factors = ["shared", "all"] if name == "mucmm" else ["shared"]
            for r in mf.evaluate(model, data, factors=factors, seed=seed):
                if r["metric"] == "accuracy":
                    acc.setdefault(f"{label} ({r['factors']})", []).append(r["value"])
            print(f"uci-mfeat {label} seed {seed}: {time.perf_counter() - start:.0f} s", flush=True)
            if name == "mucmm" and seed == seeds[0]:
                stem = "mfeat_score_gradients" + ("_cnn" if options else "")
                draw(model, data, out / f"{stem}.png")
                draw(model, data, out / f"{stem}_smoothgrad.png", smooth=30)
        for r in mf.evaluate(RawFeatures(), data, factors=["all"], seed=seed):
            if r["metric"] == "accuracy":
                acc.setdefault("raw (all)", []).append(r["value"])
    lines = ["| method (factors probed) | linear probe accuracy | mvlearn |", "|---|---|---|"]
    for key, values in acc.items():
        reference = MVLEARN.get(key.split(" ")[0], "") if "," not in key else ""
        lines.append(f"| {key} | {cell(values)} | {reference} |")
    return "\n".join(lines)


def draw(model, data, path: Path, smooth: int = 0) -> None:
    test = data.indices("test")
    digits = data.targets["digit"].values[test]
    first = np.array([test[np.flatnonzero(digits == d)[0]] for d in range(10)])
    batch = next(iter(make_loader(data, first, len(first))))
    grads = score_gradients(model, batch, scores=["score:common", "score:pix"], smooth=smooth)
    pix = {s: {"pix": g["pix"]} for s, g in grads.items()}
    plot_score_gradients(
        pix,
        path,
        image_shape={"pix": PIX_SHAPE},
        inputs={"pix": batch.x["pix"].numpy()},
        max_samples=10,
        titles=[f"digit {d}" for d in range(10)],
    )
    print(f"wrote {path}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--out", default="runs/correlation")
    args = parser.parse_args()
    torch.set_num_threads(2)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    seeds = list(range(args.seeds))
    print("\n## Linear setting: mucmm score gradients against the true loadings\n")
    print(linear_setting(seeds))
    print("\n## uci-mfeat (fou + pix), digit, test split\n")
    print(mfeat(seeds, out))


if __name__ == "__main__":
    main()
