"""Run a benchmark suite: every (data set, method, seed) is trained, evaluated, and its
records appended to ``results.jsonl`` as soon as it finishes, so an interrupted bench resumes
where it stopped (finished runs are skipped, an unfinished training resumes from its last
checkpoint). ``results.md`` is rewritten from the records at the end."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from mmfactor.bench.plots import plot_mix
from mmfactor.bench.report import (
    primary_target,
    run_dir_name,
    save_embeddings,
    write_html_report,
)
from mmfactor.bench.suites import BenchData, Suite
from mmfactor.config import resolve
from mmfactor.data.dataset import MultimodalDataset
from mmfactor.errors import InputError
from mmfactor.evaluate.metrics import mean_std
from mmfactor.evaluate.protocol import (
    PRIMARY_METRIC,
    Encodings,
    Representation,
    evaluate,
    factor_target_table,
    format_table,
    latent_records,
    noise_records,
    standard_records,
)
from mmfactor.evaluate.reference import RawFeatures
from mmfactor.io import write_text
from mmfactor.methods.registry import available, method_class
from mmfactor.runs import data_from_config, target_for, train_from_config

RAW = "raw"


def read_records(path: str | Path) -> list[dict[str, Any]]:
    """Records of a ``results.jsonl``; a torn last line (an interrupted write) is ignored."""
    path = Path(path)
    if not path.exists():
        return []
    records = []
    for line in path.read_text().splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records


def append_records(path: Path, records: Sequence[dict[str, Any]]) -> None:
    """Append in one write and flush to disk."""
    payload = "".join(json.dumps(r, sort_keys=True) + "\n" for r in records).encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, payload)
        os.fsync(fd)
    finally:
        os.close(fd)


def run_bench(
    suite: Suite,
    out: str | Path,
    *,
    methods: Iterable[str] | None = None,
    datasets: Iterable[str] | None = None,
    seeds: int | None = None,
    sets: Sequence[str] = (),
    log: Callable[[str], None] | None = None,
) -> list[dict[str, Any]]:
    """Run ``suite`` into ``out``; returns all records of ``out/results.jsonl``.

    Args:
        suite: what to run (:func:`~mmfactor.bench.suites.get_suite`).
        out: the bench directory; an existing one is resumed.
        methods: registry names (default: the suite's methods, else every method).
        datasets: data set names or labels of the suite to keep (default: all).
        seeds: seeds per (data set, method) (default: the suite's).
        sets: ``section.key=value`` settings for every run (see :func:`mmfactor.config.resolve`).
        log: where progress lines go (default: stderr).

    Raises:
        InputError: an unknown method or data set, ``seeds`` below 1, a suite without data
            sets (one that runs on files: :meth:`~mmfactor.bench.suites.Suite.with_files`),
            or a bad setting; the message names the argument at fault, before anything is
            written.
    """
    log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
    method_names = _method_names(suite, methods)
    entries = _entries(suite, datasets)
    n_seeds = seeds if seeds is not None else suite.seeds
    if n_seeds < 1:
        raise InputError(f"seeds must be at least 1, got {n_seeds}", argument="seeds")
    # Resolve every config first, so that a bad setting fails before anything is written.
    plan = _plan(entries, method_names, n_seeds, sets)

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    results = out / "results.jsonl"
    done = {
        (r["dataset"], r.get("bench_target"), r["method"], r["seed"]) for r in read_records(results)
    }
    # Several entries of one data set (one per supervising target): tell their runs apart.
    names = [e.label for e in entries]
    data_cache: dict[str, MultimodalDataset] = {}
    label_free: dict[str, tuple[Representation, Any]] = {}  # config without target -> run
    for i, (entry, method, seed, cfg) in enumerate(plan, 1):
        label = entry.label if names.count(entry.label) == 1 else f"{entry.label} {entry.target}"
        tag = f"[{i}/{len(plan)}] {label} {method} seed {seed}"
        if (entry.label, entry.target, method, seed) in done:
            log(f"{tag}: done, skipped")
            continue
        if entry.label not in data_cache:
            data_cache[entry.label] = data_from_config(cfg)
        data = data_cache[entry.label]
        if method != RAW and (reason := method_class(method).unsupported(data.modalities)):
            log(f"{tag}: skipped, {reason}")
            continue
        if method != RAW and (target := target_for(method, cfg, data)) != cfg["train"]["target"]:
            log(f"{tag}: trains on {target!r} (it cannot train on {data.default_target!r})")
            cfg = {**cfg, "train": {**cfg["train"], "target": target}}
        run_dir = out / "runs" / run_dir_name(label) / method / f"seed{seed}"
        model, run = _model(method, cfg, data, run_dir, label_free, tag, log)
        records = _entry_records(entry, method, seed, cfg, data, model, run)
        append_records(results, records)
        speed = ""
        if run is not None:
            speed = (
                f"{run.epochs} epochs, {run.train_seconds:.1f} s, "
                f"{run.samples_per_second:.0f} samples/s; "
            )
        primary = entry.target or data.default_target
        log(f"{tag}: {speed}{_summary_line(records, primary)}")
    records = read_records(results)
    write_report(out, records)
    return records


def _method_names(suite: Suite, methods: Iterable[str] | None) -> list[str]:
    """The methods run: ``methods``, else the suite's, else every registered one."""
    method_names = list(methods) if methods is not None else list(suite.methods or available())
    known = available()
    for m in method_names:
        if m not in known:
            raise InputError(
                f"methods: unknown method {m!r}; available: {', '.join(known)}", argument="methods"
            )
    return method_names


def _entries(suite: Suite, datasets: Iterable[str] | None) -> list[BenchData]:
    """The suite's data sets, those named in ``datasets`` (names or labels) when given."""
    entries = list(suite.datasets)
    if not entries:
        raise InputError(
            f"bench suite {suite.name!r} runs on files: give them with Suite.with_files, e.g. "
            "suite.with_files([('multibench', {'path': '/data/mosi_raw.pkl'})])",
            argument="suite",
        )
    if datasets is None:
        return entries
    wanted = list(datasets)
    names = [e.label for e in entries]
    for d in wanted:
        if not any(d in (e.name, e.label) for e in entries):
            raise InputError(
                f"datasets: suite {suite.name!r} has no data set {d!r}; it has {', '.join(names)}",
                argument="datasets",
            )
    return [e for e in entries if e.name in wanted or e.label in wanted]


def _plan(
    entries: list[BenchData], method_names: list[str], n_seeds: int, sets: Sequence[str]
) -> list[tuple[BenchData, str, int, dict[str, Any]]]:
    """Every ``(entry, method, seed, config)`` in running order: per data set entry, the
    raw-input reference (probed once, on the same data), then each method and seed."""
    plan = []
    for entry in entries:
        for method in method_names:
            for seed in range(n_seeds):
                cfg = resolve(
                    method,
                    entry.name,
                    data_options=entry.options,
                    config={"train": entry.train},  # the suite's settings; `sets` win
                    sets=sets,
                    overrides={"train": {"seed": seed, "target": entry.target, "progress": False}},
                )
                plan.append((entry, method, seed, cfg))
        plan.insert(len(plan) - len(method_names) * n_seeds, (entry, RAW, 0, plan[-1][3]))
    return plan


def _model(
    method: str,
    cfg: dict[str, Any],
    data: MultimodalDataset,
    run_dir: Path,
    label_free: dict[str, tuple[Representation, Any]],
    tag: str,
    log: Callable[[str], None],
) -> tuple[Representation, Any]:
    """The representation to evaluate and its training run (``None`` for the raw inputs):
    trained into ``run_dir``, or, for a method that ignores labels, the model already
    trained on the same config under another target (``label_free`` keeps them)."""
    if method == RAW:
        return RawFeatures(), None
    # A method that ignores labels learns the same model whatever the target.
    uses_labels = method_class(method).uses_labels
    key = json.dumps({**cfg, "train": {**cfg["train"], "target": None}}, sort_keys=True)
    if not uses_labels and key in label_free:
        log(f"{tag}: label-free, reusing the model trained for an earlier entry")
        return label_free[key]
    log(f"{tag}: training")
    run, _ = train_from_config(cfg, run_dir, data=data)
    if not uses_labels:
        label_free[key] = (run.model, run)
    return run.model, run


def _entry_records(
    entry: BenchData,
    method: str,
    seed: int,
    cfg: dict[str, Any],
    data: MultimodalDataset,
    model: Representation,
    run: Any,
) -> list[dict[str, Any]]:
    """The records of one (entry, method, seed): the evaluation protocol with each missing
    modality, and for trained models the noise curves and latent probes the entry asks for
    (seed 0 also saves the test embeddings next to the run)."""
    primary = entry.target or data.default_target
    context = {
        "method": method,
        "dataset": entry.label,
        "seed": seed,
        "bench_target": entry.target,
        # What the entry is about: its supervising target, else the data set's default.
        "primary_target": primary,
    }
    encoded = Encodings(model, data)  # one encoding of each split for all that follows
    records = evaluate(
        model,
        data,
        protocol=cfg["evaluate"]["protocol"],
        targets=entry.eval_targets,
        missing=data.modality_names if entry.missing is None else entry.missing,
        seed=seed,
        context=context,
        encodings=encoded,
    )
    if method == RAW:
        return records
    if entry.noise and primary is not None:
        records += noise_records(
            model, data, primary, (0.0, *entry.noise), seed=seed, context=context, encodings=encoded
        )
    if entry.latents and data.latents:
        records += latent_records(model, data, seed=seed, context=context, encodings=encoded)
    if seed == 0 and run is not None and run.out is not None:
        save_embeddings(encoded.blocks("test"), data, primary, run.out / "embeddings.npz")
    return records


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


def _summary_line(records: list[dict[str, Any]], target: str | None) -> str:
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


def _cell(values: list[float]) -> str:
    if not values:
        return ""
    m, s = mean_std(values)
    return f"{m:.3f} ± {s:.3f}" if len(values) > 1 else f"{m:.3f}"


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
        speed = {r["seed"]: r["samples_per_second"] for r in mr if r.get("samples_per_second")}
        sps = f"{sum(speed.values()) / len(speed):.0f}" if speed else ""
        lines.append(f"| {m} | " + " | ".join(cells) + f" | {head} | {sps} |")
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
