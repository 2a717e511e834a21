"""Run a benchmark suite: every (data set, method, seed) is trained, evaluated, and its
records appended to ``results.jsonl`` as soon as it finishes, so an interrupted bench resumes
where it stopped (finished runs are skipped, an unfinished training resumes from its last
checkpoint). ``results.md`` is rewritten from the records at the end. One bench at a time
writes into a directory (``.lock``, :mod:`mmfactor.lock`); the half-written last line a killed
bench can leave is dropped, with a warning, when the bench resumes.

A training that diverges (:class:`~mmfactor.errors.DivergedError`) does not stop the bench: it
is recorded as one record with ``"status": "diverged"`` (``protocol`` ``training``, ``value``
``null``) and not evaluated, unless ``allow_diverged``, which evaluates the last finite
weights into records marked ``"status": "diverged"``; ``results.md`` marks both."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from mmfactor.bench.markdown import RAW, summary_line, write_report
from mmfactor.bench.records import TRAINING, append_records, cut_torn_tail, read_records
from mmfactor.bench.report import (
    run_dir_name,
    save_embeddings,
)
from mmfactor.bench.suites import BenchData, Suite
from mmfactor.config import resolve
from mmfactor.data.dataset import MultimodalDataset
from mmfactor.errors import DivergedError, InputError
from mmfactor.evaluate.protocol import (
    Encodings,
    Representation,
    evaluate,
    latent_records,
    noise_records,
)
from mmfactor.evaluate.reference import RawFeatures
from mmfactor.io import dumps_json
from mmfactor.lock import lock_directory
from mmfactor.methods.registry import available, method_class
from mmfactor.runs import data_from_config, load_run, target_for, train_from_config


def run_bench(
    suite: Suite,
    out: str | Path,
    *,
    methods: Iterable[str] | None = None,
    datasets: Iterable[str] | None = None,
    seeds: int | None = None,
    sets: Sequence[str] = (),
    log: Callable[[str], None] | None = None,
    allow_diverged: bool = False,
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
        allow_diverged: evaluate the last finite weights of a training that diverged (and
            retry those a previous bench recorded unevaluated); by default such a training
            gets one record marked diverged (:func:`not_evaluated` lists them).

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
    with lock_directory(out):  # one bench at a time in `out` (mmfactor.lock)
        return _run_plan(plan, entries, out, log, allow_diverged)


def _run_plan(
    plan: list[tuple[BenchData, str, int, dict[str, Any]]],
    entries: list[BenchData],
    out: Path,
    log: Callable[[str], None],
    allow_diverged: bool,
) -> list[dict[str, Any]]:
    """:func:`run_bench`'s work once it holds ``out``: what ``results.jsonl`` lacks of
    ``plan``, appended to it, and the report."""
    results = out / "results.jsonl"
    cut_torn_tail(results)
    done = {
        (r["dataset"], r.get("bench_target"), r["method"], r["seed"])
        for r in read_records(results)
        if not (allow_diverged and r.get("protocol") == TRAINING)  # forced: evaluate them now
    }
    # Several entries of one data set (one per supervising target): tell their runs apart.
    names = [e.label for e in entries]
    data_cache: dict[str, MultimodalDataset] = {}  # data config -> data set
    label_free: dict[str, tuple[Representation, Any]] = {}  # config without target -> run
    finished: dict[str, Path] = {}  # the same, for runs finished before a resume
    for i, (entry, method, seed, cfg) in enumerate(plan, 1):
        label = entry.label if names.count(entry.label) == 1 else f"{entry.label} {entry.target}"
        tag = f"[{i}/{len(plan)}] {label} {method} seed {seed}"
        run_dir = out / "runs" / run_dir_name(label) / method / f"seed{seed}"
        if (entry.label, entry.target, method, seed) in done:
            log(f"{tag}: done, skipped")
            if method != RAW and not method_class(method).uses_labels:
                finished.setdefault(_label_free_key(cfg), run_dir)
            continue
        started = time.perf_counter()
        data = _cached_data(probe_data_config(entry, cfg["data"]), data_cache)
        train_data = _cached_data(cfg["data"], data_cache)  # entry.pretrain's, label-free
        if method != RAW and (reason := method_class(method).unsupported(data.modalities)):
            log(f"{tag}: skipped, {reason}")
            continue
        if method != RAW and (target := target_for(method, cfg, data)) != cfg["train"]["target"]:
            log(f"{tag}: trains on {target!r} (it cannot train on {data.default_target!r})")
            cfg = {**cfg, "train": {**cfg["train"], "target": target}}
        model, run = _model(method, cfg, train_data, run_dir, (label_free, finished), tag, log)
        if run is not None and run.status == "diverged" and not allow_diverged:
            append_records(results, [_diverged_record(entry, method, seed, data, run)])
            log(f"{tag}: not evaluated: training diverged ({run.out})")
            continue
        records = _entry_records(entry, method, seed, cfg, data, model, run)
        append_records(results, records)
        speed = ""
        if run is not None:
            speed = (
                f"{run.epochs} epochs, {run.train_seconds:.1f} s, "
                f"{run.samples_per_second:.0f} samples/s; "
            )
        primary = entry.target or data.default_target
        # The entry's wall time (loading, training, probing): a suite's time adds these up.
        seconds = time.perf_counter() - started
        log(f"{tag}: {speed}{summary_line(records, primary)} ({seconds:.0f} s in all)")
    records = read_records(results)
    write_report(out, records)
    return records


def probe_data_config(entry: BenchData, data_cfg: dict[str, Any]) -> dict[str, Any]:
    """The data section that probes fit and score on: a run's ``data_cfg`` (the suite's
    options and the bench's ``sets``) with the entry's pre-training options
    (``entry.pretrain``, e.g. biased pairs) put back to the entry's own."""
    probe_cfg = {k: v for k, v in data_cfg.items() if k not in entry.pretrain}
    return probe_cfg | {k: entry.options[k] for k in entry.pretrain if k in entry.options}


