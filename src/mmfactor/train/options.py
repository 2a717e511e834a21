"""The training options: :class:`TrainOptions`, one typed, validated, immutable record of
everything :func:`mmfactor.train.fit` (and a run config's ``train`` section) can set.

Example:
    >>> opts = TrainOptions(max_epochs=5, lr=3e-4)
    >>> opts.batch_size, opts.lr
    (256, 0.0003)
    >>> TrainOptions(batch_size=0)
    Traceback (most recent call last):
    ...
    mmfactor.errors.InputError: train: batch_size must be an integer >= 1, got 0
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from mmfactor.checks import check_choice, check_float, check_int
from mmfactor.optim import OPTIMIZERS

#: What a training step with a non-finite loss part or gradient norm does: ``stop`` the run
#: (:class:`~mmfactor.errors.DivergedError`), or ``skip`` the step without updating the
#: weights, as AMP's gradient scaler does (the run still stops when a whole epoch is skipped).
ON_NONFINITE = ("stop", "skip")


@dataclass(frozen=True)
class TrainOptions:
    """How to train: the ``train`` section of a run config, and the keyword options of
    :func:`mmfactor.train.fit`. A bad value is an :class:`~mmfactor.errors.InputError`
    naming the option (``train: lr must be ...``)."""

    max_epochs: int = 20
    batch_size: int = 256  # the global batch: split over the processes of a data-parallel run
    lr: float = 1e-3
    weight_decay: float = 0.0
    optimizer: str = "adam"  # one of mmfactor.optim.OPTIMIZERS
    seed: int = 0
    target: str | None = None  # supervising target; None: the data set's default
    patience: int = 5  # epochs without improvement before stopping; 0: never stop early
    monitor: str = "valid/loss"  # the validation value early stopping and best weights follow
    restore_best: bool = True  # end with the best weights on `monitor`, not the last ones
    checkpoint_interval: float = 30.0  # seconds between checkpoints; 0: every epoch
    estimator_lr: float = 1e-3
    estimator_optimizer: str = "adam"
    unlabeled_ratio: float = 0.0  # unlabeled samples per labeled one in a training batch
    on_nonfinite: str = "stop"  # a non-finite loss or gradient norm: one of ON_NONFINITE
    # Passed to lightning.Trainer as they are:
    accelerator: str = "cpu"
    devices: int = 1
    num_nodes: int = 1
    strategy: str = "auto"
    precision: str | int = "32-true"
    num_workers: int = 0
    deterministic: bool | str = True
    progress: bool = True

    def __post_init__(self) -> None:
        owner = "train"
        checked: dict[str, Any] = {
            key: check_int(owner, key, getattr(self, key), minimum=1)
            for key in ("max_epochs", "batch_size", "devices", "num_nodes")
        }
        checked["checkpoint_interval"] = check_float(
            owner,
            "checkpoint_interval",
            self.checkpoint_interval,
            minimum=0,
            finite=False,  # inf: only after the last epoch
            hint="seconds; 0: every epoch",
        )
        for key in ("lr", "estimator_lr"):
            checked[key] = check_float(owner, key, getattr(self, key), minimum=0, min_open=True)
        for key in ("optimizer", "estimator_optimizer"):
            checked[key] = check_choice(owner, key, getattr(self, key), OPTIMIZERS)
        checked["on_nonfinite"] = check_choice(
            owner, "on_nonfinite", self.on_nonfinite, ON_NONFINITE
        )
        checked["seed"] = check_int(owner, "seed", self.seed, minimum=None)
        checked["unlabeled_ratio"] = check_float(
            owner,
            "unlabeled_ratio",
            self.unlabeled_ratio,
            minimum=0,
            maximum=10**6,
            max_open=True,
            hint="unlabeled samples per labeled one in a batch",
        )
        checked["patience"] = check_int(
            owner, "patience", self.patience, minimum=0, hint="0: no early stopping"
        )
        # Stored as the checks return them (an integer lr as a float, a NumPy integer as an
        # int), so that the fields hold the types they declare. Frozen: set here only.
        for key, value in checked.items():
            object.__setattr__(self, key, value)

    def as_dict(self) -> dict[str, Any]:
        """The options as a plain dict, in field order (a config's ``train`` section)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}


def option_names() -> tuple[str, ...]:
    """The names of the training options, in field order."""
    return tuple(f.name for f in dataclasses.fields(TrainOptions))


def train_defaults() -> dict[str, Any]:
    """The default training options as a fresh dict (what ``config.TRAIN_DEFAULTS`` holds)."""
    return TrainOptions().as_dict()
