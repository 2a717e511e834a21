"""``report.html``: one static page (no server, no network, opens from disk) that gathers a
bench directory's results with PNG figures written beside it (``product.md``, Report).

Everything is rebuilt from files, so ``mmfactor report DIR`` works on any bench directory:
``results.jsonl`` (the records) and the run directories ``runs/<data>/<method>/seed<k>/``
(``config.yaml``, ``metrics.json`` with the per-epoch history, ``embeddings.npz`` written by
the bench for seed 0). Sections, each present when the records hold what it needs:

1. the results tables (mean ± std over seeds, as ``results.md``);
2. accuracy against the share of unique information (FactorCL Figure 1 analogue);
3. factors x targets heat maps per method;
4. probed MI between each factor and each ground-truth latent, in bits (FactorCL Table 1
   analogue; :func:`mmfactor.evaluate.latent_information`);
5. robustness: each modality missing at test time, and input-noise levels;
6. 2-D embeddings (PCA) of the shared and specific factors, coloured by the target;
7. training curves; 8. the run configs and the mmfactor version.
"""

from __future__ import annotations

import html
import re
from pathlib import Path
from typing import Any

import numpy as np

from mmfactor import __version__
from mmfactor.bench.plots import method_style, outside_legend, plot_mix
from mmfactor.diagnostics.dependence import standardise
from mmfactor.evaluate.metrics import mean_std
from mmfactor.evaluate.protocol import (
    PRIMARY_METRIC,
    factor_target_table,
    standard_records,
)
from mmfactor.io import atomic_write, read_json, write_text

