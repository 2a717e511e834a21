from pathlib import Path

import pytest
import torch
from lightning.pytorch.callbacks import Callback
from torch import nn

import mmfactor as mf
from mmfactor.io import load_torch
from mmfactor.methods.base import Loss, Method


def weights(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def same(a, b):
    """Bit-for-bit equal weights: for runs doing the same ops on the same batch shapes in this
    process (determinism and resume checks), where exact equality is sound."""
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def build(data, seed=0, name="clip"):
    torch.manual_seed(seed)
    return mf.methods.build(name, data.modalities, embed_dim=16)


def test_fit_is_deterministic(toy):
    runs = []
    for _ in range(2):
        model = build(toy)
        mf.fit(model, toy, max_epochs=2, batch_size=64, seed=3, progress=False)
        runs.append(weights(model))
    assert same(*runs)  # exact: same seed, same computation, same shapes (determinism)


def test_fit_learns_and_writes_run_dir(toy, tmp_path):
    model = mf.methods.build("supervised", toy.modalities, embed_dim=16)
    run = mf.fit(model, toy, max_epochs=8, batch_size=64, out=tmp_path, progress=False, patience=0)
    assert (tmp_path / "model.pt").is_file() and (tmp_path / "metrics.json").is_file()
    assert (tmp_path / "checkpoints" / "last.ckpt").is_file()
    assert (tmp_path / "logs" / "attempt0" / "metrics.csv").is_file()
    assert run.epochs == 8 and run.samples_per_second > 0
    assert run.history[-1]["valid/loss"] < run.history[0]["valid/loss"]
    # checkpoints hold tensors and plain containers only
    load_torch(tmp_path / "checkpoints" / "last.ckpt")
    head = [r for r in mf.evaluate(model, toy, targets=["y"]) if r["protocol"] == "head"]
    assert head[0]["value"] > 0.8  # y is a linear function of the shared latent


class Crash(Callback):
    """Simulates a killed process at the end of an epoch (after its checkpoints)."""

    def __init__(self, epoch):
        self.epoch = epoch

    def on_train_epoch_end(self, trainer, pl_module):
        if trainer.current_epoch == self.epoch:
            raise RuntimeError("simulated crash")


def test_resume_after_interruption_ends_with_same_result(toy, tmp_path: Path):
    ref = build(toy, name="cross-self")
    mf.fit(
        ref,
        toy,
        max_epochs=4,
        batch_size=64,
        out=tmp_path / "ref",
        progress=False,
        patience=0,
        restore_best=False,
    )

    model = build(toy, name="cross-self")
    with pytest.raises(RuntimeError, match="simulated crash"):
        mf.fit(
            model,
            toy,
            max_epochs=4,
            batch_size=64,
            out=tmp_path / "run",
            progress=False,
            patience=0,
            restore_best=False,
            callbacks=[Crash(1)],
            checkpoint_interval=0,  # a checkpoint after every epoch
        )
    resumed = build(toy, seed=123, name="cross-self")  # fresh weights: all state from the ckpt
    run = mf.fit(
        resumed,
        toy,
        max_epochs=4,
        batch_size=64,
        out=tmp_path / "run",
        progress=False,
        patience=0,
        restore_best=False,
    )
    assert run.epochs == 4
    # history kept across the restart (epoch 1's log row died with the crash, after its
    # checkpoint had been written)
    assert [h["epoch"] for h in run.history] == [0, 2, 3]
    # the crash came after epoch 1's checkpoint: the restart trained epochs 2-3 only
    restarted = (tmp_path / "run" / "logs" / "attempt1" / "metrics.csv").read_text()
    assert sorted({int(row.split(",")[0]) for row in restarted.splitlines()[1:]}) == [2, 3]
    # exact: the resumed epochs 2-3 redo the reference's batches (same shapes, same reseeding)
    assert same(weights(ref), weights(resumed))


def test_early_stopping_stops(toy):
    model = build(toy)
    run = mf.fit(model, toy, max_epochs=200, batch_size=64, progress=False, patience=1, lr=0.05)
    assert run.epochs < 200
    valid = [h["valid/loss"] for h in run.history]
    best = valid.index(min(valid))
    assert run.epochs == best + 1 + 1  # stopped after `patience` (1) epoch without a new best
    assert run.best_valid_loss == pytest.approx(valid[best])


class ToyAdversary(Method):
    """An encoder pair and an estimator network q predicting e2 from e1. The main step makes
    e2 hard to predict; q is fitted in the estimator step. Records what each step saw."""

    estimator_steps = 3

    def __init__(self, modalities, **kwargs):
        super().__init__(modalities, embed_dim=4, **kwargs)
        self.q = nn.Linear(4, 4)
        self.seen = {
            "q_changed_in_main": [],
            "enc_changed_in_estimator": [],
            "calls": 0,
            "q_grad_in_main": [],
        }

    def estimator_modules(self):
        return [self.q]

    def encode(self, batch):
        return mf.Factors(shared=None, specific=self.embed(batch))

    # Exact comparisons of weights before / after a step: a frozen parameter is not written at
    # all, and one that is stepped changes by far more than rounding.
    def loss(self, batch):
        if hasattr(self, "_enc_after_est"):
            self.seen["enc_changed_in_estimator"].append(
                not torch.equal(self._enc_after_est, next(self.encoders["x1"].parameters()))
            )
        self._q_before = self.q.weight.detach().clone()
        e = self.embed(batch)
        loss = -nn.functional.mse_loss(self.q(e["x1"]), e["x2"]) + e["x2"].pow(2).mean()
        return Loss(loss, {"adv": loss}, {"e1": e["x1"].detach(), "e2": e["x2"].detach()})

    def estimator_loss(self, batch, state):
        if self.seen["calls"] % self.estimator_steps == 0:
            self.seen["q_changed_in_main"].append(not torch.equal(self._q_before, self.q.weight))
            self.seen["q_grad_in_main"].append(self.q.weight.grad is not None)
        self.seen["calls"] += 1
        self._enc_after_est = next(self.encoders["x1"].parameters()).detach().clone()
        return nn.functional.mse_loss(self.q(state["e1"]), state["e2"])


def test_estimator_step_alternates_with_main_step(toy):
    model = ToyAdversary(toy.modalities, encoder_options={"hidden": []})
    q0 = model.q.weight.detach().clone()
    mf.fit(model, toy, max_epochs=1, batch_size=64, progress=False)
    n_batches = len(toy.indices("train")) // 64
    assert model.seen["calls"] == 3 * n_batches
    assert not any(model.seen["q_changed_in_main"])  # estimator frozen in the main step
    assert not any(model.seen["q_grad_in_main"])
    assert not any(model.seen["enc_changed_in_estimator"])  # encoders untouched by it
    assert not torch.equal(q0, model.q.weight)  # and the estimator did learn
