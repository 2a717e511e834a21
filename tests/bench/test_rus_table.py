"""The redundancy / uniqueness / synergy table of results.md, from hand-made records."""

from __future__ import annotations

from typing import Any

from mmfactor.bench import results_markdown


def _record(method: str, seed: int, bench_target: str, target: str, value: float) -> dict[str, Any]:
    return {
        "method": method,
        "dataset": "trifeatures",
        "seed": seed,
        "bench_target": bench_target,
        "primary_target": bench_target,
        "protocol": "linear-probe",
        "target": target,
        "factors": "all",
        "metric": "balanced_accuracy",
        "value": value,
        "missing": [],
    }


def _row(markdown: str, start: str) -> list[str]:
    line = next(line for line in markdown.splitlines() if line.startswith(start))
    return [c.strip() for c in line.strip("|").split("|")]


def test_rus_columns_take_each_targets_own_model_and_average_the_unique_targets():
    records = []
    for seed, shift in ((0, 0.0), (1, 0.02)):
        # supervised: a model per target; its scores on other targets must not count.
        for t, own, other in (
            ("shared", 0.9, 0.1),
            ("unique:x1", 0.6, 0.1),
            ("unique:x2", 0.8, 0.1),
            ("synergy", 0.7, 0.1),
        ):
            for target in ("shared", "unique:x1", "unique:x2", "synergy"):
                value = own if target == t else other
                records.append(_record("supervised", seed, t, target, value + shift))
        # clip: label-free, so the same scores under every entry.
        for t in ("shared", "unique:x1", "unique:x2", "synergy"):
            for target, value in (("shared", 1.0), ("unique:x1", 0.1), ("unique:x2", 0.3)):
                records.append(_record("clip", seed, t, target, value))
            records.append(_record("clip", seed, t, "synergy", 0.5))
    markdown = results_markdown(records)
    assert _row(markdown, "| method | labels |") == [
        "method",
        "labels",
        "redundancy",
        "uniqueness",
        "synergy",
    ]
    # Seeds 0 and 1: 90 and 92; uniqueness (60 + 80) / 2 = 70 and 72; synergy 70 and 72.
    assert _row(markdown, "| supervised |")[1:] == ["yes", "91.0 ± 1.4", "71.0 ± 1.4", "71.0 ± 1.4"]
    assert _row(markdown, "| clip |")[1:] == ["no", "100.0 ± 0.0", "20.0 ± 0.0", "50.0 ± 0.0"]
    published_cross = ["no", "100.0", "11.6", "50.0"]
    assert _row(markdown, "| Cross (published, ours: clip) |")[1:] == published_cross
    assert "| InfMasking (published) | no | 99.9 | 90.6 | 77.0 |" in markdown


def test_no_rus_table_without_a_synergy_target():
    records = [_record("clip", 0, "shared", t, 0.5) for t in ("shared", "unique:x1")]
    assert "| method | labels |" not in results_markdown(records)
