"""The training engine: :func:`fit`. PyTorch Lightning drives the loop, devices, data
parallelism, precision, checkpoint I/O, logging and the progress bar;
:class:`~mmfactor.train.module.LitMethod` adds the alternation of a main step and estimator
steps that methods with estimator networks need (the method docstrings), and
:class:`RunKeeper` the end-of-epoch validation, best weights, early stopping and periodic
checkpoints.
"""

from __future__ import annotations

import contextlib
import csv
import itertools
import logging
import math
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.plugins.io import AsyncCheckpointIO

from mmfactor import __version__
from mmfactor.data.batching import Batch, make_loader
from mmfactor.data.dataset import MultimodalDataset
from mmfactor.errors import DivergedError, InputError
from mmfactor.io import save_torch, write_json, write_yaml
from mmfactor.lock import launching_process, lock_directory
from mmfactor.methods.base import Method
from mmfactor.train.checkpoints import AtomicCheckpointIO, resume_checkpoint, start_over
from mmfactor.train.module import LitMethod
from mmfactor.train.options import TrainOptions, option_names

for _name in ("lightning.pytorch", "lightning.fabric", "lightning"):
    logging.getLogger(_name).setLevel(logging.WARNING)
warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)")


class RunKeeper(Callback):
    """The engine's end-of-epoch bookkeeping, in one callback (each callback costs dispatch
    time on every hook of every step):

    - **validation**: :meth:`LitMethod.validate` on the validation split;
    - **best weights**: a copy of the method's weights at the best ``monitor`` value (lower
      is better), kept in memory and in the training checkpoint, so restoring the best epoch
      costs no extra file;
    - **early stopping**: training stops after ``patience`` epochs without improvement
      (0: never);
    - **checkpoints**: the full training state is written to ``path`` at the end of an epoch
      once ``interval`` seconds have passed since the last write (0: every epoch), and always
      after the final epoch (none with ``path=None``). Resuming from any end-of-epoch state
      gives the uninterrupted result (the engine reseeds every step), so the interval only
      bounds the work a kill can lose;
    - **timing**: wall time of the training epochs, the validation pass excluded (so
      ``samples_per_second`` is the training throughput).
    """

    def __init__(
        self, monitor: str | None, patience: int, path: Path | None, interval: float
    ) -> None:
        self.monitor, self.patience, self.path, self.interval = monitor, patience, path, interval
        self.score: torch.Tensor | None = None
        self.state: dict[str, torch.Tensor] | None = None
        self.wait = 0
        self.seconds = 0.0
        self._epoch_start = 0.0
        self._last_save = time.monotonic()

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._epoch_start = time.perf_counter()

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.seconds += time.perf_counter() - self._epoch_start
        lit: LitMethod = pl_module  # type: ignore[assignment]
        if self.monitor is not None:
            self._track(trainer, lit, lit.validate())
        if self.path is None:
            return
        final = trainer.should_stop or trainer.current_epoch + 1 >= (trainer.max_epochs or 0)
        if final or time.monotonic() - self._last_save >= self.interval:
            trainer.save_checkpoint(self.path)
            self._last_save = time.monotonic()

    def _track(self, trainer: L.Trainer, lit: LitMethod, means: dict[str, torch.Tensor]) -> None:
        assert self.monitor is not None
        if self.monitor not in means:
            raise InputError(
                f"train.monitor {self.monitor!r} is not a validation value; values: "
                f"{', '.join(means)}"
            )
        current = means[self.monitor]
        if self.score is None or bool(current < self.score):
            self.score, self.wait = current.detach().clone(), 0
            self.state = {k: v.detach().clone() for k, v in lit.method.state_dict().items()}
        else:
            self.wait += 1
            if self.patience and self.wait >= self.patience:
                trainer.should_stop = True

    def state_dict(self) -> dict[str, Any]:
        return {"score": self.score, "state": self.state, "wait": self.wait}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.score, self.state = state_dict["score"], state_dict["state"]
        self.wait = state_dict["wait"]


