"""Pictures of bench results."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mmfactor.evaluate.metrics import mean_std
from mmfactor.evaluate.protocol import standard_records
from mmfactor.io import atomic_write


def mix_curves(
    records: list[dict[str, Any]], exact: bool = True
) -> dict[str, list[tuple[float, float, float]]]:
    """Accuracy against the unique share r, per method: ``[(r, mean, std)]`` sorted by r,
    over seeds, from the linear probe on all factors on complete data. ``exact``: only the
    records whose supervising (bench) target is the probed ``mix@r`` target (a model per r);
    otherwise every probe of a ``mix@r`` target (one model, probed on each r)."""
    values: dict[str, dict[float, list[float]]] = {}
    for rec in standard_records(records):
        target = rec["target"]
        if (
            isinstance(target, str)
            and target.startswith("mix@")
            and (rec.get("bench_target") == target or not exact)
            and rec["factors"] == "all"
            and rec["protocol"] != "head"
            and not rec["missing"]
            and rec["metric"] == "accuracy"
        ):
            r = float(target.removeprefix("mix@"))
            values.setdefault(rec["method"], {}).setdefault(r, []).append(rec["value"])
    return {
        method: [(r, *mean_std(v)) for r, v in sorted(by_r.items())]
        for method, by_r in sorted(values.items())
    }


def plot_mix(records: list[dict[str, Any]], path: str | Path, exact: bool = True) -> bool:
    """Write accuracy against r (mean ± std over seeds, one line per method) as a PNG at
    ``path`` if the records hold at least two values of r; returns whether it did.
    ``exact``: see :func:`mix_curves`."""
    curves = mix_curves(records, exact)
    if not curves or max(len(c) for c in curves.values()) < 2:
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4), dpi=120)
    for method, points in curves.items():
        r, mean, std = zip(*points, strict=True)
        style = "--" if method == "raw" else "-"
        ax.errorbar(r, mean, yerr=std, label=method, marker="o", capsize=3, linestyle=style)
    ax.set_xlabel("r: share of task information unique to one modality (target mix@r)")
    ax.set_ylabel("linear-probe test accuracy (all factors)")
    n_seeds = len({rec["seed"] for rec in records})
    datasets = ", ".join(
        sorted({rec["dataset"] for rec in records if str(rec["target"]).startswith("mix@")})
    )
    how = "a model per r" if exact else "one model per method, probed on each r"
    ax.set_title(
        f"{datasets}: accuracy against unique share\n({how}; {n_seeds} seeds, mean ± std)",
        fontsize=10,
    )
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    atomic_write(path, lambda f: fig.savefig(f, format="png"))
    plt.close(fig)
    return True
