"""Non-finite training (``train.on_nonfinite``): a non-finite loss part, gradient norm,
estimator loss or validation value stops the run at that step (DivergedError, exit 3),
leaving the last finite checkpoint and the best weights; ``skip`` skips such steps instead.
``evaluate`` and ``bench`` refuse a diverged run unless forced."""

from __future__ import annotations

import itertools
import json
import re

import pytest
import torch

import mmfactor as mf
from mmfactor.bench import read_records, run_bench
from mmfactor.bench.records import TRAINING, not_evaluated
from mmfactor.bench.suites import SUITES, BenchData, Suite
from mmfactor.cli import main
from mmfactor.errors import DivergedError, InputError
from mmfactor.io import load_torch
from mmfactor.runs import load_run

BATCH = 64


def steps_per_epoch(data) -> int:
    return len(data.indices("train")) // BATCH  # drop_last: full batches only


def build(data, name="supervised"):
    torch.manual_seed(0)
    return mf.methods.build(name, data.modalities, embed_dim=16)


def poison(model, steps, *, grads=False, valid_after=None):
    """Make ``model``'s training loss non-finite at the training steps ``steps`` (counted over
    the whole run from 0): its part ``task`` (and so the loss) becomes inf, or, with ``grads``,
    the loss stays finite and the gradients are nan. ``valid_after``: from that training step
    on, every validation loss is inf."""
    original, calls = model.loss, itertools.count()
    seen = {"train": 0}

    def loss(batch):
        out = original(batch)
        inf = torch.tensor(float("inf"))
        if not model.training:
            if valid_after is not None and seen["train"] > valid_after:
                out.total = out.total + inf
            return out
        seen["train"] = step = next(calls)
        if step in steps and grads:  # sqrt'(0) = inf, times 0: nan gradients, finite value
            p = next(model.parameters())
            out.total = out.total + (p.sum() * 0).sqrt() * 0
        elif step in steps:
            out.parts["task"] = out.parts["task"] + inf
            out.total = out.total + inf
        return out

    model.loss = loss


def finite(state) -> bool:
    return all(torch.isfinite(v).all() for v in state.values() if v.is_floating_point())


def fit(model, data, out=None, **kw):
    options = {"max_epochs": 3, "batch_size": BATCH, "progress": False, "checkpoint_interval": 0}
    return mf.fit(model, data, out=out, **{**options, **kw})


def test_a_nonfinite_loss_part_stops_the_run_at_its_step(toy, tmp_path):
    n = steps_per_epoch(toy)
    ref = build(toy)
    fit(ref, toy, tmp_path / "ref", max_epochs=1)  # healthy: what epoch 0 ends with
    reference = {k: v.clone() for k, v in ref.state_dict().items()}

    model = build(toy)
    poison(model, {n + 2})  # epoch 1, step 2
    with pytest.raises(DivergedError) as caught:
        fit(model, toy, tmp_path / "run")
    err = caught.value
    assert (err.epoch, err.step, err.part, err.value) == (1, 2, "task", "inf")
    assert str(err) == (
        "diverged at epoch 1 step 2: loss part 'task' is inf; lower train.lr or set "
        "train.on_nonfinite=skip"
    )
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["status"] == "diverged" and metrics["epochs"] == 1
    assert metrics["diverged"] == {"epoch": 1, "step": 2, "part": "task", "value": "inf"}
    # The checkpoint of epoch 0 (the last finite one) stays: none was written after the bad
    # step. model.pt holds the best weights, epoch 0's. Exact: the same computation as the
    # healthy one-epoch run up to there.
    ckpt = load_torch(tmp_path / "run" / "checkpoints" / "last.ckpt")
    assert ckpt["epoch"] == 0
    ckpt_state = {k.removeprefix("method."): v for k, v in ckpt["state_dict"].items()}
    saved = load_torch(tmp_path / "run" / "model.pt")
    for state in (ckpt_state, saved, err.run.model.state_dict()):
        assert finite(state)
        assert all(torch.equal(state[k], reference[k]) for k in reference)
    assert err.run.status == "diverged" and err.run.out == tmp_path / "run"
    # a healthy run says so
    healthy = json.loads((tmp_path / "ref" / "metrics.json").read_text())
    assert healthy["status"] == "ok" and healthy["skipped_steps"] == 0
    assert "diverged" not in healthy


def test_a_nonfinite_gradient_norm_stops_the_run(toy):
    model = build(toy)
    poison(model, {3}, grads=True)
    with pytest.raises(DivergedError, match="the gradient norm is nan") as caught:
        fit(model, toy, restore_best=False)
    assert (caught.value.epoch, caught.value.step, caught.value.part) == (0, 3, "grad_norm")
    assert finite(model.state_dict())  # the last finite weights: the nan step updated nothing


def test_a_nonfinite_estimator_loss_stops_the_run(toy):
    model = build(toy, "factorcl-sup")
    original, calls = model.estimator_loss, itertools.count()
    n = steps_per_epoch(toy)
    bad = (n + 1) * model.estimator_steps  # the first estimator step of epoch 1, step 1

    def estimator_loss(batch, state):
        out = original(batch, state)
        return out * float("nan") if next(calls) == bad else out

    model.estimator_loss = estimator_loss
    with pytest.raises(DivergedError, match="train.estimator_lr") as caught:
        fit(model, toy)
    assert (caught.value.epoch, caught.value.step, caught.value.part) == (1, 1, "estimator")
    assert caught.value.value == "nan"
    # the estimator networks were not toggled off for good by the interrupted step
    assert all(p.requires_grad for p in model.estimator_parameters())


