"""The ``mmfactor`` command line (``product.md``, Command line).

Exit codes: 0 success, 2 bad usage or bad input (one line naming the file, key or option at
fault), 3 a training that diverged (a non-finite loss: one line naming the epoch, step and
loss part), 1 internal error. With ``--json`` stdout carries one strict JSON document (no
``NaN``/``Infinity``: :func:`mmfactor.io.to_json_safe`) and nothing else; progress always
goes to stderr.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from mmfactor import __version__
from mmfactor.errors import DivergedError, InputError

#: Per command, the flag that passes each library argument: a library error names the Python
#: argument at fault (InputError.argument), the command line names the flag instead.
FLAGS: dict[str, dict[str, str]] = {
    "fit": {"sets": "--set", "target": "--target", "out": "--out"},
    "evaluate": {"missing": "--missing", "targets": "--targets", "allow_diverged": "--force"},
    "bench": {
        "methods": "--methods",
        "datasets": "--datasets",
        "seeds": "--seeds",
        "sets": "--set",
        "specs": "--data",
        "allow_diverged": "--force",
    },
}


def error_line(exc: InputError, command: str | None) -> str:
    """The one-line message of ``exc`` as ``command`` reports it: a leading argument name
    (``missing: ...``) becomes the command's flag (``--missing: ...``)."""
    message = str(exc)
    flag = FLAGS.get(command or "", {}).get(exc.argument or "")
    if flag is None or exc.argument is None:
        return message
    rest = message[len(exc.argument) :]
    if message.startswith(exc.argument) and not (rest[:1].isalnum() or rest[:1] == "_"):
        return flag + rest
    return f"{flag}: {message}"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # argparse exits 2 with usage; keep it one line
        raise InputError(f"{self.prog}: {message}")


def _data_arg(spec: str) -> tuple[str, dict[str, Any]]:
    """``NAME``, ``NAME:PATH``, or a file ``PATH`` whose loader is told by its name or
    content (:func:`mmfactor.data.files.detect_format`)."""
    from mmfactor.data import available
    from mmfactor.data.files import detect_format

    name, sep, path = spec.partition(":")
    if name not in available() and (Path(spec).suffix or "/" in spec):
        return detect_format(spec), {"path": spec}
    return name, ({"path": path} if sep else {})


def _emit(obj: Any, as_json: bool, text: str) -> None:
    if as_json:  # strict JSON: a non-finite number is null, its reason in `<key>_nonfinite`
        from mmfactor.io import dumps_json

        sys.stdout.write(dumps_json(obj, indent=2, default=str) + "\n")
    else:
        sys.stdout.write(text.rstrip("\n") + "\n")


