"""Partial information decomposition: exact answers on discrete tables, the BROJA optimum
certified by linear programming, and the data path on sampled arrays and ``synthetic``."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest

import mmfactor as mf
from mmfactor.diagnostics import (
    TOY_PARTS,
    InformationDecomposition,
    bit_toy,
    information_decomposition,
    pid,
)
from mmfactor.diagnostics.pid import _broja
from mmfactor.errors import InputError

METHODS = ("broja", "imin")


def joint(fn, n_bits: int) -> np.ndarray:
    """The table p[x1, x2, y] of ``(x1, x2, y) = fn(bits)`` over uniform independent bits."""
    rows = np.array([fn(*bits) for bits in itertools.product((0, 1), repeat=n_bits)])
    p = np.zeros(tuple(rows.max(0) + 1))
    np.add.at(p, tuple(rows.T), 1.0)
    return p / p.sum()


# (x1, x2, y) as functions of independent fair bits, and the PID every sensible measure
# gives (redundancy, unique x1, unique x2, synergy), in bits.
CASES = {
    # X1 = X2 = Y: one redundant bit
    "redundant": (lambda a: (a, a, a), 1, (1, 0, 0, 0)),
    # Y = X1, X2 independent noise: one bit unique to X1
    "unique": (lambda a, b: (a, b, a), 2, (0, 1, 0, 0)),
    # Y = X1 xor X2: one synergistic bit
    "xor": (lambda a, b: (a, b, a ^ b), 2, (0, 0, 0, 1)),
    # X1 = (a, b), X2 = c, Y = (a, b xor c): a unique bit and a synergistic one
    "mixed": (lambda a, b, c: (2 * a + b, c, 2 * a + (b ^ c)), 3, (0, 1, 0, 1)),
    # X1 = (r, u, s), X2 = (r, v, t), Y = (r, u, s xor t): one bit of each kind
    "mixed3": (
        lambda r, u, v, s, t: (4 * r + 2 * u + s, 4 * r + 2 * v + t, 4 * r + 2 * u + (s ^ t)),
        5,
        (1, 1, 0, 1),
    ),
}


def parts_of(out: InformationDecomposition) -> np.ndarray:
    return np.array([out.redundancy, out.unique["x1"], out.unique["x2"], out.synergy])


def entropy_bits(p: np.ndarray) -> float:
    p = p[p > 0]
    return float(-np.sum(p * np.log2(p)))


def mi_bits(pxy: np.ndarray) -> float:
    return entropy_bits(pxy.sum(1)) + entropy_bits(pxy.sum(0)) - entropy_bits(pxy)


# ------------------------------------------------------------------------------------------
# Exact PIDs of given distributions


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("case", list(CASES))
def test_known_decompositions(case, method):
    fn, n_bits, expected = CASES[case]
    out = pid(joint(fn, n_bits), method=method)
    np.testing.assert_allclose(parts_of(out), expected, atol=1e-6)
    assert out.total == pytest.approx(sum(expected), abs=1e-9)
    assert out.redundancy + sum(out.unique.values()) + out.synergy == pytest.approx(out.total)
    assert out.target_entropy == pytest.approx(entropy_bits(joint(fn, n_bits).sum((0, 1))))
    assert out.method == method


@pytest.mark.parametrize("method", METHODS)
def test_and_gate(method):
    """Y = X1 and X2: I(X1; Y) = 0.311 bits, all of it redundant, and 0.5 bit synergy (the
    BROJA optimum is neither the data nor the conditionally independent start)."""
    out = pid(joint(lambda a, b: (a, b, a & b), 2), method=method)
    i1 = (2 - 0.75 * np.log2(3)) - 0.5  # H(Y) - H(Y | X1)
    np.testing.assert_allclose(parts_of(out), [i1, 0, 0, 0.5], atol=1e-7)


def test_copy_separates_the_two_measures():
    """Y = (X1, X2), independent bits: BROJA finds one unique bit each, I_min counts the
    equal amounts as 1 bit redundancy plus 1 bit synergy (Bertschinger et al. 2014)."""
    p = joint(lambda a, b: (a, b, 2 * a + b), 2)
    np.testing.assert_allclose(parts_of(pid(p, "broja")), [0, 1, 1, 0], atol=1e-6)
    np.testing.assert_allclose(parts_of(pid(p, "imin")), [1, 0, 0, 1], atol=1e-9)


def random_tables():
    rng = np.random.default_rng(0)
    shapes = [(2, 2, 2), (3, 4, 2), (4, 4, 3), (5, 3, 4), (9, 9, 2), (6, 7, 5)]
    out = []
    for shape in shapes:
        p = rng.dirichlet(np.full(int(np.prod(shape)), 0.5)).reshape(shape)
        out.append(p)
    sparse = out[3].copy()
    sparse[0] = 0  # an unused x1 value, an impossible (x2, y) pair, an unused class
    sparse[:, 1, 2] = 0
    sparse[..., 3] = 0
    out.append(sparse / sparse.sum())
    return out


@pytest.mark.parametrize("method", METHODS)
def test_parts_add_up_and_are_non_negative(method):
    for p in random_tables():
        out = pid(p, method=method)
        total = out.redundancy + sum(out.unique.values()) + out.synergy
        assert total == pytest.approx(out.total, abs=1e-9)
        assert out.total == pytest.approx(mi_bits(p.reshape(-1, p.shape[2])), abs=1e-9)
        for m, pxy in (("x1", p.sum(1)), ("x2", p.sum(0))):
            assert out.mutual_information[m] == pytest.approx(mi_bits(pxy), abs=1e-9)
            assert out.redundancy + out.unique[m] == pytest.approx(mi_bits(pxy), abs=1e-9)
        assert min(parts_of(out)) > -1e-7, parts_of(out)
        assert out.total <= out.target_entropy + 1e-9


def dual_lower_bound(p: np.ndarray, q: np.ndarray) -> float:
    """A lower bound on min_Q -H_Q(Y | X1, X2) (nats) over the BROJA polytope, from weak
    duality: for any lambda(x1, y), mu(x2, y) with log sum_y exp(lambda + mu) <= 0 for every
    (x1, x2), the value sum lambda p(x1, y) + sum mu p(x2, y) is one. The multipliers are
    fitted to log q(y | x1, x2) = lambda + mu (the optimality condition), then shifted to
    feasibility, so the bound is tight only if q is optimal."""
    a1, a2, k = p.shape
    q12 = q.sum(2)
    i1, i2, iy = np.nonzero((q12[:, :, None] > 1e-7) & (q > 0))
    design = np.zeros((i1.size, (a1 + a2) * k))
    design[np.arange(i1.size), i1 * k + iy] = 1
    design[np.arange(i1.size), a1 * k + i2 * k + iy] = 1
    w = np.sqrt(q12[i1, i2])
    target = np.log(q[i1, i2, iy] / q12[i1, i2])
    sol = np.linalg.lstsq(design * w[:, None], target * w, rcond=None)[0]
    m1, m2 = p.sum(1), p.sum(0)
    lam = np.where(m1 > 0, sol[: a1 * k].reshape(a1, k), -np.inf)  # forced-zero rows: -inf
    mu = np.where(m2 > 0, sol[a1 * k :].reshape(a2, k), -np.inf)
    with np.errstate(divide="ignore"):
        lse = np.log(np.exp(lam[:, None, :] + mu[None, :, :]).sum(2))
    shift = lse[np.isfinite(lse)].max()
    return (
        float(np.sum(np.where(m1 > 0, lam, 0) * m1) + np.sum(np.where(m2 > 0, mu, 0) * m2)) - shift
    )


def test_broja_optimum_is_certified_by_duality():
    """The returned Q is feasible and its value is within 1e-6 bits of a dual lower bound,
    on random tables whose optimum lies on the boundary (vanishing (x1, x2) cells) or not."""
    for p in random_tables():
        value, q, solver = _broja(p)
        np.testing.assert_allclose(q.sum(1), p.sum(1), atol=1e-12)
        np.testing.assert_allclose(q.sum(0), p.sum(0), atol=1e-12)
        assert q.min() >= 0 and solver["gap_bits"] < 1e-8
        p_y = p.sum((0, 1))
        h_y = entropy_bits(p_y) * np.log(2)
        q12 = q.sum(2, keepdims=True)
        with np.errstate(divide="ignore", invalid="ignore"):
            f_q = float(np.sum(np.where(q > 0, q * np.log(q / q12), 0.0)))
        assert value == pytest.approx(f_q + h_y, abs=1e-12)  # value = I_Q(Y; X1, X2)
        gap_bits = (value - (dual_lower_bound(p, q) + h_y)) / np.log(2)
        assert -1e-9 < gap_bits < 1e-6, gap_bits
        assert value / np.log(2) <= mi_bits(p.reshape(-1, p.shape[2])) + 1e-9  # P is feasible


def test_dual_certificate_rejects_a_suboptimal_point():
    """The certificate can fail: at the starting point p(x1|y) p(x2|y) p(y) of the AND gate
    (not optimal) the gap is large."""
    p = joint(lambda a, b: (a, b, a & b), 2)
    start = p.sum(1)[:, None, :] * p.sum(0)[None, :, :] / p.sum((0, 1))
    h_y = entropy_bits(p.sum((0, 1))) * np.log(2)
    q12 = start.sum(2, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        f_start = float(np.sum(np.where(start > 0, start * np.log(start / q12), 0.0)))
    assert (f_start - dual_lower_bound(p, start)) / np.log(2) > 0.01
    assert (f_start + h_y) / np.log(2) > pid(p).redundancy + 0.01  # above I_Q* = I(X1; Y)


def test_pid_rejects_bad_tables():
    with pytest.raises(InputError, match="3 axes"):
        pid(np.ones((2, 2)))
    with pytest.raises(InputError, match="non-negative"):
        pid(-np.ones((2, 2, 2)))
    with pytest.raises(InputError, match="non-negative"):
        pid(np.zeros((2, 2, 2)))
    with pytest.raises(InputError, match="unknown PID method"):
        pid(np.ones((2, 2, 2)), method="mmi")
    with pytest.raises(InputError, match="two distinct names"):
        pid(np.ones((2, 2, 2)), names=("a", "a"))


def test_counts_are_normalised_and_names_used():
    p = joint(CASES["unique"][0], 2)
    out = pid(37 * p, names=("ehr", "ecg"))
    assert out.unique == pytest.approx({"ehr": 1.0, "ecg": 0.0}, abs=1e-6)
    assert out.modalities == ("ehr", "ecg")
    assert out.dominant == "unique:ehr"


# ------------------------------------------------------------------------------------------
# The data path on sampled arrays


def sampled(case: str, n: int = 4000) -> mf.MultimodalDataset:
    """The toy cases as data: each bit a +-1 feature with a little Gaussian noise."""
    return bit_toy(case, n=n)


def test_toy_data_cases_match_the_exact_tables():
    assert set(TOY_PARTS) <= set(CASES)
    for case, parts in TOY_PARTS.items():
        assert parts == CASES[case][2]
    with pytest.raises(InputError, match="unknown toy case"):
        bit_toy("and")


@pytest.mark.parametrize("case", ["redundant", "unique", "xor", "mixed"])
def test_data_path_recovers_the_toy_cases(case):
    out = information_decomposition(sampled(case), shuffles=2)
    np.testing.assert_allclose(parts_of(out), CASES[case][2], atol=0.03)
    assert sum(parts_of(out)) == pytest.approx(out.total, abs=1e-9)
    assert out.n == 4000 and out.counts.sum() == 4000
    assert out.settings["projection"] == "interaction"


def test_supervised_projection_is_blind_to_synergy():
    """Per-modality predictions of an XOR target are noise: the synergy is (mostly) lost,
    which is why the default projection adds the interaction scores."""
    data = sampled("mixed")
    supervised = information_decomposition(data, projection="supervised", shuffles=0)
    assert supervised.unique["x1"] == pytest.approx(1.0, abs=0.03)
    assert supervised.synergy < 0.2
    default = information_decomposition(data, shuffles=0)
    assert default.synergy > 0.95


def test_binning_options():
    data = sampled("redundant")
    kmeans = information_decomposition(data, binning="kmeans", bins=3, shuffles=0)
    assert kmeans.redundancy == pytest.approx(1.0, abs=0.01)
    # equal-frequency bins put a bin across the two clusters of the +-1 feature
    quantile = information_decomposition(data, binning="quantile", bins=3, shuffles=0)
    assert quantile.total < 0.95
    assert quantile.settings["binning"] == "quantile" and quantile.settings["bins"] == 3


def test_pca_projection():
    out = information_decomposition(sampled("unique"), projection="pca", components=1)
    assert out.unique["x1"] == pytest.approx(1.0, abs=0.03)
    assert out.settings["components"] == 1


def test_bias_estimate_and_correction():
    """Target independent of the inputs: whatever the plug-in finds is bias; the shuffle
    estimate matches Miller-Madow's (cells - 1)(|Y| - 1) / (2 n ln 2) and removes it."""
    rng = np.random.default_rng(1)
    n = 2000
    arrays = {"x1": rng.normal(size=(n, 5)), "x2": rng.normal(size=(n, 5))}
    data = mf.from_arrays(arrays, y=rng.integers(0, 2, n))
    raw = information_decomposition(data, shuffles=20)
    b1, b2, k = raw.counts.shape
    miller_madow = (b1 * b2 - 1) * (k - 1) / (2 * n * np.log(2))
    assert raw.total > 0.5 * miller_madow
    assert raw.bias["total"] == pytest.approx(miller_madow, rel=0.3)
    assert sum(v for key, v in raw.bias.items() if key != "total") == pytest.approx(
        raw.bias["total"]
    )
    corrected = information_decomposition(data, shuffles=20, correct_bias=True)
    assert corrected.corrected and abs(corrected.total) < 0.5 * raw.total
    assert corrected.total == pytest.approx(raw.total - raw.bias["total"])
    parts = corrected.redundancy + sum(corrected.unique.values()) + corrected.synergy
    assert parts == pytest.approx(corrected.total, abs=1e-9)
    assert "says nothing" in raw.advice()
    assert raw.samples_per_cell == pytest.approx(n / raw.counts.size)


