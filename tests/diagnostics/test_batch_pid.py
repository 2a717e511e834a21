"""Liang et al.'s BATCH estimator of the PID (:mod:`mmfactor.diagnostics.batch`): its
Sinkhorn coupling, the toy cases with exact answers, determinism and option checks."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import mmfactor as mf
from mmfactor.diagnostics import TOY_PARTS, bit_toy, information_decomposition, pid
from mmfactor.diagnostics.batch import batch_decompose, coupling_information, sinkhorn
from mmfactor.errors import InputError

#: Largest error per part, in bits. Measured at n = 2000, seeds 0 to 3: at most 0.022 (an
#: uninformative modality's classifier keeps a little chance fit). An estimator with U1 and
#: U2 swapped, or the synergy forced to 0, is 1 bit off on "unique" or "xor".
TOLERANCE = 0.05
#: A fast configuration for the tests that are not about accuracy.
QUICK = {"epochs": 10, "align_epochs": 1, "batch_size": 32}


def parts_of(out: mf.diagnostics.InformationDecomposition) -> np.ndarray:
    return np.array([out.redundancy, out.unique["x1"], out.unique["x2"], out.synergy])


# ------------------------------------------------------------------------------------------
# The coupling of one minibatch


def test_sinkhorn_meets_both_marginals():
    gen = torch.Generator().manual_seed(0)
    c, b = 3, 40
    log_kernel = torch.randn(c, b, b, generator=gen)
    rows = torch.log_softmax(torch.randn(b, c, generator=gen), 1).T - math.log(b)
    cols = torch.rand(c, b, generator=gen) + 0.1
    cols = torch.log(cols / cols.sum(1, keepdim=True) * rows.exp().sum(1, keepdim=True))
    log_q, error = sinkhorn(log_kernel, rows, cols)
    q = log_q.exp()
    torch.testing.assert_close(q.sum(2), rows.double().exp(), atol=1e-12, rtol=0)
    assert error < 1e-4
    torch.testing.assert_close(q.sum(1), cols.double().exp(), atol=1e-4 / b, rtol=0)
    assert float(q.sum()) == pytest.approx(1.0, abs=1e-6)  # float32 rows


def test_coupling_information_of_known_couplings():
    """Uninformative marginals coupled independently: ``I_q = 0``; one-hot marginals of
    the same label (a redundant bit): ``I_q = H(Y)``; always ``I_q >= I(Y; X1)``."""
    b = 8
    half = torch.full((2, b), math.log(0.5 / b))
    log_q, _ = sinkhorn(torch.zeros(2, b, b), half, half)
    log_p_y = torch.log(torch.tensor([0.5, 0.5]))
    assert float(coupling_information(log_q, log_p_y)) == pytest.approx(0.0, abs=1e-7)

    labels = torch.arange(b) % 2
    onehot = torch.log(torch.nn.functional.one_hot(labels, 2).double().T / b)
    log_q, _ = sinkhorn(torch.randn(2, b, b, dtype=torch.float64), onehot, onehot)
    assert float(coupling_information(log_q, log_p_y)) == pytest.approx(math.log(2), abs=1e-6)

    gen = torch.Generator().manual_seed(1)
    p1 = torch.softmax(2 * torch.randn(b, 2, generator=gen), 1)
    p2 = torch.softmax(2 * torch.randn(b, 2, generator=gen), 1)
    p2 = p2 * (p1.sum(0) / p2.sum(0))  # equal label mass, as batch_decompose ensures
    log_q, _ = sinkhorn(
        torch.randn(2, b, b, generator=gen), p1.log().T - math.log(b), p2.log().T - math.log(b)
    )
    i1 = float(torch.mean(torch.sum(p1 * (p1.log() - log_p_y), 1)))
    assert float(coupling_information(log_q, log_p_y)) >= i1 - 1e-9


# ------------------------------------------------------------------------------------------
# Data with a known decomposition


@pytest.mark.parametrize("case", ["redundant", "unique", "xor"])
def test_toy_cases_match_the_exact_parts(case):
    out = information_decomposition(bit_toy(case, n=2000), method="batch")
    expected = np.array(TOY_PARTS[case])
    np.testing.assert_allclose(parts_of(out), expected, atol=TOLERANCE)
    assert out.dominant == ["redundancy", "unique:x1", "unique:x2", "synergy"][expected.argmax()]
    assert sum(parts_of(out)) == pytest.approx(out.total, abs=1e-9)
    assert out.method == "batch" and out.counts is None and out.bias is None
    assert out.settings["epochs"] == 40 and out.settings["batch_size"] == 256
    assert out.solver["rows"] == {"fit": 1120, "valid": 280, "held_out": 600}
    assert out.solver["sinkhorn_error"] < 1e-4


def test_deterministic_for_a_seed_and_leaves_global_state_alone():
    data = bit_toy("mixed", n=600)
    torch.manual_seed(123)
    before, threads = torch.get_rng_state(), torch.get_num_threads()
    first = information_decomposition(data, method="batch", batch_options=QUICK, seed=3)
    assert torch.equal(torch.get_rng_state(), before) and torch.get_num_threads() == threads
    again = information_decomposition(data, method="batch", batch_options=QUICK, seed=3)
    other = information_decomposition(data, method="batch", batch_options=QUICK, seed=4)
    assert first.parts == again.parts and first.solver == again.solver
    assert first.parts != other.parts
    assert first.settings["seed"] == 3 and first.settings["epochs"] == 10


def test_images_and_sequences_use_the_same_vectors_as_the_projections():
    rng = np.random.default_rng(2)
    n = 400
    r = rng.integers(0, 2, n)
    seq = np.repeat((2.0 * r - 1)[:, None, None], 4, axis=1) + 0.05 * rng.normal(size=(n, 4, 3))
    image = (2.0 * r - 1)[:, None, None, None] + 0.05 * rng.normal(size=(n, 1, 2, 2))
    data = mf.from_arrays({"img": image, "seq": seq}, y=r, lengths={"seq": np.full(n, 4)})
    out = information_decomposition(data, method="batch", images="pixels", batch_options=QUICK)
    assert out.modalities == ("img", "seq") and out.settings["images"] == "pixels"
    assert out.mutual_information["img"] > 0.5


def test_uncalibrated_reference_procedure_and_direct_call():
    data = bit_toy("redundant", n=600)
    x1, x2 = np.asarray(data.arrays["x1"]), np.asarray(data.arrays["x2"])
    y = 5 * np.asarray(data.target().values).astype(np.int64) + 2  # any integer codes
    parts, facts = batch_decompose(x1, x2, y, calibrate=False, **QUICK)
    assert facts["rows"]["valid"] == 0 and set(facts["temperature"].values()) == {1.0}
    assert parts["h_y"] == pytest.approx(1.0, abs=0.01) and parts["redundancy"] > 0.5


# ------------------------------------------------------------------------------------------
# Options


def test_bad_options_are_refused():
    toy = bit_toy("xor", n=200)
    with pytest.raises(InputError, match="batch PID: epochs must be an integer >= 1, got 0"):
        information_decomposition(toy, method="batch", batch_options={"epochs": 0})
    with pytest.raises(InputError, match="batch PID: held_out must be a number in"):
        information_decomposition(toy, method="batch", batch_options={"held_out": 1.5})
    with pytest.raises(InputError, match="batch PID: batch_size must be an integer >= 2"):
        information_decomposition(toy, method="batch", batch_options={"batch_size": 1})
    with pytest.raises(InputError, match="unknown batch option"):
        information_decomposition(toy, method="batch", batch_options={"epoch": 3})
    with pytest.raises(InputError, match="batch_options are for method='batch'"):
        information_decomposition(toy, batch_options={"epochs": 3})
    with pytest.raises(InputError, match="does not make"):
        information_decomposition(toy, method="batch", correct_bias=True)
    with pytest.raises(InputError, match="unknown PID method 'batc'; available: broja, imin"):
        information_decomposition(toy, method="batc")
    with pytest.raises(InputError, match="too few"):
        information_decomposition(
            toy.subset(np.arange(20)), method="batch", batch_options={"held_out": 0.05}
        )
    with pytest.raises(InputError, match="samples, not from a table"):
        pid(np.full((2, 2, 2), 0.125), method="batch")
    with pytest.raises(InputError, match="integer class codes"):
        batch_decompose(np.zeros((50, 1)), np.zeros((50, 1)), np.zeros(50))
    with pytest.raises(InputError, match="needs x1"):
        batch_decompose(np.zeros((50, 1)), np.zeros((40, 1)), np.zeros(50, np.int64))
