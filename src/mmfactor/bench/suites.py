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


#: The unique-information shares of the ``mix`` suite (targets ``mix@r`` of ``synthetic``).
MIX_TARGETS = ("mix@0", "mix@0.25", "mix@0.5", "mix@0.75", "mix@1.0")

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
    # FactorCL's central claim (Liang et al. 2023, Fig. 1): as the share r of task
    # information that is unique to one modality grows, contrastive learning of what the
    # modalities share loses accuracy and FactorCL does not. One entry per r: methods that
    # use labels train on mix@r; label-free ones are trained once and probed on every r.
    "mix": Suite(
        "mix",
        tuple(
            BenchData(
                "synthetic", {"n": 4000}, target=t, eval_targets=(t,), train={"max_epochs": 15}
            )
            for t in MIX_TARGETS
        ),
        seeds=3,
        methods=("clip", "cross-self", "supcon", "factorcl-ssl", "factorcl-sup"),
        description="accuracy on synthetic mix@r for r = 0 ... 1 (unique share), with a plot",
    ),
}


def get_suite(name: str) -> Suite:
    if name not in SUITES:
        raise unknown_name("bench suite", name, list(SUITES))
    return SUITES[name]