@dataclass
class Run:
    """What :func:`fit` returns: the trained model and how the training went."""

    model: Method
    out: Path | None
    epochs: int
    train_seconds: float
    samples_per_second: float
    best_valid_loss: float | None
    history: list[dict[str, float]] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)
    is_global_zero: bool = True  # False in the other processes of a data-parallel run
    status: str = "ok"  # "diverged": a non-finite value stopped training (DivergedError)
    diverged: dict[str, Any] | None = None  # where: DivergedError.as_dict()
    skipped_steps: int = 0  # steps skipped for a non-finite value (train.on_nonfinite=skip)


@dataclass
class _Trained:
    """What the training steps did; the closed-form fit adds its time and samples."""

    epochs: int = 0
    seconds: float = 0.0
    samples: int = 0
    best_valid_loss: float | None = None
    is_global_zero: bool = True
    diverged: DivergedError | None = None
    skipped_steps: int = 0


def fit(
    model: Method,
    data: MultimodalDataset,
    target: str | None = None,
    *,
    max_epochs: int | None = None,
    batch_size: int | None = None,
    seed: int = 0,
    out: str | Path | None = None,
    callbacks: Sequence[Callback] = (),
    config: dict[str, Any] | None = None,
    restart: bool = False,
    **train: Any,
) -> Run:
    """Train ``model`` on the ``train`` split of ``data``, early-stopping on ``valid``.

    Args:
        model: a method from :func:`mmfactor.methods.build`.
        data: the data set; ``target`` names the supervising target (ignored by
            self-supervised methods; default: the data set's default target).
        max_epochs, batch_size, seed: the usual; other ``train`` options are the fields of
            :class:`~mmfactor.train.options.TrainOptions` (``lr``, ``patience``, ``devices``,
            ...); an unknown one is an :class:`InputError`.
        out: run directory for ``model.pt``, ``metrics.json``, checkpoints and logs (the
            files: :mod:`mmfactor.runs`). If it holds ``checkpoints/last.ckpt``, training
            resumes from it (from ``previous.ckpt``, with a warning, if it cannot be read;
            :mod:`mmfactor.train.checkpoints`). One process at a time trains into it: the
            others get an :class:`InputError` naming the holder (:mod:`mmfactor.lock`).
        restart: discard the checkpoints, logs and outputs in ``out`` and train from scratch
            (where its checkpoints cannot be read, say).
        config: the full run config, saved as ``config.yaml`` (the CLI passes it).

    A method with ``closed_form`` (``cca``, ``dcca``) is then fitted in closed form on the
    train split (:meth:`Method.fit_closed_form`); one without trainable parameters
    (``cca``) skips gradient training.

    Returns:
        A :class:`Run`; the model holds the best weights on validation loss (or the last
        ones with ``restore_best=False``).

    Raises:
        DivergedError: a loss part, the gradient norm or a validation value was not finite
            (``on_nonfinite``); ``out`` then holds the last finite checkpoint, ``model.pt``
            with the best (else the last finite) weights, which the model holds too, and
            ``metrics.json`` with ``"status": "diverged"``; the error's ``run`` is the
            :class:`Run`.
    """
    opts = _options(train, seed=seed, max_epochs=max_epochs, batch_size=batch_size)
    target = _supervising_target(model, data, target if target is not None else opts.target)
    if len(data.indices("train")) < 2:
        raise InputError(f"data set {data.name!r}: the train split needs at least 2 samples")
    with _run_directory(out, config, restart) as run_dir:
        L.seed_everything(seed, workers=True, verbose=False)
        trained = _Trained()  # nothing to train by gradient (cca): only the closed form
        if any(p.requires_grad for p in model.main_parameters()):
            trained = _train(model, data, target, opts, run_dir, out is None, callbacks)
        if model.closed_form and trained.diverged is None:
            trained.seconds += _fit_closed_form(model, data, target, opts.batch_size)
            trained.samples += len(data.indices("train"))
        seconds = trained.seconds
        run = Run(
            model=model,
            out=None if out is None else run_dir,
            epochs=trained.epochs,
            train_seconds=seconds,
            samples_per_second=trained.samples / seconds if seconds > 0 else math.nan,
            best_valid_loss=trained.best_valid_loss,
            history=_history(run_dir),
            config=config or {},
            is_global_zero=trained.is_global_zero,
            status="ok" if trained.diverged is None else "diverged",
            diverged=None if trained.diverged is None else trained.diverged.as_dict(),
            skipped_steps=trained.skipped_steps,
        )
        model.train_stats = {
            "train_seconds": run.train_seconds,
            "samples_per_second": run.samples_per_second,
            "epochs": run.epochs,
            "target": target,
        }
        if run.is_global_zero and run.out is not None:
            _write_outputs(run, target)
    model.eval()
    if trained.diverged is not None:
        trained.diverged.run = run
        raise trained.diverged
    return run


