"""Checkpoints that survive damage: the previous checkpoint is kept beside the last, a last
one that cannot be read gives way to it (with a warning, to the same weights), a run with no
readable checkpoint stops with one line and exit code 2, and `--restart` starts over."""

from __future__ import annotations

import shutil
import warnings

import pytest
import torch
from tests.commands import run_cli
from tests.conftest import make_toy

import mmfactor as mf
from mmfactor.errors import InputError
from mmfactor.io import load_torch
from mmfactor.train.checkpoints import checkpoint_problem, resume_checkpoint


def weights(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def fit_toy(toy, out, seed=0, epochs=3):
    torch.manual_seed(seed)
    model = mf.methods.build("cross-self", toy.modalities, embed_dim=8)
    run = mf.fit(
        model,
        toy,
        max_epochs=epochs,
        batch_size=64,
        out=out,
        progress=False,
        patience=0,
        restore_best=False,
        checkpoint_interval=0,  # a checkpoint after every epoch
    )
    return run, weights(model)


def truncate(path, keep=0.5):
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


def flip_bit(path, at=0.5):
    data = bytearray(path.read_bytes())
    data[int(len(data) * at)] ^= 0x10
    path.write_bytes(bytes(data))


@pytest.fixture(scope="module")
def trained_once(tmp_path_factory):
    """A finished 3-epoch run with a checkpoint per epoch, and its final weights."""
    out = tmp_path_factory.mktemp("trained") / "run"
    _, final = fit_toy(make_toy(), out)
    return out, final


@pytest.fixture
def trained(trained_once, tmp_path):
    """A copy of ``trained_once`` to damage."""
    out, final = trained_once
    shutil.copytree(out, tmp_path / "run")
    return tmp_path / "run", final


def test_previous_checkpoint_is_the_epoch_before_the_last(trained):
    out, _ = trained
    ckpts = out / "checkpoints"
    assert sorted(p.name for p in ckpts.iterdir()) == ["last.ckpt", "previous.ckpt"]
    assert load_torch(ckpts / "last.ckpt")["epoch"] == 2
    assert load_torch(ckpts / "previous.ckpt")["epoch"] == 1
    assert checkpoint_problem(ckpts / "last.ckpt") is None
    assert resume_checkpoint(ckpts / "last.ckpt") == ckpts / "last.ckpt"


@pytest.mark.parametrize(
    "damage, problem",
    [
        (truncate, "truncated, or not a checkpoint"),
        (lambda p: truncate(p, keep=0.999), "truncated, or not a checkpoint"),
        (flip_bit, "damaged, checksum mismatch"),  # torch.load alone would not notice
        (lambda p: flip_bit(p, at=0.02), "damaged, checksum mismatch"),
        (lambda p: p.write_bytes(b"not a checkpoint at all"), "truncated, or not a checkpoint"),
        (lambda p: torch.save({"w": torch.ones(2)}, p), "not a training checkpoint, no state_dict"),
    ],
)
def test_damage_is_found(trained, damage, problem):
    out, _ = trained
    last = out / "checkpoints" / "last.ckpt"
    damage(last)
    assert checkpoint_problem(last).startswith(problem)


@pytest.mark.parametrize("damage", [truncate, flip_bit])
def test_unreadable_last_falls_back_to_previous_and_ends_with_the_same_weights(
    toy, trained, damage
):
    out, final = trained
    damage(out / "checkpoints" / "last.ckpt")
    with pytest.warns(UserWarning, match=r"last\.ckpt: .*; resuming from previous\.ckpt"):
        run, resumed = fit_toy(toy, out, seed=123)  # other initial weights: all from the ckpt
    assert run.epochs == 3
    # The restart trained the last epoch (2) again, from the previous checkpoint (epoch 1).
    redone = (out / "logs" / "attempt1" / "metrics.csv").read_text().splitlines()[1:]
    assert {int(row.split(",")[0]) for row in redone} == {2}
    # exact: resuming from an end-of-epoch state redoes the same batches (engine reseeding)
    assert all(torch.equal(resumed[k], final[k]) for k in final)
    ckpts = sorted(p.name for p in (out / "checkpoints").iterdir())
    assert ckpts == ["last.ckpt", "last.ckpt.unreadable", "previous.ckpt"]
    assert checkpoint_problem(out / "checkpoints" / "previous.ckpt") is None


def test_missing_last_with_a_previous_resumes_from_it(toy, trained):
    """A kill between the two renames of a file system without hard links."""
    out, final = trained
    (out / "checkpoints" / "last.ckpt").unlink()
    with pytest.warns(UserWarning, match=r"last\.ckpt: missing; resuming from previous\.ckpt"):
        _, resumed = fit_toy(toy, out, seed=123)
    assert all(torch.equal(resumed[k], final[k]) for k in final)


def test_no_readable_checkpoint_is_an_input_error_and_restart_starts_over(toy, trained):
    out, final = trained
    for name in ("last.ckpt", "previous.ckpt"):
        truncate(out / "checkpoints" / name)
    with pytest.raises(InputError) as err:
        fit_toy(toy, out)
    message = str(err.value)
    assert message.startswith(f"{out / 'checkpoints' / 'last.ckpt'}: no readable checkpoint")
    assert "previous.ckpt: truncated" in message and "\n" not in message
    assert not (out / "logs" / "attempt1").exists()  # failed before writing anything
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.manual_seed(0)
        model = mf.methods.build("cross-self", toy.modalities, embed_dim=8)
        run = mf.fit(
            model,
            toy,
            max_epochs=3,
            batch_size=64,
            out=out,
            progress=False,
            patience=0,
            restore_best=False,
            checkpoint_interval=0,
            restart=True,
        )
    assert not [w for w in caught if "ckpt" in str(w.message)]  # a clean start
    assert run.epochs == 3 and [p.name for p in (out / "logs").iterdir()] == ["attempt0"]
    assert all(torch.equal(model.state_dict()[k], final[k]) for k in final)  # the same run


FIT = [
    *("fit", "--method", "cross-self", "--data", "synthetic", "--set", "data.n=300"),
    *("--set", "method.embed_dim=8", "--set", "train.checkpoint_interval=0"),
    *("--set", "train.patience=0", "--epochs", "2"),
]


def test_cli_without_readable_checkpoint_exits_2_in_one_line_then_restarts(tmp_path):
    out = tmp_path / "run"
    assert run_cli(*FIT, "--out", str(out)).returncode == 0
    for name in ("last.ckpt", "previous.ckpt"):
        truncate(out / "checkpoints" / name)
    proc = run_cli(*FIT, "--out", str(out))
    assert proc.returncode == 2, proc.stderr[-2000:]
    last = out / "checkpoints" / "last.ckpt"
    assert proc.stderr.startswith(f"mmfactor: error: {last}: no readable checkpoint")
    assert "--restart" in proc.stderr and len(proc.stderr.splitlines()) == 1
    assert (out / "checkpoints" / "previous.ckpt").exists()  # nothing discarded unasked

    proc = run_cli(*FIT, "--out", str(out), "--restart")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "warning" not in proc.stderr
    assert checkpoint_problem(last) is None
    assert [p.name for p in (out / "logs").iterdir()] == ["attempt0"]
