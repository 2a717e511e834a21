"""``results.md``: the bench's tables in Markdown, written with the HTML report and the mix
plot by :func:`write_report`."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from mmfactor.bench.plots import plot_mix
from mmfactor.bench.published import PUBLISHED_RUS, RUS_COLUMNS
from mmfactor.bench.records import TRAINING, not_evaluated
from mmfactor.bench.report import primary_target, write_html_report
from mmfactor.evaluate.metrics import mean_std
from mmfactor.evaluate.protocol import (
    PRIMARY_METRIC,
    factor_target_table,
    format_table,
    standard_records,
)
from mmfactor.io import write_text
from mmfactor.methods.registry import method_class

RAW = "raw"  # the raw-input reference of every bench entry


def _diverged_lines(records: list[dict[str, Any]], dataset: str) -> list[str]:
    """A note naming the data set's diverged trainings (evaluated or not)."""
    lines = []
    for r in not_evaluated(records):
        if r["dataset"] == dataset:
            d = r["diverged"]
            lines.append(
                f"- {r['method']} seed {r['seed']}: diverged at epoch {d['epoch']} step "
                f"{d['step']} ({d['part']} {d['value']}), not evaluated: {r['run_dir']}"
            )
    forced = {
        (r["method"], r["seed"])
        for r in records
        if r["dataset"] == dataset and r.get("status") == "diverged" and r["protocol"] != TRAINING
    }
    lines += [
        f"- {m} seed {s}: diverged; its scores are those of its last finite weights"
        for m, s in sorted(forced)
    ]
    return ["", "Diverged trainings (`--force` evaluates them):", "", *lines] if lines else []


def write_report(out: str | Path, records: list[dict[str, Any]]) -> str:
    """Write ``results.md`` (returned), ``report.html`` with its PNGs and, when the records
    hold a sweep over mix@r targets, ``mix.png`` into ``out``."""
    out = Path(out)
    markdown = results_markdown(records)
    if plot_mix(records, out / "mix.png"):
        markdown += "\n![accuracy on mix@r against the unique share r](mix.png)\n"
    write_text(out / "results.md", markdown)
    write_html_report(out, records, markdown)
    return markdown


def summary_line(records: list[dict[str, Any]], target: str | None) -> str:
    for r in standard_records(records):
        if (
            r["factors"] == "all"
            and r["target"] == target
            and not r["missing"]
            and r["metric"] in PRIMARY_METRIC.values()
        ):
            return f"probe {r['metric']} on {target}: {r['value']:.3f}"
    return ""


