"""Benchmark suites: which data sets, targets and settings a named suite runs."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mmfactor.errors import unknown_name


@dataclass(frozen=True)
class BenchData:
    """One data set of a suite: its options, the supervising target, what is evaluated."""

    name: str
    options: dict[str, Any] = field(default_factory=dict)
    target: str | None = None
    eval_targets: tuple[str, ...] | None = None
    missing: tuple[str, ...] = ()
    train: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Suite:
    name: str
    datasets: tuple[BenchData, ...]
    seeds: int = 1
    methods: tuple[str, ...] | None = None  # None: every registered method
    description: str = ""


SUITES: dict[str, Suite] = {
    "quick": Suite(
        "quick",
        (
            BenchData(
                "synthetic",
                {"n": 4000},
                target="mix@0.5",
                eval_targets=("shared", "unique:x1", "unique:x2", "mix@0.5", "mix@1.0"),
                missing=("x1", "x2"),
                train={"max_epochs": 15},
            ),
            BenchData(
                "uci-mfeat",
                {"views": ["fou", "pix"]},
                target="digit",
                missing=("fou", "pix"),
                train={"max_epochs": 30},
            ),
        ),
        seeds=1,
        description="every method on synthetic and uci-mfeat (fou + pix), short training",
    ),
}


def get_suite(name: str) -> Suite:
    if name not in SUITES:
        raise unknown_name("bench suite", name, list(SUITES))
    return SUITES[name]