def cmd_fit(args: argparse.Namespace) -> int:
    from mmfactor.config import load_yaml, resolve
    from mmfactor.runs import train_from_config

    name, options = _data_arg(args.data)
    overrides: dict[str, Any] = {"train": {}}
    if args.epochs is not None:
        overrides["train"]["max_epochs"] = args.epochs
    if args.seed is not None:
        overrides["train"]["seed"] = args.seed
    if args.target is not None:
        overrides["train"]["target"] = args.target
    user = load_yaml(args.config) if args.config else None
    cfg = resolve(
        args.method,
        name,
        data_options=options,
        config=user,
        sets=args.set or (),
        overrides=overrides,
    )
    from mmfactor.lock import LockHeld

    out = Path(args.out)
    created = not out.exists()
    try:
        run, _ = train_from_config(cfg, out, restart=args.restart)
    except InputError as exc:
        # No partial output left behind; a directory another process holds is its own.
        if created and not isinstance(exc, LockHeld):
            shutil.rmtree(out, ignore_errors=True)
        raise
    if not run.is_global_zero:  # one answer per command, not one per process
        return 0
    summary = {
        "out": str(out),
        "method": cfg["method"]["name"],
        "data": cfg["data"]["name"],
        "epochs": run.epochs,
        "train_seconds": run.train_seconds,
        "samples_per_second": run.samples_per_second,
        "best_valid_loss": run.best_valid_loss,
    }
    _emit(summary, args.json, "\n".join(f"{k}: {v}" for k, v in summary.items()))
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from mmfactor.evaluate import evaluate
    from mmfactor.evaluate.protocol import factor_target_table, format_table
    from mmfactor.runs import load_run

    model, data, cfg = load_run(args.run_dir, allow_diverged=args.force)
    records = evaluate(
        model,
        data,
        protocol=args.protocol or cfg["evaluate"]["protocol"],
        targets=args.targets or cfg["evaluate"]["targets"],
        missing=args.missing or cfg["evaluate"]["missing"],
        seed=cfg["train"]["seed"],
        context={"method": cfg["method"]["name"], "dataset": data.name},
    )
    lines = []
    for r in records:
        miss = f" without {'+'.join(r['missing'])}" if r["missing"] else ""
        lines.append(
            f"{r['protocol']:>12} {r['factors']:>16} {r['target']:>12} "
            f"{r['metric']:>10} {r['value']:.4f}{miss}"
        )
    metric = "accuracy" if any(r["metric"] == "accuracy" for r in records) else "r2"
    lines += ["", format_table(factor_target_table(records, metric=metric))]
    _emit(records, args.json, "\n".join(lines))
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from mmfactor.bench import get_suite, run_bench
    from mmfactor.bench.records import not_evaluated

    suite = get_suite(args.suite)
    if args.data:
        suite = suite.with_files([_data_arg(spec) for spec in args.data])
    elif not suite.datasets:
        raise InputError(
            f"bench suite {suite.name!r} runs on files: give them with --data NAME:PATH, e.g. "
            "--data multibench:/data/mosi_raw.pkl"
        )

    def split(s: str) -> list[str]:
        return [x for x in s.split(",") if x]

    records = run_bench(
        suite,
        args.out,
        methods=split(args.methods) if args.methods else None,
        datasets=split(args.datasets) if args.datasets else None,
        seeds=args.seeds,
        sets=args.set or (),
        allow_diverged=args.force,
    )
    table = (Path(args.out) / "results.md").read_text()
    _emit({"out": args.out, "suite": suite.name, "records": records}, args.json, table)
    if not args.force and (diverged := not_evaluated(records)):
        dirs = ", ".join(sorted({str(r["run_dir"]) for r in diverged}))
        raise InputError(
            f"allow_diverged: {len(diverged)} training(s) diverged and were not evaluated "
            f"(marked in results.md): {dirs}; pass it to evaluate their last finite weights",
            argument="allow_diverged",
        )
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from mmfactor.bench import read_records, write_report

    path = Path(args.dir) / "results.jsonl"
    if not path.exists():
        raise InputError(f"{path}: no such file (run `mmfactor bench --out {args.dir}` first)")
    text = write_report(args.dir, read_records(path))
    written = {name: str(Path(args.dir) / name) for name in ("results.md", "report.html")}
    _emit(written, args.json, text)
    return 0


def cmd_data(args: argparse.Namespace) -> int:
    from mmfactor.data import available, load

    if args.action == "list":
        names = available()
        _emit(names, args.json, "\n".join(names))
        return 0
    if not args.name:
        raise InputError("data inspect: give a data set NAME[:PATH]")
    name, options = _data_arg(args.name)
    summary = load(name, **options).summary()
    _emit(summary, args.json, _describe(summary))
    return 0


