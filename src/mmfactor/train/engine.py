"""The training engine. PyTorch Lightning drives the loop, devices, data parallelism,
precision, checkpoint I/O, logging and the progress bar; :class:`LitMethod` adds the
alternation of a main step and estimator steps that methods with estimator networks need
(the method docstrings), and :class:`RunKeeper` the end-of-epoch validation, best weights,
early stopping and periodic checkpoints.
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
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.plugins.io import AsyncCheckpointIO, TorchCheckpointIO
from lightning.pytorch.strategies import DDPStrategy, SingleDeviceStrategy

from mmfactor.config import TRAIN_DEFAULTS, validate_train
from mmfactor.data.batching import Batch, make_loader
from mmfactor.data.dataset import MultimodalDataset
from mmfactor.errors import InputError
from mmfactor.io import atomic_write, load_torch, save_torch, write_json
from mmfactor.methods.base import Method

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


def build_optimizer(
    name: str, params: Iterable[torch.nn.Parameter], lr: float, weight_decay: float = 0.0
) -> torch.optim.Optimizer:
    """The engine's optimisers. Adam and AdamW use the fused kernels where torch has them
    (CPU since torch 2.4): the same update, one kernel instead of a Python loop over
    parameters (measured ~10% of a small MLP's step)."""
    params = list(params)
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, weight_decay=weight_decay)
    cls = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW}[name]
    try:
        return cls(params, lr=lr, weight_decay=weight_decay, fused=True)
    except (RuntimeError, TypeError, ValueError):  # no fused kernel for this device/dtype
        return cls(params, lr=lr, weight_decay=weight_decay)