CSS = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1200px; color: #222; }
h1 { margin-bottom: 0.2em; } h2 { border-bottom: 1px solid #ccc; margin-top: 2em; }
table { border-collapse: collapse; margin: 0.8em 0; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }
th:first-child, td:first-child { text-align: left; }
th { background: #f3f3f3; } img { max-width: 100%; margin: 0.5em 0; }
.meta { color: #666; } figure { margin: 1em 0; } figcaption { color: #555; font-size: 0.9em; }
pre { background: #f7f7f7; padding: 0.6em; overflow-x: auto; font-size: 0.8em; }
"""


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: Path) -> None:
    atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=110))
    _plt().close(fig)


def run_dir_name(dataset_label: str) -> str:
    """The directory under ``runs/`` that holds a data set's runs."""
    return dataset_label.replace(" ", "-").replace(":", "-")


def primary_target(record: dict[str, Any]) -> str:
    """The target a record's bench entry is about: its supervising target, else the data
    set's default ("" when neither is known)."""
    return record.get("primary_target") or record.get("bench_target") or ""


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-")


# --- bench-time artefact --------------------------------------------------------------------
def save_embeddings(
    test_blocks: dict[str, np.ndarray], data: Any, target: str | None, path: str | Path
) -> None:
    """2-D PCA coordinates of each factor block of the test split (``Factors.blocks()`` of
    ``mf.encode(model, data, split="test")``), with the target's values, as ``path``
    (``.npz``, written atomically) for the report's embedding plots."""
    from sklearn.decomposition import PCA

    blocks = {k: v for k, v in test_blocks.items() if k != "all"}
    arrays: dict[str, np.ndarray] = {}
    for name, values in blocks.items():
        x = standardise(values)
        if x.shape[1] >= 2:
            arrays[f"block:{name}"] = PCA(2, random_state=0).fit_transform(x).astype(np.float32)
    if target is not None and target in data.targets:
        tgt = data.targets[target]
        arrays["target"] = np.asarray(tgt.values[data.indices("test")])
        arrays["target_kind"] = np.array(tgt.kind)
        arrays["target_name"] = np.array(target)

    def write(f: Any) -> None:
        np.savez(f, **arrays)  # type: ignore[arg-type]

    atomic_write(path, write)


# --- figures ----------------------------------------------------------------------------------
def _heatmap_grid(
    tables: dict[str, dict[str, dict[str, float]]], title: str, label: str, path: Path
) -> bool:
    """One heat map per method: ``tables[method][row][column]``."""
    tables = {m: t for m, t in tables.items() if t}
    if not tables:
        return False
    plt = _plt()
    n = len(tables)
    cols = min(n, 4)
    rows = -(-n // cols)
    fig, axes = plt.subplots(
        rows, cols, figsize=(4.4 * cols, 3.8 * rows), squeeze=False, layout="constrained"
    )
    values = [v for t in tables.values() for row in t.values() for v in row.values()]
    values = [v for v in values if np.isfinite(v)] or [0.0]  # a missing value has no colour
    vmin, vmax = min(values), max(values)
    for ax, (method, table) in zip(axes.flat, tables.items(), strict=False):
        row_names = list(table)
        col_names = sorted({c for row in table.values() for c in row})
        grid = np.array([[table[r].get(c, np.nan) for c in col_names] for r in row_names])
        im = ax.imshow(grid, cmap="viridis", vmin=vmin, vmax=max(vmax, vmin + 1e-9), aspect="auto")
        ax.set_xticks(range(len(col_names)), col_names, rotation=45, ha="right", fontsize=7)
        ax.set_yticks(range(len(row_names)), row_names, fontsize=7)
        for (i, j), v in np.ndenumerate(grid):
            if np.isfinite(v):
                ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=6, color="w")
        ax.set_title(method, fontsize=9)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    fig.colorbar(im, ax=axes, shrink=0.6, label=label)
    fig.suptitle(title, fontsize=10)
    _save(fig, path)
    return True


def _number(value: float | None, spec: str) -> str:
    """``value`` formatted by ``spec``; "n/a" when it is missing or not finite."""
    return "n/a" if value is None or not np.isfinite(value) else format(value, spec)


def _metric_of(recs: list[dict[str, Any]], method: str) -> str:
    for r in recs:
        if r["method"] == method and r["metric"] in PRIMARY_METRIC.values():
            return str(r["metric"])
    return "accuracy"


def _factor_target_tables(recs: list[dict[str, Any]]) -> dict[str, dict[str, dict[str, float]]]:
    """``tables[method][factors][target]``: each method's probe metric on complete data."""
    out = {}
    for method in sorted({r["method"] for r in recs}):
        mine = [r for r in recs if r["method"] == method and r["protocol"] != "head"]
        if mine:
            out[method] = factor_target_table(mine, _metric_of(mine, method), mine[0]["protocol"])
    return out


def _latent_tables(recs: list[dict[str, Any]]) -> dict[str, dict[str, dict[str, float]]]:
    out: dict[str, dict[str, dict[str, float]]] = {}
    acc: dict[tuple[str, str, str], list[float]] = {}
    for r in recs:
        if r["protocol"] == "latent-probe":
            key = (r["method"], r["factors"], r["target"].removeprefix("latent:"))
            acc.setdefault(key, []).append(r["value"])
    for (m, f, t), v in sorted(acc.items()):
        out.setdefault(m, {}).setdefault(f, {})[t] = float(np.mean(v))
    return out


def _latent_html(tables: dict[str, dict[str, dict[str, float]]]) -> str:
    parts = []
    for method, table in tables.items():
        latents = sorted({c for row in table.values() for c in row})
        head = "".join(f"<th>{html.escape(c)}</th>" for c in latents)
        rows = "".join(
            f"<tr><td>{html.escape(f)}</td>"
            + "".join(f"<td>{_number(row.get(c), '.2f')}</td>" for c in latents)
            + "</tr>"
            for f, row in table.items()
        )
        parts.append(
            f"<p><b>{html.escape(method)}</b></p><table><tr><th>factors</th>{head}</tr>"
            f"{rows}</table>"
        )
    return "".join(parts)


def _robustness_missing(recs: list[dict[str, Any]], path: Path) -> bool:
    """Grouped bars: probe on all factors for the primary target, complete and each modality
    missing, per method."""
    rows = [
        r
        for r in recs
        if r["factors"] == "all"
        and r["protocol"] != "head"
        and r["target"] == primary_target(r)
        and r["metric"] in PRIMARY_METRIC.values()
    ]
    conditions = sorted({tuple(r["missing"]) for r in rows})
    if len(conditions) < 2:
        return False
    methods = sorted({r["method"] for r in rows})
    plt = _plt()
    fig, ax = plt.subplots(figsize=(max(6, 0.7 * len(methods) * len(conditions) / 2), 3.8))
    width = 0.8 / len(conditions)
    for k, cond in enumerate(conditions):
        stats = [
            mean_std(
                [r["value"] for r in rows if r["method"] == m and tuple(r["missing"]) == cond]
                or [np.nan]
            )
            for m in methods
        ]
        label = "complete" if not cond else "without " + "+".join(cond)
        ax.bar(
            np.arange(len(methods)) + k * width,
            [s[0] for s in stats],
            width,
            yerr=[s[1] for s in stats],
            label=label,
            capsize=2,
        )
    ax.set_xticks(np.arange(len(methods)) + 0.4 - width / 2, methods, rotation=30, ha="right")
    ax.set_ylabel(rows[0]["metric"] + " (probe on all factors)")
    ax.set_title("Missing modality at test time", fontsize=10)
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    _save(fig, path)
    return True


def _robustness_noise(records: list[dict[str, Any]], path: Path) -> bool:
    rows = [r for r in records if "noise" in r and r["metric"] in PRIMARY_METRIC.values()]
    if not rows:
        return False
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7.2, 4))
    methods = sorted({r["method"] for r in rows})
    for method in methods:
        levels = sorted({r["noise"] for r in rows if r["method"] == method})
        stats = [
            mean_std([r["value"] for r in rows if r["method"] == method and r["noise"] == lv])
            for lv in levels
        ]
        ax.errorbar(
            levels,
            [s[0] for s in stats],
            yerr=[s[1] for s in stats],
            capsize=3,
            markersize=4,
            label=method,
            **method_style(method, methods),
        )
    ax.set_xlabel("input noise (std, in units of each feature's std)")
    ax.set_ylabel(rows[0]["metric"] + " (probe on all factors)")
    ax.set_title("Robustness to input noise (probe fitted on clean data)", fontsize=10)
    ax.grid(alpha=0.3)
    outside_legend(ax)
    fig.tight_layout()
    _save(fig, path)
    return True


def _run_files(runs: dict[str, Path], name: str) -> list[tuple[str, Path]]:
    """``(method, file)`` for each run directory that holds the file ``name``."""
    return [(m, run / name) for m, run in sorted(runs.items()) if (run / name).exists()]


def _embeddings(runs: dict[str, Path], path: Path) -> bool:
    """Grid: a row per method, a column per factor block, PCA coordinates coloured by target."""
    loaded = {}
    for method, file in _run_files(runs, "embeddings.npz"):
        with np.load(file, allow_pickle=False) as z:
            loaded[method] = {k: z[k] for k in z.files}
    if not loaded:
        return False
    blocks = sorted({k for e in loaded.values() for k in e if k.startswith("block:")})
    plt = _plt()
    fig, axes = plt.subplots(
        len(loaded), len(blocks), figsize=(2.6 * len(blocks), 2.4 * len(loaded)), squeeze=False
    )
    for i, (method, e) in enumerate(loaded.items()):
        colour = e.get("target")
        categorical = colour is not None and str(e.get("target_kind")) == "classification"
        for j, block in enumerate(blocks):
            ax = axes[i, j]
            ax.set_xticks([])
            ax.set_yticks([])
            if block in e:
                xy = e[block]
                style: dict[str, Any] = {"cmap": "viridis"}
                if categorical and colour is not None:  # class codes: distinct colours
                    style = {"cmap": "tab10", "vmin": 0, "vmax": max(9, int(colour.max()))}
                ax.scatter(xy[:, 0], xy[:, 1], c=colour, s=3, **style)
            else:
                ax.set_frame_on(False)
                ax.text(
                    0.5,
                    0.5,
                    "no such factor",
                    ha="center",
                    color="0.6",
                    fontsize=7,
                    transform=ax.transAxes,
                )
            if i == 0:
                ax.set_title(block.removeprefix("block:"), fontsize=8)
            if j == 0:
                ax.set_ylabel(method, fontsize=8)
    name = next((str(e["target_name"]) for e in loaded.values() if "target_name" in e), "")
    fig.suptitle(f"Test factors, 2-D PCA, coloured by {name} (seed 0)", fontsize=10)
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.35 / fig.get_figheight()))  # room for the title
    _save(fig, path)
    return True