def _cached_data(
    data_cfg: dict[str, Any], cache: dict[str, MultimodalDataset]
) -> MultimodalDataset:
    """The data set of a config's ``data`` section, loaded once per bench."""
    key = dumps_json(data_cfg, sort_keys=True)
    if key not in cache:
        cache[key] = data_from_config({"data": data_cfg})
    return cache[key]


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
            label_free = method != RAW and not method_class(method).uses_labels
            for seed in range(n_seeds):
                cfg = resolve(
                    method,
                    entry.name,
                    data_options={**entry.options, **(entry.pretrain if label_free else {})},
                    config={"train": entry.train},  # the suite's settings; `sets` win
                    sets=sets,
                    overrides={"train": {"seed": seed, "target": entry.target, "progress": False}},
                )
                plan.append((entry, method, seed, cfg))
        raw = {**plan[-1][3], "data": probe_data_config(entry, plan[-1][3]["data"])}
        plan.insert(len(plan) - len(method_names) * n_seeds, (entry, RAW, 0, raw))
    return plan


def _label_free_key(cfg: dict[str, Any]) -> str:
    """What a label-free method's model depends on: its config without the target."""
    return dumps_json({**cfg, "train": {**cfg["train"], "target": None}}, sort_keys=True)


def _model(
    method: str,
    cfg: dict[str, Any],
    data: MultimodalDataset,
    run_dir: Path,
    trained: tuple[dict[str, tuple[Representation, Any]], dict[str, Path]],
    tag: str,
    log: Callable[[str], None],
) -> tuple[Representation, Any]:
    """The representation to evaluate and its training run (``None`` for the raw inputs and
    for a model loaded from an earlier run): trained into ``run_dir``, or, for a method that
    ignores labels, the model already trained on the same config under another target
    (``trained``: the models of this call, and the run directories finished before it)."""
    if method == RAW:
        return RawFeatures().fit(data), None
    # A method that ignores labels learns the same model whatever the target.
    uses_labels = method_class(method).uses_labels
    label_free, finished = trained
    key = _label_free_key(cfg)
    if not uses_labels and key not in label_free and key in finished:
        log(f"{tag}: label-free, loading the model trained for an earlier entry")
        label_free[key] = (load_run(finished[key])[0], None)
        return label_free[key]
    if not uses_labels and key in label_free:
        log(f"{tag}: label-free, reusing the model trained for an earlier entry")
        return label_free[key]
    log(f"{tag}: training")
    try:
        run, _ = train_from_config(cfg, run_dir, data=data)
    except DivergedError as exc:  # recorded (and evaluated only if allowed) by run_bench
        log(f"{tag}: {exc}")
        run = exc.run
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
    if run is not None and run.status == "diverged":  # evaluated anyway: allow_diverged
        context.update(status="diverged", diverged=run.diverged)
    encoded = Encodings(model, data)  # one encoding of each split for all that follows
    records = evaluate(
        model,
        data,
        protocol=cfg["evaluate"]["protocol"],
        targets=entry.eval_targets,
        missing=data.modality_names if entry.missing is None else entry.missing,
        factors=entry.factors,
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


def _diverged_record(
    entry: BenchData, method: str, seed: int, data: MultimodalDataset, run: Any
) -> dict[str, Any]:
    """The one record of a diverged training that was not evaluated: where it diverged."""
    primary = entry.target or data.default_target
    return {
        "method": method,
        "dataset": entry.label,
        "seed": seed,
        "bench_target": entry.target,
        "primary_target": primary,
        "status": "diverged",
        "diverged": run.diverged,
        "run_dir": str(run.out),
        "protocol": TRAINING,
        "target": primary,
        "factors": "all",
        "metric": "diverged",
        "value": None,
        "missing": [],
    }