def test_default_bins_keep_cells_populated():
    small = information_decomposition(sampled("unique", n=600), shuffles=0)
    large = information_decomposition(sampled("unique", n=4000), shuffles=0)
    assert small.settings["bins"] == 2 and large.settings["bins"] == 3
    dense = information_decomposition(sampled("unique", n=4000), min_per_cell=1, shuffles=0)
    assert dense.settings["bins"] == 4


def test_sequences_average_real_steps_and_images_are_flattened():
    rng = np.random.default_rng(2)
    n = 1500
    r = rng.integers(0, 2, n)
    lengths = rng.integers(2, 7, n)
    seq = np.repeat((2.0 * r - 1)[:, None, None], 6, axis=1) + 0.05 * rng.normal(size=(n, 6, 3))
    pad = np.arange(6)[None, :] >= lengths[:, None]
    seq[pad] = 50 * rng.normal(size=(int(pad.sum()), 3))  # padding: anything finite
    image = (2.0 * r - 1)[:, None, None, None] + 0.05 * rng.normal(size=(n, 1, 2, 2))
    data = mf.from_arrays({"img": image, "seq": seq}, y=r, lengths={"seq": lengths})
    for images in ("pixels", "patches"):  # patches: one 2 x 2 window, the whole image
        out = information_decomposition(data, images=images, shuffles=0)
        assert out.modalities == ("img", "seq")
        assert out.redundancy == pytest.approx(1.0, abs=0.02)


