"""The LightningModule of a method: :class:`LitMethod`. Its data loaders, the main step and
the estimator steps, the epoch means it logs, and the check that what a step computed is
finite (``train.on_nonfinite``)."""

from __future__ import annotations

from typing import Any

import lightning as L
import torch
from lightning.pytorch.strategies import DDPStrategy, SingleDeviceStrategy

from mmfactor.data.batching import Batch, make_loader
from mmfactor.data.dataset import MultimodalDataset
from mmfactor.errors import DivergedError, InputError
from mmfactor.methods.base import Method
from mmfactor.optim import build_optimizer
from mmfactor.train.options import TrainOptions


class LitMethod(L.LightningModule):
    """Wraps a :class:`Method`: one main optimiser step on the method's own parameters, then
    ``method.estimator_steps`` steps on its estimator parameters (manual optimisation).

    Every step checks, before it updates any weight, that the loss parts, the loss and the
    gradient norm of the main step, and each estimator loss are finite; the validation
    means are checked at the end of each epoch. A non-finite one raises
    :class:`~mmfactor.errors.DivergedError` (``train.on_nonfinite: stop``), or, with ``skip``,
    the step updates nothing more (a non-finite estimator loss comes after the main update)
    and counts in ``skipped_steps``; an epoch of skipped steps still raises.
    """

    def __init__(
        self, method: Method, opts: TrainOptions, data: MultimodalDataset, target: str | None
    ) -> None:
        super().__init__()
        self.method = method
        self.opts = opts
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
        self.skipped_steps = 0  # steps with a non-finite value (on_nonfinite=skip), resumed too
        self._epoch_skipped = 0
        self._valid_loader: Any = None

    # --- data ----------------------------------------------------------------------------
    def _loader(self, split: str, shuffle: bool) -> Any:
        opts = self.opts
        idx = self.data.indices(split)
        world = self.trainer.world_size
        batch_size = min(opts.batch_size, max(world, len(idx) // world * world))
        pool, per_batch = None, 0
        if split == "train" and opts.unlabeled_ratio > 0:
            pool = self.data.splits.get("unlabeled")
            if pool is None or len(pool) == 0:
                raise InputError(
                    f"train.unlabeled_ratio is {opts.unlabeled_ratio} but data set "
                    f"{self.data.name!r} has no 'unlabeled' split (a data option may add "
                    "one, such as synthetic's n_unlabeled)"
                )
            per_batch = world * max(1, round(opts.unlabeled_ratio * batch_size / world))
        return make_loader(
            self.data,
            idx,
            batch_size,
            target=self.target,
            shuffle=shuffle,
            seed=opts.seed,
            drop_last=shuffle and len(idx) > batch_size,
            rank=self.trainer.global_rank,
            world_size=world,
            num_workers=opts.num_workers,
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
        means = self._flush("valid")
        self._check_valid(means)
        return means

    def transfer_batch_to_device(
        self, batch: Batch, device: torch.device, dataloader_idx: int
    ) -> Batch:
        return batch.to(device)

    # --- optimisation --------------------------------------------------------------------
    def configure_optimizers(self) -> Any:
        opts = self.opts
        main = build_optimizer(
            opts.optimizer, self.method.main_parameters(), opts.lr, opts.weight_decay
        )
        if not self.has_estimators:
            return main
        estimator = build_optimizer(
            opts.estimator_optimizer, self.method.estimator_parameters(), opts.estimator_lr
        )
        return [main, estimator]

    def training_step(self, batch: Batch, batch_idx: int) -> torch.Tensor:
        # Reseed from (seed, epoch, step) so that a run resumed from a checkpoint draws the
        # same dropout masks and augmentations as an uninterrupted one, whatever the engine
        # did with the global generator in between.
        # (torch.manual_seed would also queue lazy seeds for every accelerator backend, with a
        # stack trace each: a millisecond per step; seed only the generators in use.)
        step_seed = hash((self.opts.seed, self.current_epoch, batch_idx)) % 2**63
        torch.default_generator.manual_seed(step_seed)
        if self.device.type == "cuda":
            torch.cuda.manual_seed(step_seed)
        optimizers = self.optimizers()
        optimizers = optimizers if isinstance(optimizers, list) else [optimizers]
        main_opt = optimizers[0]
        if self.has_estimators:
            self.toggle_optimizer(main_opt)
        loss = self.method.loss(batch)
        main_opt.zero_grad(set_to_none=True)
        self._backward(loss.total)
        checked = {**loss.parts, "loss": loss.total}
        if loss.objective is not None:
            checked["objective"] = loss.objective
        if self._check_grads:
            checked["grad_norm"] = torch.nn.utils.get_total_norm(
                [p.grad for p in self._main_params if p.grad is not None]
            )
        bad = self._first_nonfinite(checked)
        if bad is None:
            self._step(main_opt)
        if self.has_estimators:
            self.untoggle_optimizer(main_opt)
            if bad is None:
                bad = self._estimator_steps(batch, loss, optimizers[1])
        self.samples_trained += len(batch) * self.trainer.world_size
        if bad is not None:
            self._nonfinite_step(batch_idx, *bad)
            main_opt.zero_grad(set_to_none=True)  # no update (as AMP's scaler skips a step)
            return loss.total.detach()
        self._log("train", loss.watched, loss.parts, len(batch))
        return loss.total.detach()

    def _estimator_steps(self, batch: Batch, loss: Any, est_opt: Any) -> tuple[str, str] | None:
        """``method.estimator_steps`` updates of the estimator networks on the main step's
        recorded inputs; the first non-finite estimator loss ends them (no update) and is
        returned as ``("estimator", value)``."""
        self.toggle_optimizer(est_opt)
        bad = None
        for _ in range(self.method.estimator_steps):
            est_opt.zero_grad(set_to_none=True)
            est_loss = self.method.estimator_loss(batch, loss.state)
            if (bad := self._first_nonfinite({"estimator": est_loss})) is not None:
                break
            self._backward(est_loss)
            self._sync_estimator_gradients()
            self._step(est_opt)
        self.untoggle_optimizer(est_opt)
        loss.parts["estimator"] = est_loss.detach()
        return bad

    # --- non-finite values -------------------------------------------------------------------
    def _first_nonfinite(self, values: dict[str, torch.Tensor]) -> tuple[str, str] | None:
        """The first of ``values`` (0-d tensors) that is not finite in any process, as
        ``(name, "inf" | "-inf" | "nan")``; ``None`` when all are finite.

        One host-device synchronisation (one ``bool()``), as AMP's scaler makes per step:
        skipping or stopping must be decided before the update. Under data parallelism the
        values are summed over processes first, so that every process decides alike.
        """
        stacked = torch.stack([v.detach().float() for v in values.values()])
        if self.trainer.world_size > 1:
            torch.distributed.all_reduce(stacked)  # a non-finite term makes the sum one
        finite = torch.isfinite(stacked)
        if bool(finite.all()):
            return None
        index = int((~finite).nonzero()[0, 0])
        value = float(stacked[index])
        return list(values)[index], "nan" if value != value else ("inf" if value > 0 else "-inf")

    def _nonfinite_step(self, step: int, part: str, value: str) -> None:
        """Stop the run at this step (``on_nonfinite=stop``), or count it as skipped and stop
        only when every step of the epoch was."""
        what = "the gradient norm" if part == "grad_norm" else f"loss part {part!r}"
        lr = "train.estimator_lr" if part == "estimator" else "train.lr"
        epoch = self.current_epoch
        if self.opts.on_nonfinite == "stop":
            reason = f"{what} is {value}; lower {lr} or set train.on_nonfinite=skip"
            raise DivergedError(epoch, step, part, value, reason)
        self.skipped_steps += 1
        self._epoch_skipped += 1
        if self._epoch_skipped == step + 1 == self.trainer.num_training_batches:
            reason = (
                f"{what} is {value}, and all {step + 1} steps of the epoch were skipped "
                f"(train.on_nonfinite=skip); lower {lr}"
            )
            raise DivergedError(epoch, step, part, value, reason)

    def _check_valid(self, means: dict[str, torch.Tensor]) -> None:
        """Raise :class:`DivergedError` if a validation mean is not finite (the means are
        already averaged over processes: every process raises alike)."""
        if not means or (bad := self._first_nonfinite_local(means)) is None:
            return
        part, value = bad
        n = int(self.trainer.num_training_batches)
        skipped = f" ({self._epoch_skipped} of the epoch's {n} steps skipped)"
        reason = f"validation value {part!r} is {value}{skipped if self._epoch_skipped else ''}"
        reason += "; lower train.lr"
        step = max(0, n - 1)
        raise DivergedError(self.current_epoch, step, part, value, reason)

    @staticmethod
    def _first_nonfinite_local(values: dict[str, torch.Tensor]) -> tuple[str, str] | None:
        for name, v in values.items():
            x = float(v)
            if x != x or abs(x) == float("inf"):
                return name, "nan" if x != x else ("inf" if x > 0 else "-inf")
        return None

    def on_train_epoch_start(self) -> None:
        self._epoch_skipped = 0
        self.method.set_progress(self.current_epoch, int(self.trainer.max_epochs or 1))

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["skipped_steps"] = self.skipped_steps

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self.skipped_steps = int(checkpoint.get("skipped_steps", 0))

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
        # A gradient scaler's scaled gradients overflow by design; it skips those steps itself.
        self._check_grads = no_scaler
        self._main_params = list(self.method.main_parameters())
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
