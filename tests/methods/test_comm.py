"""CoMM: its loss terms, its masked fusion and NT-Xent."""

from __future__ import annotations

import dataclasses

import pytest
import torch
import torch.nn.functional as F

import mmfactor as mf
from mmfactor.data.batching import Batch, make_loader
from mmfactor.data.dataset import ModalitySpec
from mmfactor.encoders.fusion import TokenFusion
from mmfactor.errors import InputError
from mmfactor.losses import NTXentLoss

SMALL = {"embed_dim": 16, "width": 16, "heads": 2, "proj_hidden": 32, "proj_dim": 8}


def first_batch(data, size=64):
    return next(iter(make_loader(data, data.indices("train"), size, target="y")))


@pytest.mark.parametrize("sequence", [False, True])
def test_loss_has_one_term_per_fusion_and_trains_the_token_layers_only(sequence, toy, toy_seq):
    data = toy_seq if sequence else toy
    model = mf.methods.build("comm", data.modalities, **SMALL)
    loss = model.loss(first_batch(data))
    assert sorted(loss.parts) == ["ntxent_all", "ntxent_x1", "ntxent_x2"]
    # The paper's mean over the M + 1 terms.
    torch.testing.assert_close(loss.total, torch.stack(list(loss.parts.values())).mean())
    loss.total.backward()
    for m, encoder in model.encoders.items():
        frozen = {id(p) for layer in encoder.output_layers() for p in layer.parameters()}
        # An MLP's output is its one token; a GRU's output layer reads its pooled steps.
        assert bool(frozen) == (data.modalities[m].kind == "sequence")
        for p in encoder.parameters():
            assert (p.grad is None) == (id(p) in frozen)
    factors = model.encode(first_batch(data))
    assert factors.shared.shape == (64, 16)
    assert {m: v.shape for m, v in factors.specific.items()} == {"x1": (64, 16), "x2": (64, 16)}


def test_a_single_modality_fusion_sees_that_modality_alone(toy_seq):
    """specific:x2 (a sequence) is blind to x1 (masked out of the attention), the fused
    shared code is not, and x2's padded steps change nothing."""
    model = mf.methods.build("comm", toy_seq.modalities, **SMALL).eval()
    batch = first_batch(toy_seq)
    before = model.encode(batch)
    x1 = torch.randn_like(batch.x["x1"])
    x2 = batch.x["x2"].clone()
    x2[~batch.mask["x2"]] = 1e3  # garbage in the padding
    after = model.encode(dataclasses.replace(batch, x={"x1": x1, "x2": x2}))
    torch.testing.assert_close(after.specific["x2"], before.specific["x2"])
    assert not torch.allclose(after.specific["x1"], before.specific["x1"])
    assert not torch.allclose(after.shared, before.shared)


def test_an_absent_modality_is_left_out_of_the_fusion(toy):
    """A row without x2: its all-modality embedding is its x1-only one."""
    model = mf.methods.build("comm", toy.modalities, **SMALL).eval()
    factors = model.encode(first_batch(toy.with_missing(["x2"])))
    assert torch.isfinite(factors.blocks()["all"]).all()
    torch.testing.assert_close(factors.shared, factors.specific["x1"])


def test_image_tokens_get_grid_positions():
    specs = {m: ModalitySpec(m, "image", (3, 16, 16)) for m in ("x1", "x2")}
    model = mf.methods.build("comm", specs, encoder={"image": "cnn"}, **SMALL)
    grid = model.encoders["x1"].token_grid()
    assert grid == (4, 4)  # two 2x poolings of the default cnn
    assert model.fusion.positions_x1.shape == (16, 16)
    batch = Batch(
        x={m: torch.rand(6, 3, 16, 16) for m in specs},
        mask={},
        present={m: torch.ones(6, dtype=torch.bool) for m in specs},
    )
    assert torch.isfinite(model.loss(batch).total)


def test_token_fusion_validates_its_options():
    with pytest.raises(InputError, match="heads"):
        TokenFusion({"a": 4}, width=10, heads=3)
    with pytest.raises(InputError, match="width"):
        TokenFusion({"a": 4}, width=0)


def test_ntxent_is_simclrs_loss():
    """Against the 2B x 2B form written out: each row's positive is its pair, the other
    2B - 2 rows are negatives."""
    torch.manual_seed(0)
    a, b = torch.randn(5, 3), torch.randn(5, 3)
    z = F.normalize(torch.cat([a, b]), dim=1)
    sim = z @ z.T / 0.1
    sim.fill_diagonal_(float("-inf"))
    pair = torch.cat([torch.arange(5, 10), torch.arange(5)])
    expected = F.cross_entropy(sim, pair)
    torch.testing.assert_close(NTXentLoss(0.1)(a, b), expected)