def test_rows_regression_targets_and_modality_choice():
    rng = np.random.default_rng(3)
    n = 3000
    x = {f"x{i}": rng.normal(size=(n, 4)) for i in (1, 2, 3)}
    y = (x["x3"][:, 0] + 0.3 * rng.normal(size=n)).astype(np.float32)
    present = {"x3": np.arange(n) % 10 != 0}
    data = mf.from_arrays(x, y=y, present=present)
    first_two = information_decomposition(data, shuffles=0)
    assert first_two.modalities == ("x1", "x2") and first_two.n == n
    assert first_two.total < 0.02
    chosen = information_decomposition(data, modalities=["x1", "x3"], target_bins=5, shuffles=0)
    assert chosen.counts.shape[2] == 5 and chosen.n == int(present["x3"].sum())
    assert chosen.dominant == "unique:x3" and chosen.unique["x3"] > 0.5
    on_test = information_decomposition(data, modalities=["x1", "x3"], split="test", shuffles=0)
    assert on_test.n == int(present["x3"][data.indices("test")].sum())


def test_imin_through_the_data_path():
    out = information_decomposition(sampled("xor"), method="imin", shuffles=0)
    assert out.method == "imin" and out.synergy == pytest.approx(1.0, abs=0.03)
    assert out.solver == {}


