"""MISA (spec/methods.md section 6): objective terms, factors, missing modalities."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import mmfactor as mf
from mmfactor.data.batching import make_loader
from mmfactor.errors import InputError


def build(data, **options):
    options = {"embed_dim": 16, "hidden": 8, **options}
    return mf.methods.build("misa", data.modalities, task=data.target("y").task, **options)


def first_batch(data, size=64):
    return next(iter(make_loader(data, data.indices("train"), size, target="y")))


@pytest.mark.parametrize("sequence", [False, True])
def test_loss_parts_and_factors(sequence, toy, toy_seq):
    data = toy_seq if sequence else toy
    model = build(data)
    batch = first_batch(data)
    loss = model.loss(batch)
    assert set(loss.parts) == {"task", "sim", "diff", "rec_x1", "rec_x2"}
    expected = (
        loss.parts["task"]
        + 0.3 * loss.parts["sim"]
        + 0.1 * loss.parts["diff"]
        + (loss.parts["rec_x1"] + loss.parts["rec_x2"]) / 2
    )
    torch.testing.assert_close(loss.total, expected)
    loss.total.backward()
    assert model.shared[0].weight.grad.abs().sum() > 0  # one shared projection for all
    factors = model.encode(batch)
    assert factors.shared.shape == (64, 16) and factors.specific["x1"].shape == (64, 8)


def test_shared_projection_is_weight_tied(toy):
    model = build(toy).eval()
    batch = first_batch(toy)
    with torch.no_grad():
        before = model.encode(batch)
        model.shared[0].bias += 1.0  # one parameter moves every modality's shared vector
        after = model.encode(batch)
    assert not torch.allclose(before.shared[:, :8], after.shared[:, :8])
    assert not torch.allclose(before.shared[:, 8:], after.shared[:, 8:])
    torch.testing.assert_close(before.specific["x1"], after.specific["x1"])


def test_missing_modality_is_zeroed(toy):
    model = build(toy).eval()
    batch = first_batch(toy.with_missing(["x2"]))
    with torch.no_grad():
        factors = model.encode(batch)
        out = model.predict(batch)
    # exact: an absent modality's rows are multiplied by 0
    assert (factors.specific["x2"] == 0).all() and (factors.shared[:, 8:] == 0).all()
    assert torch.isfinite(out).all()


def test_weights_change_the_objective_and_are_validated(toy):
    batch = first_batch(toy)
    torch.manual_seed(0)
    no_aux = build(toy, alpha=0.0, beta=0.0, gamma=0.0).loss(batch)
    torch.testing.assert_close(no_aux.total, no_aux.parts["task"])
    with pytest.raises(InputError, match="alpha"):
        build(toy, alpha=-1.0)
    with pytest.raises(InputError, match="divisible"):
        build(toy, hidden=7)


def test_fit_and_evaluate(toy):
    model = build(toy)
    mf.fit(model, toy, max_epochs=3, batch_size=64, progress=False)
    records = mf.evaluate(model, toy, targets=["y"])
    assert {"shared", "specific:x1", "specific:x2", "all", "prediction"} <= {
        r["factors"] for r in records
    }
    assert all(np.isfinite(r["value"]) for r in records)
