"""Score gradients: equal to finite differences, zero at padding, drawn for every input kind."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

import mmfactor as mf
from mmfactor.data.batching import make_loader
from mmfactor.errors import InputError
from mmfactor.interpret import plot_score_gradients, score_gradients


def test_score_gradients_match_finite_differences(toy):
    torch.manual_seed(0)
    model = mf.methods.build("mucmm", toy.modalities, embed_dim=3, head_hidden=8)
    mf.fit(model, toy, max_epochs=2, progress=False)
    model.double().eval()
    batch = next(iter(make_loader(toy, toy.indices("test"), 4)))
    batch = replace(batch, x={m: v.double() for m, v in batch.x.items()})
    grads = score_gradients(model, batch)
    sample, feature, eps = 2, 5, 1e-6
    for name in ("score:common", "score:x1"):
        shifted = {m: v.clone() for m, v in batch.x.items()}
        shifted["x1"][sample, feature] += eps
        with torch.no_grad():
            up = model.scores(replace(batch, x=shifted))[name][sample]
            base = model.scores(batch)[name][sample]
        numeric = float((up - base) / eps)
        assert grads[name]["x1"][sample, feature] == pytest.approx(numeric, rel=1e-4, abs=1e-6)
    assert model.training is False


def test_sequence_gradients_vanish_at_padding_and_plots_are_written(tmp_path):
    data = mf.datasets.load("synthetic", n=200, kind="sequence")
    model = mf.methods.build("mucmm", data.modalities, embed_dim=2)
    batch = next(iter(make_loader(data, data.indices("test"), 6)))
    grads = score_gradients(model, batch, scores=["score:common"])
    assert list(grads) == ["score:common"]
    for m, g in grads["score:common"].items():
        if m in batch.mask:
            assert g.shape == tuple(batch.x[m].shape)
            assert not g[~batch.mask[m].numpy()].any()  # exact: padding times 0
            assert np.abs(g[batch.mask[m].numpy()]).sum() > 0
    plot_score_gradients(grads, tmp_path / "seq.png")
    assert (tmp_path / "seq.png").stat().st_size > 5000
    with pytest.raises(InputError, match="no score"):
        score_gradients(model, batch, scores=["score:nope"])
    with pytest.raises(InputError, match="no per-sample scores"):
        score_gradients(mf.methods.build("clip", data.modalities, embed_dim=4), batch)


def test_image_shaped_vectors_are_drawn_as_heat_maps(tmp_path):
    data = mf.datasets.load("uci-mfeat", views=["fou", "pix"])
    model = mf.methods.build("mucmm", data.modalities, embed_dim=2)
    batch = next(iter(make_loader(data, data.indices("test"), 3)))
    grads = score_gradients(model, batch)
    fig = plot_score_gradients(
        grads,
        tmp_path / "pix.png",
        image_shape={"pix": (16, 15)},
        inputs={"pix": batch.x["pix"].numpy()},
        titles=["a", "b", "c"],
    )
    images = [ax for ax in fig.axes if ax.images]
    # pix: 3 samples x (input + 3 scores) heat maps; fou: one bar panel per score.
    assert len(images) == 3 * 4
    assert sum(1 for ax in fig.axes if ax.patches) == 3
    assert (tmp_path / "pix.png").exists()