def _training_curves(runs: dict[str, Path], path: Path) -> bool:
    histories = {}
    for method, file in _run_files(runs, "metrics.json"):
        metrics = read_json(file)
        if history := metrics.get("history"):
            diverged = " (diverged)" if metrics.get("status") == "diverged" else ""
            histories[method + diverged] = history
    if not histories:
        return False
    plt = _plt()
    n = len(histories)
    cols = min(n, 5)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.0 * cols, 2.3 * rows), squeeze=False)
    for ax, (method, history) in zip(axes.flat, histories.items(), strict=False):
        for key, style in (("train/loss", "-"), ("valid/loss", "--")):
            points = [(h["epoch"], h[key]) for h in history if key in h]
            if points:
                ax.plot(*zip(*points, strict=True), style, label=key.split("/")[0])
        ax.set_title(method, fontsize=8)
        ax.tick_params(labelsize=6)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    axes[0, 0].legend(fontsize=6)
    fig.suptitle("Training curves (loss per epoch, seed 0)", fontsize=10)
    fig.tight_layout()
    _save(fig, path)
    return True


# --- page -------------------------------------------------------------------------------------
def markdown_to_html(text: str) -> str:
    """The subset of Markdown that ``results.md`` uses: headings, tables, bold, paragraphs."""
    out: list[str] = []
    table: list[list[str]] = []

    def inline(s: str) -> str:
        return re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", html.escape(s))

    def flush() -> None:
        if table:
            head, *body = table
            out.append("<table><tr>" + "".join(f"<th>{inline(c)}</th>" for c in head) + "</tr>")
            out.extend(
                "<tr>" + "".join(f"<td>{inline(c)}</td>" for c in row) + "</tr>" for row in body
            )
            out.append("</table>")
            table.clear()

    for line in text.splitlines():
        if line.startswith("|"):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if not all(set(c) <= {"-", ":"} for c in cells):
                table.append(cells)
            continue
        flush()
        if line.startswith("#"):
            level = len(line) - len(line.lstrip("#"))
            out.append(f"<h{level + 1}>{inline(line[level:].strip())}</h{level + 1}>")
        elif line.startswith("!["):
            continue  # figures are placed by the report itself
        elif line.strip():
            out.append(f"<p>{inline(line)}</p>")
    flush()
    return "\n".join(out)


