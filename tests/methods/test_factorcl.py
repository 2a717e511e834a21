import numpy as np
import pytest
import torch

import mmfactor as mf
from mmfactor.data.batching import make_loader
from mmfactor.errors import InputError
from mmfactor.estimators import NCECLUB

VARIANTS = ["factorcl-sup", "factorcl-ssl"]
SMALL = {"embed_dim": 16, "proj_dim": 8, "proj_hidden": 16, "critic_hidden": (16,)}


def first_batch(data, size=64):
    return next(iter(make_loader(data, data.indices("train"), size, target="y")))


def build(name, data, **kw):
    task = data.target("y").task if name == "factorcl-sup" else None
    return mf.methods.build(name, data.modalities, task=task, **{**SMALL, **kw})


def expected_parts(name, mods):
    pairs = [(a, b) for i, a in enumerate(mods) for b in mods[i + 1 :]]
    given = "given_y" if name == "factorcl-sup" else "given_aug"
    parts = set()
    for a, b in pairs:
        parts |= {f"nce_{a}_{b}", f"club_{a}_{b}_{given}", f"nce_{a}_{b}_{given}", f"club_{a}_{b}"}
    for m in mods:
        parts.add(f"nce_{m}_y" if name == "factorcl-sup" else f"nce_{m}_{m}aug")
    return parts


@pytest.mark.parametrize("name", VARIANTS)
@pytest.mark.parametrize("sequence", [False, True])
def test_loss_parts_backward_and_factor_widths(name, sequence, toy, toy_seq):
    data = toy_seq if sequence else toy
    model = build(name, data)
    batch = first_batch(data)
    loss = model.loss(batch)
    assert set(loss.parts) == expected_parts(name, ["x1", "x2"])
    assert torch.isfinite(loss.total) and loss.total.ndim == 0
    assert all(v.ndim == 0 and torch.isfinite(v) for v in loss.parts.values())
    signed = sum(-v if k.startswith("nce_") else v for k, v in loss.parts.items())
    # Summed in another order (a stacked sum vs left to right), float32: the rounding (up to
    # 7e-9 measured) scales with the parts (<= 0.1 here), not with the total, which can be
    # near 0, where the default atol of 1e-8 left no room.
    assert torch.allclose(loss.total, signed, rtol=1e-5, atol=1e-7)
    loss.total.backward()
    for m in ("x1", "x2"):
        grads = [p.grad for p in model.encoders[m].parameters()]
        assert any(g is not None and g.abs().sum() > 0 for g in grads)
    # The CLUB critics are frozen in the main step by the engine, not by the method; the
    # InfoNCE critics are main parameters.
    est = {id(p) for p in model.estimator_parameters()}
    assert all(id(p) not in est for p in model.nce.parameters())
    factors = model.encode(batch)
    assert factors.shared.shape == (64, 2 * 2 * 8)
    assert {m: v.shape for m, v in factors.specific.items()} == {
        "x1": (64, 3 * 8),
        "x2": (64, 3 * 8),
    }


@pytest.mark.parametrize("name", VARIANTS)
def test_estimator_step_trains_only_the_nce_club_critics(name, toy):
    model = build(name, toy, estimator_steps=3)
    assert model.estimator_steps == 3
    mods = model.estimator_modules()
    assert len(mods) == 2 and all(isinstance(m, NCECLUB) for m in mods)
    assert {id(m) for m in mods} == {id(model.club["x1_x2"]), id(model.club_cond["x1_x2"])}
    batch = first_batch(toy)
    loss = model.loss(batch)
    model.zero_grad(set_to_none=True)
    est_loss = model.estimator_loss(batch, loss.state)
    assert est_loss.ndim == 0 and torch.isfinite(est_loss)
    est_loss.backward()
    est_ids = {id(p) for p in model.estimator_parameters()}
    assert all(p.grad is not None for p in model.estimator_parameters())
    others = [p for p in model.parameters() if id(p) not in est_ids]
    assert others and all(p.grad is None for p in others)


@pytest.mark.parametrize("critic", ["concat", "separable"])
@pytest.mark.parametrize("condition", ["concat", "negatives"])
def test_critics_and_conditions(critic, condition, toy):
    model = build("factorcl-sup", toy, critic=critic, condition=condition)
    loss = model.loss(first_batch(toy))
    assert torch.isfinite(loss.total)
    assert torch.isfinite(model.estimator_loss(first_batch(toy), loss.state))


def test_ssl_separable_critic(toy_seq):
    model = build("factorcl-ssl", toy_seq, critic="separable")
    assert torch.isfinite(model.loss(first_batch(toy_seq)).total)


def test_validation(toy):
    with pytest.raises(InputError, match="critic"):
        build("factorcl-ssl", toy, critic="bilinear")
    with pytest.raises(InputError, match="condition"):
        build("factorcl-sup", toy, condition="both")
    with pytest.raises(InputError, match="estimator_steps"):
        build("factorcl-ssl", toy, estimator_steps=0)
    with pytest.raises(InputError, match="has no option 'condition'"):
        build("factorcl-ssl", toy, condition="concat")
    with pytest.raises(InputError, match="classification"):
        mf.methods.build(
            "factorcl-sup",
            toy.modalities,
            condition="negatives",
            task=mf.datasets.TaskSpec("regression"),
        )


