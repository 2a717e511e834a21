import pytest
import torch

import mmfactor as mf
from mmfactor.data.batching import make_loader
from mmfactor.errors import InputError

BASELINES = ["supervised", "clip", "cross-self", "supcon"]


def first_batch(data, size=64):
    return next(iter(make_loader(data, data.indices("train"), size, target="y")))


def test_registry_lists_baselines():
    assert set(BASELINES) <= set(mf.methods.available())


@pytest.mark.parametrize("name", BASELINES)
@pytest.mark.parametrize("sequence", [False, True])
def test_loss_and_factors(name, sequence, toy, toy_seq):
    data = toy_seq if sequence else toy
    model = mf.methods.build(name, data.modalities, embed_dim=16, task=data.target("y").task)
    batch = first_batch(data)
    loss = model.loss(batch)
    assert loss.total.ndim == 0 and torch.isfinite(loss.total)
    assert all(v.ndim == 0 for v in loss.parts.values())
    loss.total.backward()
    grads = [p.grad for p in model.encoders.parameters()]
    assert any(g is not None and g.abs().sum() > 0 for g in grads)
    factors = model.encode(batch)
    blocks = factors.blocks()
    assert all(v.shape[0] == 64 for v in blocks.values())
    assert "all" in blocks


@pytest.mark.parametrize("name", BASELINES)
def test_missing_modality_gives_defined_factors(name, toy):
    model = mf.methods.build(name, toy.modalities, embed_dim=8, task=toy.target("y").task)
    model.eval()
    full = model.encode(first_batch(toy)).blocks()["all"]
    blocks = model.encode(first_batch(toy.with_missing(["x2"]))).blocks()
    assert torch.isfinite(blocks["all"]).all()
    assert not torch.allclose(full, blocks["all"])
    if "specific:x2" in blocks:  # supervised; clip, cross-self and supcon have shared only
        assert (blocks["specific:x2"] == 0).all()  # exact: absent rows are multiplied by 0


def test_build_rejects_unknown_names_and_options(toy):
    with pytest.raises(InputError, match="unknown method 'nope'"):
        mf.methods.build("nope", toy.modalities)
    with pytest.raises(InputError, match="has no option 'temprature'"):
        mf.methods.build("clip", toy.modalities, temprature=0.1)
    with pytest.raises(InputError, match="at least two modalities"):
        mf.methods.build("clip", {"x1": toy.modalities["x1"]})


def test_supcon_needs_classes(toy):
    with pytest.raises(InputError, match="classification"):
        mf.methods.build("supcon", toy.modalities, task=mf.datasets.TaskSpec("regression"))


def test_default_configs_exist_for_every_baseline():
    for name in BASELINES:
        cfg = mf.methods.default_config(name, "synthetic")
        assert cfg["method"]["embed_dim"] > 0 and cfg["train"]["max_epochs"] > 0
