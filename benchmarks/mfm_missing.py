"""MFM's claims on data with ground truth (issue 6's figures), in one run.

1. Missing modalities: on ``synthetic`` (sequence kind) ``mfm`` predicts a missing modality's
   codes from the observed ones (surrogate inference), ``supervised`` zeroes the missing
   embedding. Accuracy of each one's own head with all modalities and with each one missing,
   seeds 0-2 (the ``quick`` suite's synthetic entry, run through ``mmfactor bench``).
2. Reconstruction of the missing modality (test split, squared error per real step and
   feature) against two references: the training mean (per step and feature), and ``mfm``'s
   own reconstruction when the modality is present.
3. Factors x targets for ``mfm`` (from the same records).
4. Factor gradients on planted sequences (signal at known steps): a plot, and where the
   peaks fall.

Usage: ``python benchmarks/mfm_missing.py --out runs/mfm`` (about 20 minutes on 2 cores;
resumable: finished runs are skipped).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

import mmfactor as mf
from mmfactor.bench import get_suite, run_bench
from mmfactor.data.batching import make_loader
from mmfactor.data.examples import planted_sequences
from mmfactor.evaluate.metrics import mean_std
from mmfactor.evaluate.protocol import factor_target_table, format_table, latent_table
from mmfactor.runs import load_run


def cell(values: list[float]) -> str:
    m, s = mean_std(values)
    return f"{m:.3f} ± {s:.3f}"


def accuracy_table(records: list[dict]) -> str:
    lines = ["| method | read-out | complete | without x1 | without x2 |", "|---|---|---|---|---|"]
    for method in ("mfm", "supervised"):
        for readout, keep in (
            ("head", lambda r: r["protocol"] == "head"),
            ("probe (all factors)", lambda r: r["protocol"] != "head" and r["factors"] == "all"),
        ):
            rows = [
                r
                for r in records
                if r["method"] == method
                and r["metric"] == "accuracy"
                and r["target"] == "mix@0.5"
                and keep(r)
            ]
            cells = [
                cell([r["value"] for r in rows if r["missing"] == miss])
                for miss in ([], ["x1"], ["x2"])
            ]
            lines.append(f"| {method} | {readout} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


@torch.no_grad()
def reconstruction_errors(run_dir: Path) -> dict[str, dict[str, float]]:
    """Per modality: mean squared error per real step and feature on test, for the
    surrogate reconstruction (modality missing), the full-data one, and the training mean."""
    model, data, _ = load_run(run_dir)
    model.eval()
    out: dict[str, dict[str, float]] = {}
    for m in model.modality_names:
        x = data.arrays[m]
        train, test = data.indices("train"), data.indices("test")
        real = np.arange(x.shape[1])[None, :] < data.lengths[m][:, None]
        # the training mean per step and feature, over the samples that have that step
        counts = real[train].sum(0)[:, None]
        mean = (x[train] * real[train][..., None]).sum(0) / np.maximum(counts, 1)
        errors = {"surrogate (x missing)": [], "full data": [], "training mean": []}
        for missing, key in (([m], "surrogate (x missing)"), ([], "full data")):
            d = data.with_missing(missing)
            for batch in make_loader(d, test, 512):
                x_hat = model.reconstruct(batch)[m]
                errors[key].append(model.reconstruction_error(m, x_hat, batch).numpy())
        for batch in make_loader(data, test, 512):
            ref = torch.as_tensor(mean[: batch.x[m].shape[1]], dtype=torch.float32)
            ref = ref.expand_as(batch.x[m])
            errors["training mean"].append(model.reconstruction_error(m, ref, batch).numpy())
        out[m] = {k: float(np.concatenate(v).mean()) for k, v in errors.items()}
    return out


def gradient_figure(out: Path, seed: int = 0) -> str:
    signal = {"x1": [3, 4], "x2": [8, 9]}
    data = planted_sequences(n=1500, steps=12, signal_steps=signal, amplitude=1.5)
    torch.manual_seed(seed)  # the initial weights
    model = mf.methods.build(
        "mfm",
        data.modalities,
        embed_dim=16,
        z_dim=8,
        f_dim=4,
        factor_hidden=16,
        decoder_hidden=16,
        encoder={"sequence": "transformer"},
        encoder_options={"d_model": 20, "heads": 2, "layers": 2, "attention_dropout": 0.0},
    )
    mf.fit(model, data, max_epochs=25, batch_size=128, seed=seed, progress=False, patience=0)
    batch = next(iter(make_loader(data, data.indices("test"), 256, target="y")))
    model.eval()
    acc = float((model.predict(batch).argmax(1) == batch.y).float().mean())
    grads = mf.interpret.factor_gradients(model, batch)
    for sample, name in ((0, "mfm_gradients.png"), (None, "mfm_gradients_mean.png")):
        mf.interpret.plot_factor_gradients(grads, sample, out / name, marks=signal)
    lines = [
        f"planted sequences (signal at x1 steps 3-4, x2 steps 8-9), seed {seed}: test "
        f"accuracy {acc:.3f}"
    ]
    for m in signal:
        mean_profile = grads["shared"][m].mean(0)
        one = grads["shared"][m][0]
        lines.append(
            f"  F_y gradient on {m}: top-2 steps, mean over 256 test samples "
            f"{sorted(np.argsort(mean_profile)[-2:].tolist())}, sample 0 "
            f"{sorted(np.argsort(one)[-2:].tolist())}; profile {np.round(mean_profile, 3)}"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="runs/mfm")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument(
        "--latent-protocols",
        default="linear-probe",
        help="probes for the factors x latents table, comma-separated (mlp-probe is slow)",
    )
    args = parser.parse_args()
    out = Path(args.out)
    records = run_bench(
        get_suite("quick"),
        out,
        methods=["mfm", "supervised"],
        datasets=["synthetic"],
        seeds=args.seeds,
        sets=["data.kind=sequence"],
    )
    print("## Accuracy on mix@0.5 (synthetic, sequence kind), seeds", args.seeds, "\n")
    print(accuracy_table(records))
    print("\n## Reconstruction error of each modality (test; per real step and feature)\n")
    print("| seed | modality | surrogate (x missing) | full data | training mean |")
    print("|---|---|---|---|---|")
    for seed in range(args.seeds):
        errs = reconstruction_errors(out / "runs" / "synthetic" / "mfm" / f"seed{seed}")
        for m, e in errs.items():
            print(
                f"| {seed} | {m} | {e['surrogate (x missing)']:.4f} | {e['full data']:.4f} | "
                f"{e['training mean']:.4f} |"
            )
    print("\n## Factors x targets, mfm (linear probe accuracy, complete data)\n")
    print(format_table(factor_target_table([r for r in records if r["method"] == "mfm"])))
    print(
        "\n## Factors x latents, mfm (test R^2 of a probe per latent dimension, mean; "
        "seeds averaged)\n"
    )
    for protocol in args.latent_protocols.split(","):
        tables = [
            latent_table(
                load_run(out / "runs" / "synthetic" / "mfm" / f"seed{seed}")[0],
                load_run(out / "runs" / "synthetic" / "mfm" / f"seed{seed}")[1],
                protocol,
                seed,
            )
            for seed in range(args.seeds)
        ]
        mean = {
            f: {k: float(np.mean([t[f][k] for t in tables])) for k in tables[0][f]}
            for f in tables[0]
        }
        print(f"{protocol}:\n\n{format_table(mean)}\n")
    print("\n## Factor gradients\n")
    print(gradient_figure(out))
    print(
        f"\nplots: {out / 'mfm_gradients.png'} (test sample 0), "
        f"{out / 'mfm_gradients_mean.png'} (mean over 256 test samples)"
    )


if __name__ == "__main__":
    main()