def _distinct(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Records without the repeats a reused (label-free) model leaves when one data set is
    benched under several supervising targets: one score per model, not one per entry. A
    model is its method, seed and training target; label-free ones (no training target) are
    told apart by their scores."""
    seen: set[tuple[Any, ...]] = set()
    out = []
    for r in records:
        model = r.get("trained_on") or ("label-free", r["value"])
        key: tuple[Any, ...] = (r["method"], r["seed"], model, r["target"], r["factors"])
        key += (r["protocol"], tuple(r["missing"]), r["metric"], primary_target(r) == r["target"])
        if key not in seen:
            seen.add(key)
            out.append(r)
    return out


def _cell(values: list[float], digits: int = 3) -> str:
    if not values:
        return ""
    m, s = mean_std(values)
    if not math.isfinite(m):  # a value was not a number (null in results.jsonl)
        return "n/a"
    return f"{m:.{digits}f} ± {s:.{digits}f}" if len(values) > 1 else f"{m:.{digits}f}"


def _rus_table(records: list[dict[str, Any]], dataset: str) -> list[str]:
    """Redundancy, uniqueness and synergy (:data:`~mmfactor.bench.published.RUS_COLUMNS`):
    each method's test balanced accuracy in % (linear probe on all factors, complete data)
    on ``shared``, the mean over the ``unique:<m>`` targets, and ``synergy``, each from the
    model trained for that target where the bench has one; then the published rows of the
    data set. Nothing unless the records hold all three kinds of target."""
    recs = [
        r
        for r in records
        if r["dataset"] == dataset
        and r["metric"] == "balanced_accuracy"
        and r["protocol"] == "linear-probe"
        and r["factors"] == "all"
        and not r["missing"]
    ]
    columns = {
        name: sorted({r["target"] for r in recs if r["target"].startswith(prefixes)})
        for name, prefixes in RUS_COLUMNS.items()
    }
    if not all(columns.values()):
        return []

    def per_seed(method: str, targets: list[str]) -> list[float]:
        scores: dict[int, list[float]] = {}
        for t in targets:
            rows = [r for r in recs if r["method"] == method and r["target"] == t]
            own = [r for r in rows if r.get("bench_target") == t]  # the model trained for t
            for r in own or rows:
                scores.setdefault(r["seed"], []).append(100 * r["value"])
        return [sum(v) / len(v) for v in scores.values()]

    lines = [
        "",
        "Redundancy / uniqueness / synergy (test balanced accuracy %, linear probe; "
        + ", ".join(f"{k}: {' + '.join(v)}" for k, v in columns.items())
        + "; labels: whether the method trains on the column's target):",
        "",
        "| method | labels | " + " | ".join(columns) + " |",
        "|---|---|" + "---|" * len(columns),
    ]
    for m in sorted({r["method"] for r in recs}):
        labels = "no" if m == RAW else "yes" if method_class(m).uses_labels else "no"
        cells = [_cell(per_seed(m, ts), digits=1) for ts in columns.values()]
        lines.append(f"| {m} | {labels} | " + " | ".join(cells) + " |")
    for name, ours, values in PUBLISHED_RUS.get(dataset.split(":")[0], []):
        label = f"{name} (published{', ours: ' + ours if ours else ''})"
        lines.append(f"| {label} | no | " + " | ".join(f"{v:.1f}" for v in values) + " |")
    return lines


SENTIMENT_COLUMNS = {
    "acc2_has0": "Acc-2 has0",
    "f1_has0": "F1 has0",
    "acc2_non0": "Acc-2 non0",
    "f1_non0": "F1 non0",
    "acc7": "Acc-7",
    "mae": "MAE",
    "corr": "Corr",
}


def _sentiment_table(records: list[dict[str, Any]], dataset: str) -> list[str]:
    """The MOSI/MOSEI metrics of each sentiment target (probe on all factors and the head)."""
    recs = [r for r in records if r["dataset"] == dataset and not r["missing"]]
    targets = sorted({r["target"] for r in recs if r["metric"] == "acc2_has0"})
    lines = []
    for t in targets:
        lines += [
            "",
            f"Sentiment metrics on {t} (test split, all samples; non0 drops zero labels):",
            "",
            "| method | read-out | " + " | ".join(SENTIMENT_COLUMNS.values()) + " |",
            "|---|---|" + "---|" * len(SENTIMENT_COLUMNS),
        ]
        for m in sorted({r["method"] for r in recs if r["target"] == t}):
            for readout, keep in (
                ("probe", lambda r: r["protocol"] != "head" and r["factors"] == "all"),
                ("head", lambda r: r["protocol"] == "head"),
            ):
                rows = [r for r in recs if r["method"] == m and r["target"] == t and keep(r)]
                if rows:
                    cells = [
                        _cell([r["value"] for r in rows if r["metric"] == k])
                        for k in SENTIMENT_COLUMNS
                    ]
                    lines.append(f"| {m} | {readout} | " + " | ".join(cells) + " |")
    return lines


def results_markdown(records: list[dict[str, Any]]) -> str:
    """Tables of mean ± std over seeds: per data set, methods x targets (linear probe on all
    factors, complete data), missing-modality robustness, and factors x targets per method."""
    records = standard_records(records)
    lines = [
        "# Benchmark results",
        "",
        "Linear-probe test metric (accuracy for classes, R² for regression), mean ± std "
        "over seeds; probes fitted on train, strength chosen on valid.",
        "",
    ]
    by_data: dict[str, list[dict[str, Any]]] = {}
    for r in records:
        by_data.setdefault(r["dataset"], []).append(r)
    for dataset, recs in by_data.items():
        recs = _distinct([r for r in recs if r["metric"] in PRIMARY_METRIC.values()])
        methods = sorted({r["method"] for r in recs})
        n_seeds = len({r["seed"] for r in recs})
        bench_targets = sorted({primary_target(r) for r in recs} - {""})
        lines += [f"## {dataset} ({n_seeds} seed{'s' if n_seeds > 1 else ''})", ""]
        if len(bench_targets) > 1:
            lines += [
                f"A model per supervising target ({', '.join(bench_targets)}; label-free "
                "methods once): a column of another target averages over those models too.",
                "",
            ]
        lines += _methods_table(recs, methods)
        lines += _missing_table(recs, methods, bench_targets)
        lines += _sentiment_table(records, dataset)
        lines += _rus_table(records, dataset)
        lines += _diverged_lines(records, dataset)
        lines += ["", "Factors x targets (linear probe, complete data):", ""]
        for m in methods:
            metric = next(r["metric"] for r in recs if r["method"] == m)
            table = factor_target_table([r for r in recs if r["method"] == m], metric=metric)
            lines += [f"**{m}**", "", format_table(table), ""]
        lines.append("")
    return "\n".join(lines)


def _methods_table(recs: list[dict[str, Any]], methods: list[str]) -> list[str]:
    """Methods x targets on complete data (probe on all factors), the head's score and the
    training speed."""
    targets = sorted({r["target"] for r in recs if r["protocol"] != "head"})
    lines = [
        "| method | " + " | ".join(targets) + " | head | samples/s |",
        "|---|" + "---|" * (len(targets) + 2),
    ]
    for m in methods:
        mr = [r for r in recs if r["method"] == m and not r["missing"]]
        cells = [
            _cell(
                [
                    r["value"]
                    for r in mr
                    if r["target"] == t and r["factors"] == "all" and r["protocol"] != "head"
                ]
            )
            for t in targets
        ]
        head = _cell([r["value"] for r in mr if r["protocol"] == "head"])
        speed = {
            r["seed"]: r["samples_per_second"]
            for r in mr
            if r.get("samples_per_second") and math.isfinite(r["samples_per_second"])
        }
        sps = f"{sum(speed.values()) / len(speed):.0f}" if speed else ""
        label = m + (" (diverged)" if any(r.get("status") == "diverged" for r in mr) else "")
        lines.append(f"| {label} | " + " | ".join(cells) + f" | {head} | {sps} |")
    return lines


def _missing_table(
    recs: list[dict[str, Any]], methods: list[str], bench_targets: list[str]
) -> list[str]:
    """The primary target's score with each modality dropped at test time, a row per method
    (per method and supervising target when there are several); nothing without such
    records."""
    missing_sets = sorted({tuple(r["missing"]) for r in recs if r["missing"]})
    if not missing_sets:
        return []
    several = len(bench_targets) > 1  # a row per (method, target)
    lines = [
        "",
        f"Missing modality at test time (probe on all factors, target {', '.join(bench_targets)}):",
        "",
        "| method | "
        + ("target | " if several else "")
        + "complete | "
        + " | ".join(f"without {'+'.join(s)}" for s in missing_sets)
        + " |",
        "|---|" + ("---|" if several else "") + "---|" * (len(missing_sets) + 1),
    ]
    for m in methods:
        for t in bench_targets if several else [None]:
            mr = [
                r
                for r in recs
                if r["method"] == m
                and r["factors"] == "all"
                and r["target"] == primary_target(r)
                and t in (None, r["target"])
                and r["protocol"] != "head"
            ]
            cells = [
                _cell([r["value"] for r in mr if tuple(r["missing"]) == s])
                for s in [(), *missing_sets]
            ]
            if any(cells):
                row = [m, *([t] if several else []), *cells]
                lines.append("| " + " | ".join(str(c) for c in row) + " |")
    return lines
