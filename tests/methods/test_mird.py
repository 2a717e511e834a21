"""MIRD (spec/methods.md section 4): objective, CLUB pairs, unlabeled rows, padding,
missing modalities, unaligned sequences."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import mmfactor as mf
from mmfactor.data.batching import make_loader
from mmfactor.errors import InputError
from mmfactor.estimators.upper import CLUB


def build(data, **options):
    options = {"embed_dim": 8, "fusion_dim": 8, "decoder_hidden": 8, **options}
    torch.manual_seed(0)
    return mf.methods.build("mird", data.modalities, task=data.target("y").task, **options)


def first_batch(data, size=64, **kwargs):
    return next(iter(make_loader(data, data.indices("train"), size, target="y", **kwargs)))


def unaligned(n=120):
    """Three sequence modalities of different lengths (as MMSA's unaligned files)."""
    rng = np.random.default_rng(0)
    z = rng.normal(size=(n, 3))
    arrays, lengths = {}, {}
    for m, (t, d) in {"text": (6, 5), "audio": (15, 3), "vision": (20, 4)}.items():
        w = rng.normal(size=(3, d))
        arrays[m] = (z @ w)[:, None, :] + 0.1 * rng.normal(size=(n, t, d))
        lengths[m] = rng.integers(2, t + 1, size=n)
        arrays[m][np.arange(t)[None] >= lengths[m][:, None]] = 0.0
    return mf.from_arrays(arrays, y=(z[:, 0] > 0).astype(int), lengths=lengths)


@pytest.mark.parametrize("kind", ["vector", "sequence"])
def test_log_balanced_objective_and_factors(kind, toy, toy_seq):
    data = toy_seq if kind == "sequence" else toy
    model = build(data)
    assert model.anchor == ("x2" if kind == "sequence" else "x1")
    batch = first_batch(data)
    loss = model.loss(batch)
    p = loss.parts
    assert set(p) == {"task", "rec_x1", "rec_x2", "club_x1_x2", "club_shared_x1", "club_shared_x2"}
    expected = (
        p["task"].log() + p["rec_x1"].log() + p["rec_x2"].log()
        + p["club_x1_x2"] + p["club_shared_x1"] + p["club_shared_x2"]
    )  # fmt: skip
    torch.testing.assert_close(loss.total, expected)
    torch.testing.assert_close(loss.watched, p["task"])  # model selection on the task
    loss.total.backward()
    for module in (model.fusion, model.shared_encoder, model.encoders, model.decoders):
        assert any(q.grad is not None and q.grad.abs().sum() > 0 for q in module.parameters())
    factors = model.encode(batch)
    assert factors.shared.shape == (64, 8) and factors.specific["x2"].shape == (64, 8)


def test_three_modalities_give_six_club_pairs_on_unaligned_sequences():
    data = unaligned()
    model = build(data)
    assert model.anchor == "text"
    batch = first_batch(data, 32)
    assert len({batch.x[m].shape[1] for m in batch.x}) == 3  # no common length
    loss = model.loss(batch)
    club = sorted(k for k in loss.parts if k.startswith("club_"))
    assert club == [
        "club_audio_vision", "club_shared_audio", "club_shared_text", "club_shared_vision",
        "club_text_audio", "club_text_vision",
    ]  # fmt: skip
    assert all(torch.isfinite(v) for v in loss.parts.values())
    codes = model.codes(batch)
    assert all(model._decode(m, codes, batch).shape == batch.x[m].shape for m in batch.x)


def test_weighted_balance_and_the_ablation_without_mi(toy):
    batch = first_batch(toy)
    loss = build(toy, balance="weighted", rec_weight=0.5, mi_weight=2.0).loss(batch)
    p = loss.parts
    mi = p["club_x1_x2"] + p["club_shared_x1"] + p["club_shared_x2"]
    torch.testing.assert_close(loss.total, p["task"] + 0.5 * (p["rec_x1"] + p["rec_x2"]) + 2 * mi)
    no_mi = build(toy, mi_weight=0.0).loss(batch)
    p = no_mi.parts
    torch.testing.assert_close(no_mi.total, p["task"].log() + p["rec_x1"].log() + p["rec_x2"].log())


def test_club_estimators_are_the_released_ones_and_fit_on_all_rows(toy):
    model = build(toy)
    assert len(model.estimator_modules()) == 3
    assert all(isinstance(e, CLUB) for e in model.estimator_modules())
    assert model.estimator_steps == 5
    est = model.club["x1_x2"]
    with torch.no_grad():
        _, logvar = est.q(torch.randn(256, 8) * 100)
    assert logvar.abs().max() <= 1.0  # log-variance in (-1, 1), as the CLUB code MIRD uses
    batch = first_batch(toy, 64, unlabeled=toy.indices("train")[::2])
    loss = model.loss(batch)
    assert all(v[0].shape[0] == 64 for v in loss.state.values())  # labeled or not
    assert torch.isfinite(model.estimator_loss(batch, loss.state))


def test_task_loss_uses_labeled_rows_only(toy):
    model = build(toy, dropout=0.0)
    batch = first_batch(toy, 64, unlabeled=toy.indices("train")[::2])
    assert batch.labeled is not None and 0 < int(batch.labeled.sum()) < 64
    flipped = batch.y.clone()
    flipped[~batch.labeled] = 1 - flipped[~batch.labeled]
    a = model.loss(batch).parts["task"]
    b = model.loss(type(batch)(**{**batch.__dict__, "y": flipped})).parts["task"]
    torch.testing.assert_close(a, b)
    c = model.loss(type(batch)(**{**batch.__dict__, "labeled": None})).parts["task"]
    assert not torch.allclose(a, c)


def test_padding_changes_nothing(toy_seq):
    model = build(toy_seq, dropout=0.0).eval()
    batch = first_batch(toy_seq)
    pad = ~batch.mask["x2"]
    assert pad.any()
    noisy = batch.replace_inputs({"x2": batch.x["x2"].masked_fill(pad[..., None], 50.0)})
    with torch.no_grad():
        a, b = model.loss(batch), model.loss(noisy)
    for k in ("task", "rec_x1", "rec_x2"):
        torch.testing.assert_close(a.parts[k], b.parts[k])


def test_missing_modalities(toy_seq):
    model = build(toy_seq).eval()
    for gone in ("x1", "x2"):  # x2 is the anchor
        batch = first_batch(toy_seq.with_missing([gone]))
        with torch.no_grad():
            factors, out = model.encode(batch), model.predict(batch)
        assert (factors.specific[gone] == 0).all()  # exact: absent rows are multiplied by 0
        assert torch.isfinite(factors.shared).all() and torch.isfinite(out).all()


def test_options_are_validated(toy):
    for options, message in (
        ({"balance": "sum"}, "balance"),
        ({"estimator": "infonce"}, "estimator"),
        ({"club_weight": -1.0}, "club_weight"),
        ({"anchor": "x9"}, "anchor 'x9'"),
        ({"estimator_steps": 0}, "estimator_steps"),
    ):
        with pytest.raises(InputError, match=message):
            build(toy, **options)
    arrays = {"shared": np.zeros((20, 3)), "b": np.zeros((20, 2))}
    data = mf.from_arrays(arrays, y=np.arange(20) % 2)
    with pytest.raises(InputError, match="may not be named 'shared'"):
        build(data)


def test_semi_supervised_fit_and_evaluate():
    data = mf.datasets.load("synthetic", n=400, dim=16, n_unlabeled=200)
    torch.manual_seed(0)
    model = mf.methods.build("mird", data.modalities, embed_dim=8, fusion_dim=8)
    run = mf.fit(model, data, max_epochs=2, batch_size=32, unlabeled_ratio=2, progress=False)
    n_batches = len(data.indices("train")) // 32
    assert model.train_stats["epochs"] == 2
    assert run.samples_per_second > 0 and math.isfinite(run.history[-1]["valid/loss"])
    assert math.isfinite(run.history[-1]["train/estimator"])
    assert n_batches * 96 * 2 == pytest.approx(run.samples_per_second * run.train_seconds)
    records = mf.evaluate(model, data, targets=["mix@0.5"])
    assert {"shared", "specific:x1", "all", "prediction"} <= {r["factors"] for r in records}
