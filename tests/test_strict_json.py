"""Strict JSON everywhere: ``metrics.json``, ``results.jsonl`` and every ``--json`` output
hold no ``NaN``/``Infinity`` tokens (jq and ``JSON.parse`` reject them); a non-finite number
is ``null`` with its reason beside it, and the readers get the number back."""

from __future__ import annotations

import ast
import importlib
import importlib.util
import json
import math
import re
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import mmfactor.train.engine as engine
from mmfactor.bench.records import append_records, read_records
from mmfactor.cli import main
from mmfactor.io import dumps_json, from_json_safe, read_json, to_json_safe, write_json

ROOT = Path(__file__).resolve().parents[1]
SMALL_DATA = ["--set", "data.n=300"]


def strict(text: str) -> Any:
    """Parse as a strict parser does: the non-standard tokens NaN/Infinity are errors."""

    def refuse(token: str) -> Any:
        raise ValueError(f"not JSON: {token}")

    return json.loads(text, parse_constant=refuse)


def same(a: Any, b: Any) -> bool:
    """Equal, with NaN equal to NaN (at any depth)."""
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


def test_the_strict_parser_rejects_what_plain_json_dumps_writes():
    with pytest.raises(ValueError, match="Infinity"):
        strict(json.dumps({"best_valid_loss": math.inf}))
    with pytest.raises(ValueError, match="NaN"):
        strict(json.dumps([math.nan]))


@pytest.mark.parametrize(
    "value, reason",
    [
        (math.inf, "inf"),
        (-math.inf, "-inf"),
        (math.nan, "nan"),
        (np.float32("nan"), "nan"),
        (np.float64("inf"), "inf"),
        (np.array(-np.inf), "-inf"),  # 0-d array
        (torch.tensor(float("nan")), "nan"),  # 0-d tensor
    ],
)
def test_a_non_finite_number_is_null_with_its_reason(value, reason):
    text = dumps_json({"loss": value, "parts": [1.5, value], "ok": 2.0})
    parsed = strict(text)
    assert parsed == {"loss": None, "loss_nonfinite": reason, "parts": [1.5, None], "ok": 2.0}
    back = from_json_safe(parsed)
    assert set(back) == {"loss", "parts", "ok"}  # the note is consumed
    assert str(back["loss"]) == reason and isinstance(back["loss"], float)
    assert back["parts"] == [1.5, None]  # in a list there is no room for the reason


def test_finite_values_are_written_exactly_as_before():
    obj = {
        "a": 0.1 + 0.2,
        "b": [1e-300, -0.0, 3, True, None, "Infinity"],
        "c": {"d": 1.7976931348623157e308, "e": "nan"},
    }
    assert dumps_json(obj, sort_keys=True) == json.dumps(obj, sort_keys=True)
    assert to_json_safe({"x": np.float32(0.5), "y": np.arange(3), "z": (1, 2)}) == {
        "x": 0.5,
        "y": [0, 1, 2],
        "z": [1, 2],
    }
    # strings that look like a reason are left alone: only a null beside a note is restored
    assert from_json_safe({"k": "inf", "k_nonfinite": "inf"}) == {"k": "inf", "k_nonfinite": "inf"}


def test_write_json_of_a_diverged_run_round_trips(tmp_path):
    metrics = {
        "best_valid_loss": math.inf,
        "samples_per_second": math.nan,
        "history": [
            {"epoch": 0, "train/loss": 0.69, "valid/loss": 1e35},
            {"epoch": 1, "train/loss": math.inf, "valid/loss": -math.inf},
        ],
    }
    write_json(tmp_path / "metrics.json", metrics)
    text = (tmp_path / "metrics.json").read_text()
    assert "Infinity" not in text and "NaN" not in text
    parsed = strict(text)
    assert parsed["best_valid_loss"] is None and parsed["best_valid_loss_nonfinite"] == "inf"
    assert parsed["samples_per_second_nonfinite"] == "nan"
    assert parsed["history"][1]["train/loss_nonfinite"] == "inf"
    assert parsed["history"][1]["valid/loss_nonfinite"] == "-inf"
    assert same(read_json(tmp_path / "metrics.json"), metrics)