def _options(
    train: Mapping[str, Any], *, seed: int, max_epochs: int | None, batch_size: int | None
) -> TrainOptions:
    """:func:`fit`'s keyword options as :class:`TrainOptions` (unset ones: the defaults)."""
    known = option_names()
    for key in train:
        if key not in known:
            raise InputError(
                f"{key}: not a training option of fit; options: {', '.join(known)}",
                argument=key,
            )
    values = {**train, "seed": seed}
    if max_epochs is not None:
        values["max_epochs"] = max_epochs
    if batch_size is not None:
        values["batch_size"] = batch_size
    return TrainOptions(**values)


def _supervising_target(model: Method, data: MultimodalDataset, target: str | None) -> str | None:
    """The name of the target ``model`` trains on (``None`` for a self-supervised method),
    with the model's head bound to that target's task."""
    if not model.uses_labels:
        return None
    tgt = data.target(target)
    model.bind_task(tgt.task)
    return tgt.name


@contextlib.contextmanager
def _run_directory(
    out: str | Path | None, config: dict[str, Any] | None, restart: bool = False
) -> Iterator[Path]:
    """The run directory ``out``, created and locked for the ``with`` block, emptied of an
    earlier training's files when ``restart``, with ``config.yaml`` if ``config`` is given;
    a temporary directory, removed on exit, when ``out`` is ``None`` (Lightning's logger
    needs a directory; nothing is kept)."""
    with contextlib.ExitStack() as stack:
        if out is None:
            run_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="mmfactor-")))
        else:
            run_dir = Path(out)
            run_dir.mkdir(parents=True, exist_ok=True)
            stack.enter_context(lock_directory(run_dir))
            if restart and launching_process():  # not again in each data-parallel worker
                start_over(run_dir)
        if config is not None:
            write_yaml(run_dir / "config.yaml", config)
        yield run_dir


def _train(
    model: Method,
    data: MultimodalDataset,
    target: str | None,
    opts: TrainOptions,
    run_dir: Path,
    temporary: bool,
    callbacks: Sequence[Callback],
) -> _Trained:
    """Gradient training under Lightning, resuming from ``checkpoints/last.ckpt`` (or the
    previous one) if there is one; the model ends with the best weights when
    ``restore_best``."""
    last = run_dir / "checkpoints" / "last.ckpt"
    resume = None if temporary else resume_checkpoint(last)  # before anything is written
    lit = LitMethod(model, opts, data, target)
    has_valid = len(data.splits.get("valid", ())) > 0
    # Without a run directory nothing could resume from a checkpoint: write none.
    keeper = RunKeeper(
        opts.monitor if has_valid else None,
        opts.patience,
        None if temporary else last,
        opts.checkpoint_interval,
    )
    trainer = _trainer(opts, run_dir, [keeper, *callbacks], len(data.indices("train")))
    diverged = None
    try:
        with contextlib.redirect_stdout(sys.stderr):
            trainer.fit(lit, ckpt_path=None if resume is None else str(resume))
    except DivergedError as exc:  # raised before the step's update and before any checkpoint
        diverged = exc

    best = None if keeper.score is None else float(keeper.score)
    if opts.restore_best and keeper.state is not None:
        model.load_state_dict(keeper.state)
    return _Trained(
        trainer.current_epoch,
        keeper.seconds,
        lit.samples_trained,
        best,
        trainer.is_global_zero,
        diverged,
        lit.skipped_steps,
    )


