"""InfMasking: its masked fusions, its closed-form term and the ramp the engine drives."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from tests.methods.test_comm import SMALL, first_batch

import mmfactor as mf
from mmfactor.errors import InputError


@pytest.mark.parametrize("sequence", [False, True])
def test_loss_has_comms_terms_and_one_masking_term_per_augmentation(sequence, toy, toy_seq):
    data = toy_seq if sequence else toy
    model = mf.methods.build("infmasking", data.modalities, **SMALL)
    loss = model.loss(first_batch(data, 32))
    assert sorted(loss.parts) == [
        "infmask_1", "infmask_2", "ntxent_all", "ntxent_x1", "ntxent_x2",
    ]  # fmt: skip
    torch.testing.assert_close(loss.total, torch.stack(list(loss.parts.values())).mean())
    loss.total.backward()
    assert model.fusion.mask_token.grad is not None
    assert model.encode(first_batch(data, 32)).shared.shape == (32, 16)


def test_masked_fusions_replace_the_share_of_tokens_asked_for(toy_seq):
    model = mf.methods.build("infmasking", toy_seq.modalities, **SMALL)
    batch = first_batch(toy_seq, 32)
    seen = {}

    def spy(tokens, masks, subsets, replaced=None):
        seen.update(subsets=subsets, replaced=replaced)
        return torch.zeros(len(subsets), len(batch), 16)

    model.fusion.forward = spy
    model.fuse_masked(batch)
    assert seen["subsets"] == [("x1",), ("x2",), ("x1", "x2")] + [("x1", "x2")] * 6
    replaced = seen["replaced"]
    assert not replaced[:3].any()  # CoMM's fusions are unmasked
    steps = batch.x["x2"].shape[1]
    # x1 (one token) keeps it; x2 keeps int(0.3 * steps) of its steps in every mask
    assert not replaced[3:, :, 0].any()
    assert (replaced[3:, :, 1:].sum(2) == steps - int(0.3 * steps)).all()
    assert not torch.equal(replaced[3], replaced[4])  # masks differ


def test_infmask_term_with_equal_keys_is_infonce_over_them():
    """With T identical masked embeddings the covariance is 0: the term is InfoNCE of q
    against its key, with the T copies of every other key and the other anchors as
    negatives."""
    model = mf.methods.build(
        "infmasking", {m: mf.datasets.ModalitySpec(m, "vector", (4,)) for m in ("a", "b")}, **SMALL
    )
    torch.manual_seed(0)
    q, k = torch.randn(5, 3), torch.randn(5, 3)
    term = model.infmask(q, [k] * 6)
    qn, kn = F.normalize(q, dim=1), F.normalize(k, dim=1)
    sim_k, sim_q = qn @ kn.T, qn @ qn.T
    eye = torch.eye(5, dtype=torch.bool)
    negatives = torch.cat(
        [sim_k.masked_fill(eye, float("-inf"))] * 6 + [sim_q.masked_fill(eye, float("-inf"))], 1
    )
    logits = torch.cat([(qn * kn).sum(1, keepdim=True), negatives], 1) / 0.1
    torch.testing.assert_close(term, F.cross_entropy(logits, torch.zeros(5, dtype=torch.long)))


def test_the_masking_strength_ramps_with_the_epochs(toy):
    model = mf.methods.build("infmasking", toy.modalities, **SMALL)
    seen = []
    model.set_progress = lambda epoch, max_epochs: seen.append((epoch, max_epochs))
    mf.fit(model, toy, max_epochs=3, batch_size=32, progress=False)
    assert seen == [(0, 3), (1, 3), (2, 3)]
    mf.methods.infmasking.InfMasking.set_progress(model, 1, 4)
    assert model.progress == 0.5


def test_options_are_validated(toy):
    for bad in ({"mask_ratio": 1.5}, {"num_masks": 1}, {"mask_lambda": -1.0}):
        with pytest.raises(InputError):
            mf.methods.build("infmasking", toy.modalities, **SMALL, **bad)
