"""MUCMM (spec/methods.md section 5): the linear-setting check against true loadings, frozen
pre-trained encoders, scores, missing modalities, argument checks."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import mmfactor as mf
from mmfactor.data.batching import make_loader
from mmfactor.errors import InputError
from mmfactor.interpret import score_gradients


def principal_cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cosines of the principal angles between the column spans of a and b."""
    qa, _ = np.linalg.qr(a)
    qb, _ = np.linalg.qr(b)
    return np.linalg.svd(qa.T @ qb, compute_uv=False)


@pytest.fixture(scope="module")
def linear_fit():
    data = mf.datasets.load("linear", n=3000, seed=0)
    torch.manual_seed(0)
    model = mf.methods.build(
        "mucmm", data.modalities, embed_dim=2, individual_dim=2, encoder={"vector": "identity"}
    )
    mf.fit(model, data, max_epochs=60, batch_size=256, lr=1e-2, patience=10, progress=False)
    return data, model


def test_linear_setting_score_gradients_span_the_true_loadings(linear_fit):
    data, model = linear_fit
    loadings = {k: np.asarray(v) for k, v in data.info["loadings"].items()}
    batch = next(iter(make_loader(data, data.indices("test"), 450)))
    grads = score_gradients(model, batch)
    for m in data.modality_names:
        for score, truth, other in (
            ("score:common", f"common:{m}", f"individual:{m}"),
            (f"score:{m}", f"individual:{m}", f"common:{m}"),
        ):
            # The gradients of all samples span a 2-d subspace: that of the true loadings.
            u, s, _ = np.linalg.svd(grads[score][m].T, full_matrices=False)
            assert s[2] < 1e-4 * s[0]
            assert principal_cosines(u[:, :2], loadings[truth]).min() > 0.97
            assert principal_cosines(u[:, :2], loadings[other]).max() < 0.15
        other_modality = next(n for n in data.modality_names if n != m)
        # exact: that score does not depend on m: its gradient is a zero fill, not computed
        assert not grads[f"score:{other_modality}"][m].any()


def test_linear_setting_codes_and_scores(linear_fit):
    data, model = linear_fit
    factors = mf.encode(model, data, split="test")
    c1, c2 = factors.shared[:, :2], factors.shared[:, 2:]
    corr = np.diag(np.corrcoef(c1.T, c2.T)[:2, 2:])
    assert corr.min() > 0.85  # truth: 1 / (1 + 0.3^2) = 0.917
    u1 = factors.specific["x1"]
    assert np.abs(np.corrcoef(u1.T, factors.shared.T)[:2, 2:]).max() < 0.15
    # Scores as defined: s_c = <c~_1, c~_2>, s_u = 0.5 |u~|^2.
    np.testing.assert_allclose(factors.extras["score:common"], (c1 * c2).sum(1), rtol=1e-5)
    np.testing.assert_allclose(factors.extras["score:x1"], 0.5 * (u1**2).sum(1), rtol=1e-5)
    # The individual latent is readable from u_1, not from the common codes.
    probe = mf.evaluate(model, data, targets=["individual:x1"], factors=["shared", "specific:x1"])
    acc = {r["factors"]: r["value"] for r in probe if r["metric"] == "accuracy"}
    assert acc["specific:x1"] > 0.9 and acc["shared"] < 0.65


class Frozen(nn.Module):
    """A stand-in pre-trained network with dropout and batch norm (modes matter)."""

    def __init__(self, d_in: int) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(d_in, 16), nn.BatchNorm1d(16), nn.Dropout(0.5))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def test_frozen_encoders_do_not_change_and_stay_in_eval_mode(toy):
    torch.manual_seed(0)
    pre = {"x1": Frozen(12), "x2": Frozen(10)}
    before = {m: {k: v.clone() for k, v in e.state_dict().items()} for m, e in pre.items()}
    model = mf.methods.build("mucmm", toy.modalities, embed_dim=2, encoders=pre)
    model.train()
    assert not pre["x1"].training
    heads = [p for n, p in model.named_parameters() if p.requires_grad]
    assert heads and all(not p.requires_grad for p in pre["x1"].parameters())
    mf.fit(model, toy, max_epochs=3, progress=False)
    for m, e in pre.items():
        for k, v in e.state_dict().items():
            torch.testing.assert_close(v, before[m][k], msg=f"{m}.{k} changed")
    # Unfrozen, the same module trains.
    trainable = mf.methods.build(
        "mucmm", toy.modalities, embed_dim=2, encoders={"x1": Frozen(12)}, freeze_encoders=False
    )
    assert trainable.encoders["x1"].module.net[0].weight.requires_grad


def test_missing_modality_zeroes_codes_and_leaves_the_common_score(toy):
    model = mf.methods.build("mucmm", toy.modalities, embed_dim=2)
    model.eval()
    batch = next(iter(make_loader(toy, toy.indices("test"), 16)))
    present = dict(batch.present)
    present["x2"] = torch.zeros_like(present["x2"])
    from dataclasses import replace

    factors = model.encode(replace(batch, present=present))
    # Exact: the absent modality's codes are multiplied by 0, and the scores are products of
    # those zeros.
    assert not factors.specific["x2"].any() and not factors.shared[:, 2:].any()
    assert not factors.extras["score:common"].any() and not factors.extras["score:x2"].any()
    assert factors.extras["score:x1"].abs().sum() > 0


def test_dcca_common_loss_and_argument_checks(toy):
    model = mf.methods.build("mucmm", toy.modalities, embed_dim=2, common_loss="dcca")
    batch = next(iter(make_loader(toy, toy.indices("train"), 64)))
    loss = model.loss(batch)
    assert set(loss.parts) == {"maximise", "minimise", "decorrelate", "rec_x1", "rec_x2"}
    assert -1.0 <= float(loss.parts["maximise"]) <= 0.0
    with pytest.raises(InputError, match="common_loss"):
        mf.methods.build("mucmm", toy.modalities, common_loss="cosine")
    with pytest.raises(InputError, match="unknown modalities"):
        mf.methods.build("mucmm", toy.modalities, encoders={"x9": nn.Linear(3, 3)})
    with pytest.raises(InputError, match="must return"):
        mf.methods.build("mucmm", toy.modalities, encoders={"x1": nn.Flatten(0)})