def test_result_reports():
    out = information_decomposition(sampled("redundant"), shuffles=3)
    record = json.loads(json.dumps(out.as_dict()))
    assert record["redundancy"] == pytest.approx(out.redundancy)
    assert record["cells"]["n"] == 4000 and record["cells"]["shape"] == list(out.counts.shape)
    assert set(record["bias"]) == {"redundancy", "unique:x1", "unique:x2", "synergy", "total"}
    assert out.dominant == "redundancy" and "mostly redundancy" in out.advice()
    assert "redundancy" in str(out) and "total" in str(out)
    assert out.solver["gap_bits"] < 1e-8


def test_bad_arguments(toy):
    with pytest.raises(InputError, match="no target"):
        information_decomposition(toy, "nope")
    with pytest.raises(InputError, match="no modality"):
        information_decomposition(toy, modalities=["x1", "x9"])
    with pytest.raises(InputError, match="two distinct modalities"):
        information_decomposition(toy, modalities=["x1", "x1"])
    single = mf.from_arrays({"x1": np.zeros((50, 2))}, y=np.arange(50) % 2)
    with pytest.raises(InputError, match="two distinct modalities"):
        information_decomposition(single)
    with pytest.raises(InputError, match="unknown PID method"):
        information_decomposition(toy, method="mmi")
    with pytest.raises(InputError, match="unknown projection"):
        information_decomposition(toy, projection="umap")
    with pytest.raises(InputError, match="unknown binning"):
        information_decomposition(toy, binning="width")
    with pytest.raises(
        InputError, match="information_decomposition: bins must be an integer >= 2, got 1"
    ):
        information_decomposition(toy, bins=1)
    with pytest.raises(
        InputError, match="information_decomposition: folds must be an integer >= 2"
    ):
        information_decomposition(toy, folds=1)
    with pytest.raises(InputError, match="needs shuffles"):
        information_decomposition(toy, shuffles=0, correct_bias=True)
    with pytest.raises(InputError, match="at least 20 rows"):
        information_decomposition(toy.subset(np.arange(15)))


# ------------------------------------------------------------------------------------------
# The benchmark's ground truth


@pytest.fixture(scope="module")
def synthetic():
    return mf.datasets.load("synthetic", n=3000, targets=["shared", "unique:x1", "synergy"])


@pytest.mark.parametrize(
    "target, part", [("shared", "redundancy"), ("unique:x1", "unique:x1"), ("synergy", "synergy")]
)
def test_synthetic_targets_show_their_kind(synthetic, target, part):
    out = information_decomposition(synthetic, target)
    assert out.dominant == part
    debiased = out.debiased()
    assert debiased[part] > 0.6 * debiased["total"] and debiased["total"] > 0.1


def test_synthetic_synergy_needs_the_interaction_scores(synthetic):
    out = information_decomposition(synthetic, "synergy", projection="supervised")
    assert out.total < 0.01