class LitMethod(L.LightningModule):
    """Wraps a :class:`Method`: one main optimiser step on the method's own parameters, then
    ``method.estimator_steps`` steps on its estimator parameters (manual optimisation)."""

    def __init__(
        self, method: Method, train: dict[str, Any], data: MultimodalDataset, target: str | None
    ) -> None:
        super().__init__()
        self.method = method
        self.train_cfg = train
        self.data = data
        self.target = target
        self.automatic_optimization = False
        self.has_estimators = any(True for _ in method.estimator_parameters())
        # Under DDP the estimator networks are left out of DDP's gradient reduction (their
        # backward passes run outside DDP's forward/backward pairing, several per step, and
        # their parameters take no part in the main loss); the engine averages their
        # gradients over ranks itself (_sync_estimator_gradients).
        estimator_ids = {id(p) for p in method.estimator_parameters()}
        self._ddp_params_and_buffers_to_ignore = [
            f"method.{name}" for name, p in method.named_parameters() if id(p) in estimator_ids
        ]
        self._epoch_sums: dict[str, dict[str, torch.Tensor]] = {}
        self._epoch_counts: dict[str, int] = {}
        self.samples_trained = 0  # in this process's fit, all ranks counted
        self._valid_loader: Any = None

    # --- data ----------------------------------------------------------------------------
    def _loader(self, split: str, shuffle: bool) -> Any:
        cfg = self.train_cfg
        idx = self.data.indices(split)
        world = self.trainer.world_size
        batch_size = min(cfg["batch_size"], max(world, len(idx) // world * world))
        pool, per_batch = None, 0
        if split == "train" and cfg["unlabeled_ratio"] > 0:
            pool = self.data.splits.get("unlabeled")
            if pool is None or len(pool) == 0:
                raise InputError(
                    f"train.unlabeled_ratio is {cfg['unlabeled_ratio']} but data set "
                    f"{self.data.name!r} has no 'unlabeled' split (a data option may add "
                    "one, such as synthetic's n_unlabeled)"
                )
            per_batch = world * max(1, round(cfg["unlabeled_ratio"] * batch_size / world))
        return make_loader(
            self.data,
            idx,
            batch_size,
            target=self.target,
            shuffle=shuffle,
            seed=cfg["seed"],
            drop_last=shuffle and len(idx) > batch_size,
            rank=self.trainer.global_rank,
            world_size=world,
            num_workers=cfg["num_workers"],
            unlabeled=pool,
            unlabeled_per_batch=per_batch,
        )

    def train_dataloader(self) -> Any:
        return self._loader("train", shuffle=True)

    @torch.no_grad()
    def validate(self) -> dict[str, torch.Tensor]:
        """One pass over the validation split; logs ``valid/*`` and returns the means
        (averaged over processes under data parallelism).

        The engine runs this itself at the end of each training epoch instead of Lightning's
        validation loop, whose set-up costs ~5 ms per epoch (measured: 3% of a quick-suite
        run) for what is a plain loop over a few batches here.
        """
        if self._valid_loader is None:
            self._valid_loader = self._loader("valid", shuffle=False)
        was_training = self.method.training
        self.method.eval()
        with self.trainer.precision_plugin.forward_context():  # as the training step has
            for batch in self._valid_loader:
                loss = self.method.loss(batch.to(self.device))
                self._log("valid", loss.watched, loss.parts, len(batch))
        self.method.train(was_training)
        return self._flush("valid")

    def transfer_batch_to_device(
        self, batch: Batch, device: torch.device, dataloader_idx: int
    ) -> Batch:
        return batch.to(device)

    # --- optimisation --------------------------------------------------------------------
    def configure_optimizers(self) -> Any:
        cfg = self.train_cfg
        main = build_optimizer(
            cfg["optimizer"], self.method.main_parameters(), cfg["lr"], cfg["weight_decay"]
        )
        if not self.has_estimators:
            return main
        estimator = build_optimizer(
            cfg["estimator_optimizer"], self.method.estimator_parameters(), cfg["estimator_lr"]
        )
        return [main, estimator]

    def training_step(self, batch: Batch, batch_idx: int) -> torch.Tensor:
        # Reseed from (seed, epoch, step) so that a run resumed from a checkpoint draws the
        # same dropout masks and augmentations as an uninterrupted one, whatever the engine
        # did with the global generator in between.
        # (torch.manual_seed would also queue lazy seeds for every accelerator backend, with a
        # stack trace each: a millisecond per step; seed only the generators in use.)
        step_seed = hash((self.train_cfg["seed"], self.current_epoch, batch_idx)) % 2**63
        torch.default_generator.manual_seed(step_seed)
        if self.device.type == "cuda":
            torch.cuda.manual_seed(step_seed)
        opts = self.optimizers()
        opts = opts if isinstance(opts, list) else [opts]
        main_opt = opts[0]
        if self.has_estimators:
            self.toggle_optimizer(main_opt)
        loss = self.method.loss(batch)
        main_opt.zero_grad(set_to_none=True)
        self._backward(loss.total)
        self._step(main_opt)
        if self.has_estimators:
            self.untoggle_optimizer(main_opt)
            est_opt = opts[1]
            self.toggle_optimizer(est_opt)
            for _ in range(self.method.estimator_steps):
                est_opt.zero_grad(set_to_none=True)
                est_loss = self.method.estimator_loss(batch, loss.state)
                self._backward(est_loss)
                self._sync_estimator_gradients()
                self._step(est_opt)
            self.untoggle_optimizer(est_opt)
            loss.parts["estimator"] = est_loss.detach()
        self.samples_trained += len(batch) * self.trainer.world_size
        self._log("train", loss.watched, loss.parts, len(batch))
        return loss.total.detach()

    def on_fit_start(self) -> None:
        # Lightning's backward and optimizer wrappers cost ~0.5 ms per step (hooks, profiler
        # spans, closures; measured), 3-4% of a small model's step. Where they add nothing
        # (no gradient scaler; one device, or DDP for the step, whose gradients are already
        # reduced in backward), call torch directly.
        strategy, no_scaler = (
            type(self.trainer.strategy),
            not hasattr(self.trainer.precision_plugin, "scaler")
            or self.trainer.precision_plugin.scaler is None,
        )  # type: ignore[attr-defined]
        self._raw_backward = no_scaler and strategy is SingleDeviceStrategy
        self._raw_step = no_scaler and strategy in (SingleDeviceStrategy, DDPStrategy)
        if self.trainer.world_size > 1:  # DDP does not broadcast the parameters it ignores
            for p in self.method.estimator_parameters():
                torch.distributed.broadcast(p.data, 0)

    def _sync_estimator_gradients(self) -> None:
        """Average the estimator parameters' gradients over ranks, in one all-reduce."""
        if self.trainer.world_size == 1:
            return
        grads = [p.grad for p in self.method.estimator_parameters() if p.grad is not None]
        flat = torch.cat([g.reshape(-1) for g in grads])
        torch.distributed.all_reduce(flat)
        flat /= self.trainer.world_size
        offset = 0
        for g in grads:
            g.copy_(flat[offset : offset + g.numel()].view_as(g))
            offset += g.numel()

    def _backward(self, loss: torch.Tensor) -> None:
        if self._raw_backward:
            loss.backward()
        else:
            self.manual_backward(loss)

    def _step(self, optimizer: Any) -> None:
        if self._raw_step:
            optimizer.optimizer.step()
        else:
            optimizer.step()

    def _log(
        self, stage: str, total: torch.Tensor, parts: dict[str, torch.Tensor], batch_size: int
    ) -> None:
        # Accumulate sample-weighted sums as tensors and log once per epoch: Lightning's
        # per-call logging costs milliseconds, as much as a small model's whole step.
        values = torch.stack([total.detach(), *(v.detach() for v in parts.values())])
        names = ["loss", *parts]
        sums = self._epoch_sums.setdefault(stage, {})
        for name, value in zip(names, values * batch_size, strict=True):
            sums[name] = sums[name] + value if name in sums else value
        self._epoch_counts[stage] = self._epoch_counts.get(stage, 0) + batch_size

    def _flush(self, stage: str) -> dict[str, torch.Tensor]:
        """Log the epoch means of ``stage`` and return them, averaged over processes."""
        sums, count = self._epoch_sums.pop(stage, {}), self._epoch_counts.pop(stage, 0)
        means = {f"{stage}/{name}": total / count for name, total in sums.items()}
        if self.trainer.world_size > 1:  # equal shards per rank: the mean of means is global
            means = {k: self.trainer.strategy.reduce(v, reduce_op="mean") for k, v in means.items()}
        for name, value in means.items():
            self.log(name, value, prog_bar=name.endswith("/loss"))
        return means

    def on_train_epoch_end(self) -> None:
        self._flush("train")


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


def _supervising_target(model: Method, data: MultimodalDataset, target: str | None) -> str | None:
    if not model.uses_labels:
        return None
    tgt = data.target(target)
    model.bind_task(tgt.task)
    return tgt.name


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
        max_epochs, batch_size, seed: the usual; other ``train`` options as in
            :data:`mmfactor.config.TRAIN_DEFAULTS` (``lr``, ``patience``, ``devices``, ...).
        out: run directory for checkpoints, logs, ``metrics.json`` and ``model.pt``. If it
            holds ``checkpoints/last.ckpt``, training resumes from it.
        config: the full run config, saved as ``config.yaml`` (the CLI passes it).

    A method with ``closed_form`` (``cca``, ``dcca``) is then fitted in closed form on the
    train split (:meth:`Method.fit_closed_form`); one without trainable parameters
    (``cca``) skips gradient training.

    Returns:
        A :class:`Run`; the model holds the best weights on validation loss (or the last
        ones with ``restore_best=False``).
    """
    cfg = dict(TRAIN_DEFAULTS)
    unknown = [k for k in train if k not in cfg]
    if unknown:
        raise InputError(f"fit: unknown training option {unknown[0]!r}")
    cfg.update(train, seed=seed)
    if max_epochs is not None:
        cfg["max_epochs"] = max_epochs
    if batch_size is not None:
        cfg["batch_size"] = batch_size
    validate_train(cfg)
    target = _supervising_target(model, data, target if target is not None else cfg["target"])
    if len(data.indices("train")) < 2:
        raise InputError(f"data set {data.name!r}: the train split needs at least 2 samples")

    tmp = None
    if out is None:
        tmp = tempfile.TemporaryDirectory(prefix="mmfactor-")
        run_dir = Path(tmp.name)
    else:
        run_dir = Path(out)
        run_dir.mkdir(parents=True, exist_ok=True)
    if config is not None:
        from mmfactor.config import dump_yaml

        dump_yaml(run_dir / "config.yaml", config)

    L.seed_everything(seed, workers=True, verbose=False)
    if any(p.requires_grad for p in model.main_parameters()):
        epochs, seconds, samples, best_loss, is_global_zero = _train(
            model, data, target, cfg, run_dir, tmp is not None, callbacks
        )
    else:  # nothing to train by gradient (cca): only the closed-form fit below
        epochs, seconds, samples, best_loss, is_global_zero = 0, 0.0, 0, None, True
    if model.closed_form:
        start = time.perf_counter()
        model.eval()
        model.fit_closed_form(_closed_form_batches(model, data, target, cfg["batch_size"]))
        seconds += time.perf_counter() - start
        samples += len(data.indices("train"))
    run = Run(
        model=model,
        out=None if tmp else run_dir,
        epochs=epochs,
        train_seconds=seconds,
        samples_per_second=samples / seconds if seconds > 0 else math.nan,
        best_valid_loss=best_loss,
        history=_history(run_dir),
        config=config or {},
        is_global_zero=is_global_zero,
    )
    model.train_stats = {
        "train_seconds": run.train_seconds,
        "samples_per_second": run.samples_per_second,
        "epochs": run.epochs,
        "target": target,
    }
    if is_global_zero and tmp is None:
        save_torch(run_dir / "model.pt", model.state_dict())
        write_json(
            run_dir / "metrics.json",
            {
                "epochs": run.epochs,
                "train_seconds": seconds,
                "samples_per_second": run.samples_per_second,
                "best_valid_loss": best_loss,
                "target": target,
                "history": run.history,
            },
        )
    model.eval()
    if tmp is not None:
        tmp.cleanup()
    return run


def _train(
    model: Method,
    data: MultimodalDataset,
    target: str | None,
    cfg: dict[str, Any],
    run_dir: Path,
    temporary: bool,
    callbacks: Sequence[Callback],
) -> tuple[int, float, int, float | None, bool]:
    """Gradient training under Lightning: ``(epochs, seconds, samples trained, best
    validation loss, is global zero)``; the model ends with the best weights when
    ``restore_best``."""
    lit = LitMethod(model, cfg, data, target)
    has_valid = len(data.splits.get("valid", ())) > 0
    ckpt_dir = run_dir / "checkpoints"
    # Without a run directory nothing could resume from a checkpoint: write none.
    keeper = RunKeeper(
        cfg["monitor"] if has_valid else None,
        cfg["patience"],
        None if temporary else ckpt_dir / "last.ckpt",
        cfg["checkpoint_interval"],
    )
    cbs: list[Callback] = [keeper, *callbacks]
    n_batches = max(1, len(data.indices("train")) // cfg["batch_size"])
    trainer = L.Trainer(
        max_epochs=cfg["max_epochs"],
        accelerator=cfg["accelerator"],
        devices=cfg["devices"],
        num_nodes=cfg["num_nodes"],
        strategy=cfg["strategy"],
        precision=cfg["precision"],
        deterministic=cfg["deterministic"],
        callbacks=cbs,
        logger=CSVLogger(run_dir, name="logs", version=f"attempt{_attempts(run_dir)}"),
        enable_progress_bar=cfg["progress"],
        enable_model_summary=False,
        log_every_n_steps=min(50, n_batches),
        use_distributed_sampler=False,
        # Checkpoints are written by a background thread from a copy of the state, so an
        # epoch's training does not wait for the disk (measured: ~20% of a small epoch).
        plugins=[AsyncCheckpointIO(AtomicCheckpointIO())],
        enable_checkpointing=False,  # RunKeeper does it
        limit_val_batches=0,  # LitMethod.validate runs the validation pass
    )
    last_path = ckpt_dir / "last.ckpt"
    with contextlib.redirect_stdout(sys.stderr):
        trainer.fit(lit, ckpt_path=str(last_path) if last_path.exists() else None)

    best_loss = None if keeper.score is None else float(keeper.score)
    if cfg["restore_best"] and keeper.state is not None:
        model.load_state_dict(keeper.state)
    return (
        trainer.current_epoch,
        keeper.seconds,
        lit.samples_trained,
        best_loss,
        trainer.is_global_zero,
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
