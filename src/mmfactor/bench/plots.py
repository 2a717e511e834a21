"""Pictures of bench results."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mmfactor.evaluate.metrics import mean_std
from mmfactor.evaluate.protocol import standard_records
from mmfactor.io import atomic_write

_MARKERS = ("o", "s", "^", "D", "v", "P", "X")


def method_style(method: str, methods: Sequence[str]) -> dict[str, Any]:
    """Line style of one method among ``methods`` for ``errorbar``/``plot``: thirteen and more
    methods stay apart (tab20 colours, markers cycling); ``raw`` is a dashed black reference."""
    if method == "raw":
        return {"color": "black", "linestyle": "--", "marker": "."}
    import matplotlib

    k = sorted(m for m in methods if m != "raw").index(method)
    colour = matplotlib.colormaps["tab20"](k % 20)
    return {"color": colour, "linestyle": "-", "marker": _MARKERS[k % len(_MARKERS)]}


def outside_legend(ax: Any) -> None:
    """The legend right of the axes, so that it hides no line."""
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)


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

    fig, ax = plt.subplots(figsize=(7.2, 4), dpi=120)
    for method, points in curves.items():
        r, mean, std = zip(*points, strict=True)
        style = method_style(method, list(curves))
        ax.errorbar(r, mean, yerr=std, label=method, capsize=3, markersize=4, **style)
    ax.set_xlabel("r: share of task information unique to one modality (target mix@r)")
    ax.set_ylabel("linear-probe test accuracy (all factors)")
    n_seeds = len({rec["seed"] for rec in records})
    seeds = f"{n_seeds} seed" + ("s" if n_seeds != 1 else "")
    datasets = ", ".join(
        sorted({rec["dataset"] for rec in records if str(rec["target"]).startswith("mix@")})
    )
    how = "a model per r" if exact else "one model per method, probed on each r"
    ax.set_title(
        f"{datasets}: accuracy against unique share\n({how}; {seeds}, mean ± std)",
        fontsize=10,
    )
    ax.grid(alpha=0.3)
    outside_legend(ax)
    fig.tight_layout()
    atomic_write(path, lambda f: fig.savefig(f, format="png"))
    plt.close(fig)
    return True