def test_regression_target_uses_a_linear_label_embedding(toy):
    model = mf.methods.build(
        "factorcl-sup", toy.modalities, task=mf.datasets.TaskSpec("regression"), **SMALL
    )
    assert isinstance(model.label_embedding, torch.nn.Linear)
    batch = first_batch(toy)
    batch.y = batch.y.float() + 0.5
    assert torch.isfinite(model.loss(batch).total)


def test_unlabeled_rows_are_left_out_of_label_terms(toy):
    model = build("factorcl-sup", toy)
    batch = first_batch(toy)
    batch.labeled = torch.arange(64) < 40
    loss = model.loss(batch)
    assert torch.isfinite(loss.total)
    a, b, c = loss.state["club_cond.x1_x2"]
    assert a.shape[0] == b.shape[0] == c.shape[0] == 40
    assert loss.state["club.x1_x2"][0].shape[0] == 64
    batch.labeled = torch.arange(64) < 1  # one labeled row: label terms are 0, parts kept
    loss = model.loss(batch)
    assert set(loss.parts) == expected_parts("factorcl-sup", ["x1", "x2"])
    # exact: with < 2 labeled rows the label terms are a constant zero, not computed
    assert loss.parts["nce_x1_y"] == 0 and torch.isfinite(loss.total)
    assert torch.isfinite(model.estimator_loss(batch, loss.state))


@pytest.mark.parametrize("name", VARIANTS)
def test_three_modalities_use_every_pair(name):
    rng = np.random.default_rng(0)
    z = rng.normal(size=(120, 3))
    data = mf.from_arrays(
        {f"m{k}": z @ rng.normal(size=(3, 5)) + 0.1 * rng.normal(size=(120, 5)) for k in range(3)},
        y=(z[:, 0] > 0).astype(int),
    )
    model = build(name, data)
    batch = first_batch(data, 32)
    loss = model.loss(batch)
    assert set(loss.parts) == expected_parts(name, ["m0", "m1", "m2"])
    assert torch.isfinite(loss.total)
    assert len(model.estimator_modules()) == 6
    assert torch.isfinite(model.estimator_loss(batch, loss.state))
    factors = model.encode(batch)
    assert factors.shared.shape == (32, 3 * 2 * 8)
    assert all(v.shape == (32, 24) for v in factors.specific.values())


@pytest.mark.parametrize("name", VARIANTS)
def test_fit_and_evaluate(name, toy):
    model = build(name, toy)
    mf.fit(model, toy, max_epochs=2, batch_size=64, progress=False)
    records = mf.evaluate(model, toy, targets=["y"])
    factors = {r["factors"] for r in records}
    assert {"shared", "specific:x1", "specific:x2", "all"} <= factors
    assert all(np.isfinite(r["value"]) for r in records)


@pytest.mark.parametrize("name", VARIANTS)
def test_missing_modality_blocks_are_zero(name, toy):
    model = build(name, toy)
    model.eval()
    with torch.no_grad():
        factors = model.encode(first_batch(toy.with_missing(["x2"])))
    assert all(torch.isfinite(v).all() for v in factors.blocks().values())
    # Exact: an absent modality's rows are multiplied by 0.
    assert (factors.specific["x2"] == 0).all()
    assert (factors.shared[:, 2 * 8 :] == 0).all()  # Z_S_2
    assert factors.shared[:, : 2 * 8].abs().sum() > 0


def test_default_configs():
    for name in VARIANTS:
        cfg = mf.methods.default_config(name, "factorcl-synthetic")
        # exact: lr is a config value read from the YAML (copied, not computed)
        assert cfg["train"]["lr"] == 1e-4 and cfg["method"]["estimator_steps"] == 5
        assert mf.methods.default_config(name, "synthetic")["train"]["max_epochs"] > 0


def test_estimator_batch_draws_a_subset_per_step(toy):
    with pytest.raises(InputError, match="estimator_batch"):
        build("factorcl-sup", toy, estimator_batch=1)
    model = build("factorcl-sup", toy, estimator_batch=16)
    batch = first_batch(toy)
    state = model.loss(batch).state
    a, b, c = state["club_cond.x1_x2"]
    seen = []
    for _ in range(2):
        rows = model.estimator_rows((a, b, c))
        assert rows[0].shape == (16, a.shape[1]) and rows[2].shape[0] == 16
        seen.append(rows[0])
    assert not torch.equal(seen[0], seen[1])  # exact: a fresh draw (of copied rows) each step
    assert torch.isfinite(model.estimator_loss(batch, state))
    whole = build("factorcl-sup", toy)
    assert whole.estimator_rows((a, b, c))[0] is a


def test_club_floor_stops_pushing_negative_estimates():
    from mmfactor.methods.factorcl import total

    club = {"club_x1_x2": torch.tensor(-2.0, requires_grad=True), "club_x1_x3": torch.tensor(1.0)}
    assert total(club).item() == pytest.approx(-1.0)
    floored = total(club, floor=True)
    assert floored.item() == pytest.approx(1.0)
    (grad,) = torch.autograd.grad(floored, [club["club_x1_x2"]])
    assert grad.item() == 0.0  # exact: clamp_min(0) passes no gradient below the floor


def test_label_term_for_classes_scores_the_class_table(toy):
    """I(X_m; Y) on the K class embeddings equals InfoNCE on the B label rows."""
    model = build("factorcl-sup", toy)
    batch = first_batch(toy)
    z = torch.randn(len(batch), model.proj_dim)
    y = batch.y.long()
    fast = model.label_nce("x1", z, model.embed_label(y), y)
    slow = model.nce_y["x1"].mi(z, model.embed_label(y))
    assert torch.allclose(fast, slow, atol=1e-6)