def test_every_json_dump_in_the_library_is_strict():
    """A ``json.dump(s)`` call without ``allow_nan=False`` could write ``NaN`` again; the
    library's writers are :func:`mmfactor.io.dumps_json` and :func:`~mmfactor.io.write_json`
    (which sanitise first)."""
    offenders = []
    for path in sorted((ROOT / "src" / "mmfactor").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in ("dump", "dumps")
                and isinstance(node.func.value, ast.Name)
                and node.func.value.id == "json"
                and not any(
                    k.arg == "allow_nan"
                    and isinstance(k.value, ast.Constant)
                    and k.value.value is False
                    for k in node.keywords
                )
            ):
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert offenders == [], "use mmfactor.io.dumps_json (or allow_nan=False)"


class _FrozenClock:
    """The ``time`` module with a clock that never moves: a closed-form fit takes 0 s."""

    perf_counter = staticmethod(lambda: 0.0)

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)


@pytest.fixture(scope="module")
def cca_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("cca") / "run"
    args = ["fit", "--method", "cca", "--data", "synthetic", *SMALL_DATA, "--out", str(out)]
    assert main(args) == 0
    return out


def test_cca_fit_in_zero_seconds_writes_strict_json(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(engine, "time", _FrozenClock())
    out = tmp_path / "run"
    args = ["fit", "--method", "cca", "--data", "synthetic", *SMALL_DATA, "--out", str(out)]
    assert main([*args, "--json"]) == 0
    summary = strict(capsys.readouterr().out)
    metrics = strict((out / "metrics.json").read_text())
    for doc in (summary, metrics):  # 0 samples / 0 s: no throughput
        assert doc["train_seconds"] == 0.0
        assert doc["samples_per_second"] is None
        assert doc["samples_per_second_nonfinite"] == "nan"
    assert math.isnan(read_json(out / "metrics.json")["samples_per_second"])


def test_a_real_cca_run_and_its_evaluation_are_strict_json(cca_run, capsys, monkeypatch):
    metrics = strict((cca_run / "metrics.json").read_text())
    assert metrics["epochs"] == 0 and metrics["samples_per_second"] > 0
    assert main(["evaluate", str(cca_run), "--targets", "shared", "--json"]) == 0
    records = strict(capsys.readouterr().out)
    assert records and all(isinstance(r["value"], float) for r in records)

    module = importlib.import_module("mmfactor.evaluate")  # `mmfactor.evaluate` is the function
    real = module.evaluate

    def first_is_nan(*args: Any, **kwargs: Any) -> list[dict[str, Any]]:
        records = real(*args, **kwargs)
        return [{**records[0], "value": math.nan}, *records[1:]]

    monkeypatch.setattr(module, "evaluate", first_is_nan)
    assert main(["evaluate", str(cca_run), "--targets", "shared", "--json"]) == 0
    first = strict(capsys.readouterr().out)[0]
    assert first["value"] is None and first["value_nonfinite"] == "nan"


def test_a_diverging_fit_writes_strict_json(tmp_path, capsys):
    out = tmp_path / "run"
    args = ["fit", "--method", "supervised", "--data", "synthetic", *SMALL_DATA]
    args += ["--set", "train.lr=1000000.0", "--epochs", "2", "--out", str(out), "--json"]
    code = main(args)
    assert code in (0, 3)  # 3: stopped as diverged
    stdout = capsys.readouterr().out
    if stdout.strip():
        strict(stdout)
    text = (out / "metrics.json").read_text()
    metrics = strict(text)
    assert "Infinity" not in text and "NaN" not in text
    if code == 0:  # trained through: the infinite training loss is recorded as such
        assert metrics["history"][1]["train/loss_nonfinite"] == "inf"


def test_data_json_outputs_are_strict(capsys):
    assert main(["data", "list", "--json"]) == 0
    assert "synthetic" in strict(capsys.readouterr().out)
    assert main(["data", "inspect", "synthetic", "--json"]) == 0
    assert strict(capsys.readouterr().out)["name"] == "synthetic"


def _is_primary(r: dict[str, Any]) -> bool:
    """The record of the methods table's cell: probe on all factors, complete data."""
    return (
        r["method"] == "cca"
        and r["protocol"] == "linear-probe"
        and r["factors"] == "all"
        and r["metric"] == "accuracy"
        and not r["missing"]
        and "noise" not in r
    )


def test_bench_results_with_nan_are_strict_and_reported_as_na(tmp_path, capsys):
    out = tmp_path / "bench"
    args = ["bench", "quick", "--methods", "cca", "--datasets", "synthetic", "--seeds", "1"]
    assert main([*args, *SMALL_DATA, "--out", str(out), "--json"]) == 0
    assert strict(capsys.readouterr().out)["records"]
    records = read_records(out / "results.jsonl")
    # A probe that gave no number, a latent probe likewise, and no measured throughput.
    broken = [
        {
            **r,
            "value": math.nan if _is_primary(r) or r["protocol"] == "latent-probe" else r["value"],
            "samples_per_second": math.nan if r["method"] == "cca" else r["samples_per_second"],
        }
        for r in records
    ]
    assert sum(_is_primary(r) for r in broken) >= 1
    (out / "results.jsonl").unlink()
    append_records(out / "results.jsonl", broken)
    lines = (out / "results.jsonl").read_text().splitlines()
    parsed = [strict(line) for line in lines]
    nulls = [p for p in parsed if p["value"] is None]
    assert nulls and all(p["value_nonfinite"] == "nan" for p in nulls)
    assert same(read_records(out / "results.jsonl"), broken)  # the readers get NaN back

    assert main(["report", str(out), "--json"]) == 0
    assert set(strict(capsys.readouterr().out)) == {"results.md", "report.html"}
    table = (out / "results.md").read_text()
    row = next(line for line in table.splitlines() if line.startswith("| cca |"))
    assert "n/a" in row and not re.search(r"\bnan\b", table, re.IGNORECASE)
    page = (out / "report.html").read_text()
    assert "<td>n/a</td>" in page  # the latent table


def _compare_results() -> Any:
    spec = importlib.util.spec_from_file_location(
        "compare_results", ROOT / "tools" / "compare_results.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_compare_results_reads_non_finite_and_null_values(tmp_path, capsys):
    base = {"dataset": "d", "method": "m", "seed": 0, "protocol": "linear-probe"}
    before = [{**base, "metric": k, "value": v} for k, v in (("a", 0.8), ("b", math.nan))]
    after = [{**base, "metric": k, "value": v} for k, v in (("a", math.nan), ("b", math.nan))]
    append_records(tmp_path / "before.jsonl", before)
    append_records(tmp_path / "after.jsonl", after)
    with open(tmp_path / "after.jsonl", "a") as f:  # a null without its reason: missing
        f.write(json.dumps({**base, "metric": "c", "value": None}) + "\n")
    with open(tmp_path / "before.jsonl", "a") as f:
        f.write(json.dumps({**base, "metric": "c", "value": 0.5}) + "\n")
    tool = _compare_results()
    assert tool.main([str(tmp_path / "before.jsonl"), str(tmp_path / "after.jsonl")]) == 0
    printed = capsys.readouterr().out
    assert "| linear-probe | a | 1 | 1 | inf |" in printed  # 0.8 -> NaN is a change
    assert "| linear-probe | b | 1 | 0 | 0.0000 |" in printed  # NaN -> NaN is not
    assert "0.5000 -> n/a" in printed