def _trainer(
    opts: TrainOptions, run_dir: Path, callbacks: list[Callback], n_train: int
) -> L.Trainer:
    """The Lightning trainer for ``opts``, logging to ``run_dir/logs/attemptK``."""
    return L.Trainer(
        max_epochs=opts.max_epochs,
        accelerator=opts.accelerator,
        devices=opts.devices,
        num_nodes=opts.num_nodes,
        strategy=opts.strategy,
        # Lightning checks these two against its own lists of values:
        precision=opts.precision,  # type: ignore[arg-type]
        deterministic=opts.deterministic,  # type: ignore[arg-type]
        callbacks=callbacks,
        logger=CSVLogger(run_dir, name="logs", version=f"attempt{_attempts(run_dir)}"),
        enable_progress_bar=opts.progress,
        enable_model_summary=False,
        log_every_n_steps=min(50, max(1, n_train // opts.batch_size)),
        use_distributed_sampler=False,
        # Checkpoints are written by a background thread from a copy of the state, so an
        # epoch's training does not wait for the disk (measured: ~20% of a small epoch).
        plugins=[AsyncCheckpointIO(AtomicCheckpointIO())],
        enable_checkpointing=False,  # RunKeeper does it
        limit_val_batches=0,  # LitMethod.validate runs the validation pass
    )


def _fit_closed_form(
    model: Method, data: MultimodalDataset, target: str | None, batch_size: int
) -> float:
    """:meth:`Method.fit_closed_form` on the train split; the seconds it took."""
    start = time.perf_counter()
    model.eval()
    model.fit_closed_form(_closed_form_batches(model, data, target, batch_size))
    return time.perf_counter() - start


def _write_outputs(run: Run, target: str | None) -> None:
    """``model.pt`` (the weights) and ``metrics.json`` (how training went, ``status`` "ok"
    or "diverged", and the mmfactor version that wrote them, which
    :func:`mmfactor.runs.load_run` reports when the weights no longer fit the method)."""
    assert run.out is not None
    save_torch(run.out / "model.pt", run.model.state_dict())
    write_json(
        run.out / "metrics.json",
        {
            "epochs": run.epochs,
            "train_seconds": run.train_seconds,
            "samples_per_second": run.samples_per_second,
            "best_valid_loss": run.best_valid_loss,
            "target": target,
            "history": run.history,
            "mmfactor_version": __version__,
            "status": run.status,
            **({"diverged": run.diverged} if run.diverged is not None else {}),
            "skipped_steps": run.skipped_steps,
        },
    )


def _closed_form_batches(
    model: Method, data: MultimodalDataset, target: str | None, batch_size: int
) -> Iterator[Batch]:
    """The train split in order, on the model's device, for :meth:`Method.fit_closed_form`."""
    device = next(itertools.chain(model.parameters(), model.buffers())).device
    for batch in make_loader(data, data.indices("train"), batch_size, target=target):
        yield batch.to(device)


def _attempts(run_dir: Path) -> int:
    """How many times training started in ``run_dir``: each (re)start logs to its own
    ``logs/attemptK/metrics.csv``, so resuming never overwrites the history."""
    return len(list((run_dir / "logs").glob("attempt*")))


def _history(run_dir: Path) -> list[dict[str, float]]:
    """Per-epoch logged values over all attempts, one dict per epoch (later attempts win)."""
    epochs: dict[int, dict[str, float]] = {}
    for attempt in range(_attempts(run_dir)):
        path = run_dir / "logs" / f"attempt{attempt}" / "metrics.csv"
        if not path.exists():
            continue
        with path.open() as f:
            for row in csv.DictReader(f):
                ep = int(row["epoch"])
                entry = epochs.setdefault(ep, {"epoch": ep})
                entry.update(
                    {k: float(v) for k, v in row.items() if v and k not in ("epoch", "step")}
                )
    return [epochs[k] for k in sorted(epochs)]