def _runs(out: Path) -> dict[str, dict[str, Path]]:
    """``runs[dataset dir][method]`` -> the seed-0 run directory."""
    found: dict[str, dict[str, Path]] = {}
    for run in sorted(out.glob("runs/*/*/seed0")):
        found.setdefault(run.parent.parent.name, {})[run.parent.name] = run
    return found


def _dataset_runs(runs: dict[str, dict[str, Path]], dataset: str) -> dict[str, Path]:
    """One seed-0 run per method of a data set. A data set benched under several supervising
    targets (``runs/synthetic-mix@0.5``...) shows the middle target's runs; methods trained
    only once (label-free ones) come from wherever they were trained."""
    base = run_dir_name(dataset)
    groups = sorted(g for g in runs if g == base or g.startswith(base + "-"))
    if not groups:
        return {}
    middle = groups[len(groups) // 2]
    chosen: dict[str, Path] = {}
    for group in [middle, *groups]:
        for method, run in runs[group].items():
            chosen.setdefault(method, run)
    return dict(sorted(chosen.items()))


def write_html_report(out: str | Path, records: list[dict[str, Any]], markdown: str) -> Path:
    """Write ``out/report.html`` and its PNGs from the records and run directories."""
    out = Path(out)
    runs = _runs(out)
    clean = standard_records(records)
    sections: list[str] = []

    def figure(name: str, made: bool, caption: str) -> None:
        if made:
            sections.append(
                f'<figure><img src="{html.escape(name)}" alt="{html.escape(caption)}">'
                f"<figcaption>{html.escape(caption)}</figcaption></figure>"
            )

    sections.append(markdown_to_html(markdown).replace("<h2>Benchmark results</h2>", ""))
    sections.append("<h2>Accuracy against the share of unique information</h2>")
    exact = plot_mix(records, out / "mix.png")
    made = exact or plot_mix(records, out / "mix.png", exact=False)
    figure(
        "mix.png",
        made,
        "FactorCL Figure 1 analogue: linear-probe accuracy on synthetic's mix@r (r = share of "
        "the task's information unique to one modality). "
        + ("One model per r." if exact else "Each method's model probed on every r."),
    )
    if not made:
        sections.append("<p class='meta'>No mix@r targets in these records.</p>")
    for dataset in sorted({r["dataset"] for r in records}):
        recs = [r for r in clean if r["dataset"] == dataset]
        slug = _slug(dataset)
        sections.append(f"<h2>{html.escape(dataset)}</h2>")
        sections.append("<h3>Factors x targets</h3>")
        figure(
            f"factors-targets-{slug}.png",
            _heatmap_grid(
                _factor_target_tables(recs),
                f"{dataset}: linear probe per factor block and target (complete data)",
                "test metric",
                out / f"factors-targets-{slug}.png",
            ),
            "Which factor block predicts which target, per method.",
        )
        latents = _latent_tables([r for r in records if r["dataset"] == dataset])
        if latents:
            sections.append("<h3>Probed MI with the ground-truth latents (bits)</h3>")
            figure(
                f"latent-mi-{slug}.png",
                _heatmap_grid(
                    latents,
                    f"{dataset}: probed MI (bits) between factors and latents",
                    "bits",
                    out / f"latent-mi-{slug}.png",
                ),
                "FactorCL Table 1 analogue: a lower bound from linear probes, "
                "-1/2 log2(1 - R^2) per latent dimension, summed.",
            )
            sections.append(_latent_html(latents))
        sections.append("<h3>Robustness</h3>")
        figure(
            f"missing-{slug}.png",
            _robustness_missing(recs, out / f"missing-{slug}.png"),
            "Each modality missing at test time (its presence flag false).",
        )
        figure(
            f"noise-{slug}.png",
            _robustness_noise(
                [r for r in records if r["dataset"] == dataset], out / f"noise-{slug}.png"
            ),
            "Gaussian noise added to every test input.",
        )
        dataset_runs = _dataset_runs(runs, dataset)
        sections.append("<h3>Embeddings and training</h3>")
        figure(
            f"embeddings-{slug}.png",
            _embeddings(dataset_runs, out / f"embeddings-{slug}.png"),
            "Shared and specific factors of the test split, 2-D PCA, coloured by the target.",
        )
        figure(
            f"training-{slug}.png",
            _training_curves(dataset_runs, out / f"training-{slug}.png"),
            "Training and validation loss per epoch.",
        )
    sections.append("<h2>Run configs</h2>")
    for dataset, by_method in runs.items():
        for method, run in by_method.items():
            config = run / "config.yaml"
            if config.exists():
                sections.append(
                    f"<details><summary>{html.escape(dataset)} / {html.escape(method)}</summary>"
                    f"<pre>{html.escape(config.read_text())}</pre></details>"
                )
    versions = sorted({str(r.get("version")) for r in records if r.get("version")})
    page = (
        "<!DOCTYPE html><html><head><meta charset='utf-8'>"
        "<title>mmfactor benchmark report</title>"
        f"<style>{CSS}</style></head><body>"
        "<h1>mmfactor benchmark report</h1>"
        f"<p class='meta'>mmfactor {html.escape(__version__)} (records written by "
        f"{html.escape(', '.join(versions) or 'unknown')}); {len(records)} records; "
        "mean ± std over seeds.</p>" + "\n".join(sections) + "</body></html>"
    )
    path = out / "report.html"
    write_text(path, page)
    return path


__all__ = [
    "markdown_to_html",
    "primary_target",
    "run_dir_name",
    "save_embeddings",
    "write_html_report",
]