def _describe(summary: dict[str, Any]) -> str:
    """``mmfactor data inspect``'s text: what a data set holds and what was wrong with it."""
    info = summary["info"]
    lines = [f"{summary['name']}: {summary['n']} samples"]
    keys = ("path", "format", "family", "aligned", "mapping_source", "source", "attribution",
            "license")  # fmt: skip
    lines += [f"  {k.replace('_', ' ')}: {info[k]}" for k in keys if k in info]
    lines.append("  splits: " + ", ".join(f"{k} {v}" for k, v in summary["splits"].items()))
    for m, v in summary["modalities"].items():
        text = f"  modality {m}: {v['kind']} {tuple(v['array_shape'])}"
        if v.get("lengths"):
            ln = v["lengths"]
            text += f", lengths {ln['min']}-{ln['max']} (median {ln['median']:g})"
        storage = "" if v["storage"] == "in memory" else f", {v['storage']}"
        lines.append(text + f", present in {v['present']}{storage}")
    for k, t in summary["targets"].items():
        default = " (default)" if k == summary["default_target"] else ""
        kind = t["kind"] + (f", {t['n_classes']} classes" if t["n_classes"] else "")
        kind += ", sentiment metrics" if t["sentiment"] else ""
        lines.append(f"  target {k}{default}: {kind}")
        for split, st in t["splits"].items():
            if "counts" in st:
                stats = " ".join(f"{c}:{n}" for c, n in st["counts"].items())
            elif st:
                stats = (
                    f"mean {st['mean']:.3f} std {st['std']:.3f} range [{st['min']:.3g}, "
                    f"{st['max']:.3g}] zeros {st['zero']:.1%}"
                )
            else:
                stats = "(empty)"
            lines.append(f"    {split}: {stats}")
    if summary["meta"]:
        lines.append("  per-sample fields: " + ", ".join(summary["meta"]))
    lines.append("  problems found:" + ("" if summary["notes"] else " none"))
    lines += [f"    - {note}" for note in summary["notes"]]
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="mmfactor", description="Factorized multimodal representation learning.")
    p.add_argument("--version", action="version", version=f"mmfactor {__version__}")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    f = sub.add_parser("fit", help="train a method on a data set")
    f.add_argument("--method", required=True)
    f.add_argument("--data", required=True, help="NAME or NAME:PATH")
    f.add_argument("--config", help="YAML file with data/method/train/evaluate sections")
    f.add_argument(
        "--set",
        action="append",
        metavar="KEY=VALUE",
        help="override a config key, e.g. train.lr=1e-3 (repeatable)",
    )
    f.add_argument("--epochs", type=int)
    f.add_argument("--seed", type=int)
    f.add_argument("--target", help="the supervising target (default: the data set's)")
    f.add_argument("--out", required=True, help="run directory (resumed if it exists)")
    f.add_argument(
        "--restart",
        action="store_true",
        help="train from scratch, discarding the checkpoints and logs in --out",
    )
    f.add_argument("--json", action="store_true")
    f.set_defaults(func=cmd_fit)

    e = sub.add_parser("evaluate", help="probe a trained run's factors")
    e.add_argument("run_dir")
    e.add_argument("--protocol", choices=["linear-probe", "mlp-probe", "knn"])
    e.add_argument("--missing", nargs="+", default=None, metavar="MODALITY")
    e.add_argument("--targets", nargs="+", default=None)
    e.add_argument(
        "--force", action="store_true", help="evaluate a diverged run's last finite weights"
    )
    e.add_argument("--json", action="store_true")
    e.set_defaults(func=cmd_evaluate)

    b = sub.add_parser("bench", help="run a benchmark suite")
    b.add_argument("suite", nargs="?", default="quick")
    b.add_argument("--methods")
    b.add_argument("--datasets")
    b.add_argument("--seeds", type=int)
    b.add_argument(
        "--data",
        action="append",
        metavar="NAME:PATH",
        help="a data file for the affect suite, e.g. multibench:/data/mosi_raw.pkl (repeatable)",
    )
    b.add_argument("--set", action="append", metavar="KEY=VALUE")
    b.add_argument(
        "--force", action="store_true", help="evaluate diverged trainings' last finite weights"
    )
    b.add_argument("--out", required=True)
    b.add_argument("--json", action="store_true")
    b.set_defaults(func=cmd_bench)

    r = sub.add_parser("report", help="rebuild the report of a bench directory")
    r.add_argument("dir")
    r.add_argument("--json", action="store_true")
    r.set_defaults(func=cmd_report)

    d = sub.add_parser("data", help="list or inspect data sets")
    d.add_argument("action", choices=["list", "inspect"])
    d.add_argument("name", nargs="?")
    d.add_argument("--json", action="store_true")
    d.set_defaults(func=cmd_data)
    return p


def _one_line_warning(
    message: Warning | str, category: type[Warning], *args: Any, **kw: Any
) -> str:
    return f"mmfactor: warning: {message}\n"


def main(argv: Sequence[str] | None = None) -> int:
    previous = warnings.formatwarning
    warnings.formatwarning = _one_line_warning  # type: ignore[assignment]
    try:
        return _run(argv)
    finally:
        warnings.formatwarning = previous


def _run(argv: Sequence[str] | None) -> int:
    command = None
    try:
        args = build_parser().parse_args(argv)
        command = args.command
        return int(args.func(args))
    except InputError as exc:
        print(f"mmfactor: error: {error_line(exc, command)}", file=sys.stderr)
        return 2
    except DivergedError as exc:  # the run directory keeps the last finite state
        if exc.run is None or exc.run.is_global_zero:  # one line, not one per process
            print(f"mmfactor: error: {command}: {exc}", file=sys.stderr)
        return 3
    except KeyboardInterrupt:
        print("mmfactor: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # an internal error: keep the traceback for bug reports
        import traceback

        traceback.print_exc()
        print(f"mmfactor: internal error: {exc.__class__.__name__}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
