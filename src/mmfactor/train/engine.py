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
from lightning.pytorch.plugins.io import AsyncCheckpointIO, TorchCheckpointIO

from mmfactor import __version__
from mmfactor.data.batching import Batch, make_loader
from mmfactor.data.dataset import MultimodalDataset
from mmfactor.errors import InputError
from mmfactor.io import atomic_write, load_torch, save_torch, write_json, write_yaml
from mmfactor.methods.base import Method
from mmfactor.train.module import LitMethod
from mmfactor.train.options import TrainOptions, option_names

for _name in ("lightning.pytorch", "lightning.fabric", "lightning"):
    logging.getLogger(_name).setLevel(logging.WARNING)
warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)")


class AtomicCheckpointIO(TorchCheckpointIO):
    """Checkpoints written atomically and read back with ``torch.load(weights_only=True)``."""

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: Any, storage_options: Any = None
    ) -> None:
        # Renaming is atomic against a killed process; no fsync, which would cost more per
        # epoch than a small model's training step (power loss may lose the last epoch).
        atomic_write(path, lambda f: torch.save(checkpoint, f), durable=False)

    def load_checkpoint(
        self, path: Any, map_location: Any = None, weights_only: bool | None = None
    ) -> dict[str, Any]:
        return load_torch(path, map_location=map_location or "cpu")


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


@dataclass
class _Trained:
    """What the training steps did; the closed-form fit adds its time and samples."""

    epochs: int = 0
    seconds: float = 0.0
    samples: int = 0
    best_valid_loss: float | None = None
    is_global_zero: bool = True


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
            resumes from it.
        config: the full run config, saved as ``config.yaml`` (the CLI passes it).

    A method with ``closed_form`` (``cca``, ``dcca``) is then fitted in closed form on the
    train split (:meth:`Method.fit_closed_form`); one without trainable parameters
    (``cca``) skips gradient training.

    Returns:
        A :class:`Run`; the model holds the best weights on validation loss (or the last
        ones with ``restore_best=False``).
    """
    opts = _options(train, seed=seed, max_epochs=max_epochs, batch_size=batch_size)
    target = _supervising_target(model, data, target if target is not None else opts.target)
    if len(data.indices("train")) < 2:
        raise InputError(f"data set {data.name!r}: the train split needs at least 2 samples")
    with _run_directory(out, config) as run_dir:
        L.seed_everything(seed, workers=True, verbose=False)
        trained = _Trained()  # nothing to train by gradient (cca): only the closed form
        if any(p.requires_grad for p in model.main_parameters()):
            trained = _train(model, data, target, opts, run_dir, out is None, callbacks)
        if model.closed_form:
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
def _run_directory(out: str | Path | None, config: dict[str, Any] | None) -> Iterator[Path]:
    """The run directory ``out``, created, with ``config.yaml`` if ``config`` is given; a
    temporary directory, removed on exit, when ``out`` is ``None`` (Lightning's logger
    needs a directory; nothing is kept)."""
    with contextlib.ExitStack() as stack:
        if out is None:
            run_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="mmfactor-")))
        else:
            run_dir = Path(out)
            run_dir.mkdir(parents=True, exist_ok=True)
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
    """Gradient training under Lightning, resuming from ``checkpoints/last.ckpt`` if it
    exists; the model ends with the best weights when ``restore_best``."""
    lit = LitMethod(model, opts, data, target)
    has_valid = len(data.splits.get("valid", ())) > 0
    last = run_dir / "checkpoints" / "last.ckpt"
    # Without a run directory nothing could resume from a checkpoint: write none.
    keeper = RunKeeper(
        opts.monitor if has_valid else None,
        opts.patience,
        None if temporary else last,
        opts.checkpoint_interval,
    )
    trainer = _trainer(opts, run_dir, [keeper, *callbacks], len(data.indices("train")))
    with contextlib.redirect_stdout(sys.stderr):
        trainer.fit(lit, ckpt_path=str(last) if last.exists() else None)

    best = None if keeper.score is None else float(keeper.score)
    if opts.restore_best and keeper.state is not None:
        model.load_state_dict(keeper.state)
    return _Trained(
        trainer.current_epoch, keeper.seconds, lit.samples_trained, best, trainer.is_global_zero
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
    """``model.pt`` (the weights) and ``metrics.json`` (how training went, and the
    mmfactor version that wrote them, which :func:`mmfactor.runs.load_run` reports when
    the weights no longer fit the method)."""
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