def test_a_nonfinite_validation_value_stops_the_run(toy, tmp_path):
    n = steps_per_epoch(toy)
    model = build(toy)
    poison(model, set(), valid_after=n)  # every validation after epoch 1's first step
    with pytest.raises(DivergedError, match="validation value 'valid/loss' is inf") as caught:
        fit(model, toy, tmp_path)
    assert (caught.value.epoch, caught.value.step, caught.value.part) == (1, n - 1, "valid/loss")
    assert load_torch(tmp_path / "checkpoints" / "last.ckpt")["epoch"] == 0


def test_skip_runs_to_the_end_without_the_bad_steps(toy, tmp_path):
    n = steps_per_epoch(toy)
    model = build(toy)
    poison(model, {1, n + 2, 2 * n})
    run = fit(model, toy, tmp_path, on_nonfinite="skip")
    assert run.epochs == 3 and run.status == "ok" and run.skipped_steps == 3
    assert finite(model.state_dict())
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["status"] == "ok" and metrics["skipped_steps"] == 3
    # the epoch means leave the skipped steps out
    assert all(v == v and abs(v) < 1e30 for h in metrics["history"] for v in h.values())


def test_skip_still_stops_when_a_whole_epoch_is_skipped(toy, tmp_path):
    n = steps_per_epoch(toy)
    model = build(toy)
    poison(model, set(range(n, 10 * n)))  # every step from epoch 1 on
    with pytest.raises(DivergedError, match=f"all {n} steps of the epoch were skipped") as caught:
        fit(model, toy, tmp_path, on_nonfinite="skip")
    assert (caught.value.epoch, caught.value.step, caught.value.part) == (1, n - 1, "task")
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["status"] == "diverged" and metrics["skipped_steps"] == n


def test_on_nonfinite_is_checked():
    with pytest.raises(InputError, match="train: on_nonfinite must be one of stop, skip"):
        mf.train.TrainOptions(on_nonfinite="ignore")
    assert mf.train.TrainOptions().on_nonfinite == "stop"


FIT = [
    *("fit", "--method", "supervised", "--data", "synthetic", "--epochs", "2"),
    *("--set", "data.n=600", "--set", "train.batch_size=64", "--set", "train.lr=1000000.0"),
    *("--set", "train.progress=false"),
]


def test_cli_fit_exits_3_with_one_line_and_evaluate_refuses_unless_forced(tmp_path, capsys):
    out = tmp_path / "run"
    assert main([*FIT, "--out", str(out)]) == 3
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = [line for line in captured.err.splitlines() if "diverged" in line]
    assert len(lines) == 1
    assert re.fullmatch(
        r"mmfactor: error: fit: diverged at epoch 0 step \d+: loss part 'task' is (inf|nan); "
        r"lower train\.lr or set train\.on_nonfinite=skip",
        lines[0],
    )
    assert json.loads((out / "metrics.json").read_text())["status"] == "diverged"

    assert main(["evaluate", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(out) in err and "--force" in err
    with pytest.raises(InputError, match="allow_diverged: .* holds a diverged training"):
        load_run(out)
    assert main(["evaluate", str(out), "--force", "--targets", "mix@0.5"]) == 0
    assert "mix@0.5" in capsys.readouterr().out
    model, _, _ = load_run(out, allow_diverged=True)
    assert finite(model.state_dict())


def test_bench_records_a_diverged_training_and_refuses_it_unless_forced(
    tmp_path, capsys, monkeypatch
):
    tiny = Suite(
        "tiny",
        (
            BenchData(
                "synthetic",
                {"n": 600},
                target="mix@0.5",
                eval_targets=("mix@0.5",),
                train={"max_epochs": 1, "lr": 1e6},
            ),
        ),
        methods=("supervised",),
    )
    monkeypatch.setitem(SUITES, "tiny", tiny)
    out = tmp_path / "bench"
    assert main(["bench", "tiny", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("mmfactor: error: --force: 1 training(s) diverged")
    assert str(out / "runs" / "synthetic" / "supervised" / "seed0") in err[-1]
    records = read_records(out / "results.jsonl")
    marked = not_evaluated(records)
    assert [(r["method"], r["protocol"], r["status"]) for r in marked] == [
        ("supervised", TRAINING, "diverged")
    ]
    assert any(r["method"] == "raw" for r in records)  # the rest of the bench ran
    assert "supervised seed 0: diverged at epoch 0" in (out / "results.md").read_text()

    # forced: the diverged training is evaluated (its last finite weights), rows marked
    records = run_bench(tiny, out, allow_diverged=True, log=lambda msg: None)
    assert not not_evaluated(records)
    scored = [r for r in records if r["method"] == "supervised" and r["protocol"] != TRAINING]
    assert scored and all(r["status"] == "diverged" for r in scored)
    assert "| supervised (diverged) |" in (out / "results.md").read_text()
    assert main(["bench", "tiny", "--out", str(out)]) == 0  # nothing left unevaluated
