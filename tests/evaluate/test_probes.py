"""Probes: accuracy where there is signal, chance where there is none, selection on valid,
convergence without warnings, input validation."""

from __future__ import annotations

import importlib
import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression

from mmfactor.errors import InputError
from mmfactor.evaluate.probes import PROTOCOLS, fit_probe, fit_probes, score_probe


def blobs(n: int, d: int, k: int, rng: np.random.Generator, sep: float = 6.0):
    """``k`` well-separated Gaussian classes in ``d`` dimensions: linearly separable."""
    centres = sep * np.eye(k, d)
    y = rng.integers(0, k, n)
    return (centres[y] + rng.normal(size=(n, d))).astype(np.float32), y


def mean_shift(n: int, d: int, rng: np.random.Generator, shift: float = 0.35):
    """Two isotropic classes apart along 20 of ``d`` coordinates. With few samples in many
    dimensions the train set is separable, so weak regularisation (large C) overfits and
    the best C on held-out data is small."""
    y = rng.integers(0, 2, n)
    X = rng.normal(size=(n, d)) + shift * (2 * y[:, None] - 1) * (np.arange(d) < 20)
    return X, y


def realistic(n: int, d: int, k: int, signal: float, rng: np.random.Generator):
    """Features of a nonlinear encoder: tanh of a 32-dim latent plus noise; ``k`` classes
    from a noisy linear function of the latent (about 45% accuracy at signal 0.3)."""
    z = rng.normal(size=(n, 32))
    X = np.tanh(z @ rng.normal(size=(32, d)) / np.sqrt(32)) + 0.3 * rng.normal(size=(n, d))
    y = np.argmax(signal * z @ rng.normal(size=(32, k)) + rng.gumbel(size=(n, k)), axis=1)
    return X.astype(np.float32), y


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_separable_data_high_accuracy(protocol: str) -> None:
    rng = np.random.default_rng(0)
    tr, va, te = blobs(300, 10, 3, rng), blobs(100, 10, 3, rng), blobs(300, 10, 3, rng)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        probe = fit_probe(protocol, "classification", tr, va, seed=0)
        scores = score_probe(probe, *te, "classification")
    assert scores["accuracy"] > 0.97
    assert scores["f1_macro"] > 0.97
    assert set(scores) >= {"accuracy", "f1_macro"}
    assert probe.protocol == protocol
    assert probe.valid_score > 0.95
    proba = probe.predict_scores(te[0])
    assert proba.shape == (300, 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-6)
    np.testing.assert_array_equal(proba.argmax(axis=1), probe.predict(te[0]))


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_random_labels_chance_level(protocol: str) -> None:
    rng = np.random.default_rng(1)
    X = rng.normal(size=(1600, 20)).astype(np.float32)
    y = rng.integers(0, 2, 1600)  # independent of X
    tr, va, te = (X[:600], y[:600]), (X[600:800], y[600:800]), (X[800:], y[800:])
    probe = fit_probe(protocol, "classification", tr, va, seed=0)
    acc = score_probe(probe, *te, "classification")["accuracy"]
    # 800 test samples: chance 0.5, binomial std ~0.018.
    assert abs(acc - 0.5) < 0.07


def test_linear_probe_selects_C_on_valid() -> None:
    rng = np.random.default_rng(0)
    tr, va, te = mean_shift(60, 200, rng), mean_shift(500, 200, rng), mean_shift(500, 200, rng)
    probe = fit_probe("linear-probe", "classification", tr, va)
    # The best C on valid is not scikit-learn's default of 1.
    # Exact: selected["C"] is a grid value copied, not computed.
    assert probe.selected["C"] != 1.0
    assert probe.selected["C"] < 1.0
    # Exact: valid_score is the very float stored in grid_scores (copied, not recomputed).
    assert probe.valid_score == max(probe.grid_scores.values())
    assert probe.grid_scores[probe.selected["C"]] == probe.valid_score
    # Selection follows the valid split: "validating" on train itself (separable in 200
    # dimensions) picks the weakest regularisation instead.
    on_train = fit_probe("linear-probe", "classification", tr, tr)
    assert on_train.selected["C"] == 100.0  # exact: a grid value copied
    assert on_train.valid_score == 1.0  # exact: an accuracy, a count ratio (n / n)
    # The model kept is the one trained on train alone with the selected C.
    X, y = tr
    mu, sd = X.mean(0), X.std(0)
    ref = LogisticRegression(C=probe.selected["C"], max_iter=10_000).fit((X - mu) / sd, y)
    Xt = (te[0] - mu) / sd
    np.testing.assert_allclose(probe.predict_scores(te[0]), ref.predict_proba(Xt), atol=1e-3)


def test_linear_probe_realistic_problem_converges_without_warning() -> None:
    # 2000 x 300 features, 10 classes, weak signal: the slowest case for lbfgs at large C.
    rng = np.random.default_rng(0)
    X, y = realistic(3000, 300, 10, 0.3, rng)
    tr, va = (X[:2000], y[:2000]), (X[2000:], y[2000:])
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        warnings.simplefilter("error", FutureWarning)
        warnings.simplefilter("error", DeprecationWarning)
        probe = fit_probe("linear-probe", "classification", tr, va)
    assert probe.converged
    assert not any(np.isnan(v) for v in probe.grid_scores.values())  # every C converged
    assert probe.valid_score > 0.3  # well above chance (0.1)


def test_mlp_probe_emits_no_convergence_warning() -> None:
    rng = np.random.default_rng(0)
    X, y = realistic(500, 30, 4, 1.0, rng)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        probe = fit_probe("mlp-probe", "classification", (X[:400], y[:400]), (X[400:], y[400:]))
    assert isinstance(probe.converged, bool)
    assert probe.selected["alpha"] in (1e-4, 1e-2, 1.0)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_regression_probes_recover_linear_function(protocol: str) -> None:
    rng = np.random.default_rng(2)
    d = 8 if protocol == "knn" else 20  # k-NN needs few dimensions to interpolate
    X = rng.normal(size=(1500, d))
    y = 50.0 + 30.0 * X @ rng.normal(size=d) + rng.normal(size=1500)  # offset, scale, noise
    tr, va, te = (X[:1000], y[:1000]), (X[1000:1200], y[1000:1200]), (X[1200:], y[1200:])
    probe = fit_probe(protocol, "regression", tr, va, seed=0)
    scores = score_probe(probe, *te, "regression")
    assert set(scores) == {"mse", "mae", "r2", "corr"}
    floor = {"linear-probe": 0.99, "mlp-probe": 0.95, "knn": 0.8}[protocol]
    assert scores["r2"] > floor
    pred = probe.predict(te[0])
    assert pred.shape == (300,) and pred.dtype == np.float64
    # exact: for regression predict_scores calls predict: same computation, same input
    np.testing.assert_array_equal(probe.predict_scores(te[0]), pred)


def test_ridge_selects_alpha_on_valid() -> None:
    rng = np.random.default_rng(3)
    X = rng.normal(size=(400, 100))
    y = X[:, 0] + 3.0 * rng.normal(size=400)  # weak signal, many nuisance features
    probe = fit_probe("linear-probe", "regression", (X[:100], y[:100]), (X[100:], y[100:]))
    # exact: valid_score is the float stored in grid_scores (copied, not recomputed)
    assert probe.valid_score == max(probe.grid_scores.values())
    assert probe.selected["alpha"] > 1.0  # strong shrinkage wins with 100 samples


def test_knn_selects_k_on_valid() -> None:
    rng = np.random.default_rng(0)
    X, y = realistic(1200, 20, 3, 1.0, rng)
    probe = fit_probe("knn", "classification", (X[:800], y[:800]), (X[800:], y[800:]))
    assert probe.selected["n_neighbors"] in (1, 5, 15, 31)
    assert probe.grid_scores[probe.selected["n_neighbors"]] == probe.valid_score  # exact: copied
    # The valid score from the shared neighbour query matches the kept model's own.
    acc = np.mean(probe.predict(X[800:]) == y[800:])
    assert acc == pytest.approx(probe.valid_score, abs=0.01)


def test_knn_caps_k_at_train_size() -> None:
    rng = np.random.default_rng(0)
    X, y = blobs(12, 4, 2, rng)
    probe = fit_probe("knn", "classification", (X, y), blobs(20, 4, 2, rng))
    assert set(probe.grid_scores) == {1, 5, 12}


def test_mlp_probe_is_seeded() -> None:
    rng = np.random.default_rng(0)
    X, y = realistic(300, 10, 3, 1.0, rng)
    tr, va = (X[:200], y[:200]), (X[200:], y[200:])
    a = fit_probe("mlp-probe", "classification", tr, va, seed=5).predict_scores(X)
    b = fit_probe("mlp-probe", "classification", tr, va, seed=5).predict_scores(X)
    # exact: same seed, same data, same shapes and thread limit (determinism check)
    np.testing.assert_array_equal(a, b)


def test_constant_feature_and_unseen_class() -> None:
    rng = np.random.default_rng(0)
    X, y = blobs(200, 5, 2, rng)
    X[:, 4] = 7.0  # constant on train
    Xv, yv = blobs(50, 5, 2, rng)
    yv[:3] = 2  # a class never seen in train
    probe = fit_probe("linear-probe", "classification", (X, y), (Xv, yv))
    assert probe.n_classes == 3
    scores = probe.predict_scores(Xv)
    assert scores.shape == (50, 3)
    assert np.all(scores[:, 2] == 0.0)  # exact: the unseen class's column is filled with zeros
    # Variation at test time in the train-constant feature changes nothing.
    Xt = Xv.copy()
    Xt[:, 4] = rng.normal(scale=1e6, size=50)
    np.testing.assert_allclose(probe.predict_scores(Xt), scores)


def test_labels_as_float_integers_and_column() -> None:
    rng = np.random.default_rng(0)
    X, y = blobs(100, 4, 2, rng)
    probe = fit_probe("knn", "classification", (X, y.astype(float)[:, None]), (X, y))
    assert probe.predict(X).dtype == np.int64


GOOD = (np.zeros((10, 3)) + np.arange(10)[:, None], np.arange(10) % 2)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"protocol": "svm"}, "linear-probe, mlp-probe, knn"),
        ({"task_kind": "ranking"}, "classification, regression"),
        ({"train": (np.array([[0.0], [np.nan]] * 5), GOOD[1])}, "train X .*NaN or inf"),
        ({"valid": (np.array([[np.inf]] * 10), GOOD[1])}, "valid X .*non-finite"),
        ({"train": (np.zeros(10), GOOD[1])}, "train X must be 2-D"),
        ({"train": (GOOD[0], GOOD[1][:9])}, "train y has 9 labels"),
        ({"valid": (GOOD[0][:, :2], GOOD[1])}, "valid X has 2 features"),
        ({"train": (GOOD[0], np.zeros(10, dtype=int))}, "at least 2 classes"),
        ({"train": (GOOD[0], GOOD[1] - 1)}, "integers 0..K-1"),
        ({"train": (GOOD[0], GOOD[1] + 0.5)}, "integers 0..K-1"),
        ({"valid": (GOOD[0], np.full(10, np.nan))}, "valid y contains non-finite"),
        ({"train": (GOOD[0].astype(str), GOOD[1])}, "real numeric"),
        ({"train": GOOD[0]}, "train must be a pair"),
    ],
)
def test_bad_inputs_raise_input_error(kwargs: dict, match: str) -> None:
    args = {
        "protocol": "linear-probe",
        "task_kind": "classification",
        "train": GOOD,
        "valid": GOOD,
    }
    args.update(kwargs)
    with pytest.raises(InputError, match=match):
        fit_probe(**args)


def test_predict_and_score_validate_inputs() -> None:
    probe = fit_probe("linear-probe", "classification", GOOD, GOOD)
    with pytest.raises(InputError, match="X has 2 features; the probe was fitted on 3"):
        probe.predict(np.zeros((4, 2)))
    with pytest.raises(InputError, match="X contains 1 non-finite"):
        probe.predict(np.array([[0.0, 1.0, np.nan]]))
    with pytest.raises(InputError, match="does not match"):
        score_probe(probe, *GOOD, "regression")
    with pytest.raises(InputError, match="y has 9 labels"):
        score_probe(probe, GOOD[0], GOOD[1][:9], "classification")


def test_ridge_probes_equal_one_fit_probe_per_column() -> None:
    """The multi-column ridge (one SVD) selects and predicts as the per-column probes do,
    a constant column included."""
    from mmfactor.evaluate.probes import ridge_probes

    rng = np.random.default_rng(3)
    X, Xv, Xt = (rng.normal(size=(n, 12)) for n in (300, 100, 100))
    w = rng.normal(size=(12, 4)) * np.array([1.0, 0.1, 0.0, 3.0])
    Y, Yv = (x @ w + rng.normal(size=(len(x), 4)) for x in (X, Xv))
    Y[:, 2], Yv[:, 2] = 5.0, 5.0  # constant target
    probes = ridge_probes((X, Y), (Xv, Yv))
    assert len(probes) == 4
    for j, probe in enumerate(probes):
        single = fit_probe("linear-probe", "regression", (X, Y[:, j]), (Xv, Yv[:, j]))
        # Exact: selected alphas are grid values (an index into the grid). The valid R^2
        # behind the choice comes from products of different widths (4 columns vs 1), which
        # differ by ~1e-15, while best and second-best differ by >= 9e-8 here (the constant
        # column ties exactly on every path and takes the first alpha).
        assert probe.selected == single.selected
        assert probe.valid_score == pytest.approx(single.valid_score, abs=1e-12)
        np.testing.assert_allclose(probe.predict(Xt), single.predict(Xt), atol=1e-9)
    assert len({p.selected["alpha"] for p in probes}) > 1  # chosen per column
    with pytest.raises(InputError, match="widths"):
        ridge_probes((X, Y), (Xv, Yv[:, :2]))


def test_probes_fitted_side_by_side_equal_probes_fitted_one_by_one(monkeypatch) -> None:
    """fit_probes in 2 worker processes: each probe is the one fit_probe gives here alone,
    under its key (exact: the same deterministic fit on the same arrays, one BLAS thread)."""
    from mmfactor.evaluate import probes

    monkeypatch.setattr(probes, "PARALLEL_FROM", 0)  # these small problems go to workers too
    rng = np.random.default_rng(3)
    X, y = realistic(900, 120, 10, 0.3, rng)  # 1200 coefficients: newton-cg
    Xb, yb = blobs(900, 20, 3, rng)
    jobs = {
        "ten": ("linear-probe", "classification", (X[:600], y[:600]), (X[600:], y[600:]), 0),
        "three": ("linear-probe", "classification", (Xb[:600], yb[:600]), (Xb[600:], yb[600:]), 0),
        "mlp": ("mlp-probe", "classification", (Xb[:600], yb[:600]), (Xb[600:], yb[600:]), 1),
    }
    together = fit_probes(jobs, workers=2)
    assert list(together) == list(jobs)
    for key, job in jobs.items():
        alone = fit_probe(*job)
        assert together[key].selected == alone.selected
        assert together[key].grid_scores == alone.grid_scores
        np.testing.assert_array_equal(
            together[key].predict_scores(job[3][0]), alone.predict_scores(job[3][0])
        )


def test_multiclass_c_path_stops_two_values_past_the_valid_optimum(monkeypatch) -> None:
    # 3 classes in 2 of 80 features, 150 train rows: weak regularisation overfits the noise,
    # valid accuracy peaks at C = 0.1 and falls at 1 and 10; C = 100 is not fitted.
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 1150)
    X = rng.normal(size=(1150, 80))
    X[:, :2] += 1.5 * np.eye(3)[y][:, :2] - 0.75 * (y == 2)[:, None]
    X = X.astype(np.float32)
    train, valid = (X[:150], y[:150]), (X[150:], y[150:])
    probe = fit_probe("linear-probe", "classification", train, valid)
    assert list(probe.grid_scores) == [1e-3, 1e-2, 1e-1, 1.0, 10.0]
    assert probe.selected["C"] == 0.1
    monkeypatch.setattr(
        importlib.import_module("mmfactor.evaluate.probe_fits"), "LINEAR_PATH_PATIENCE", 99
    )
    whole = fit_probe("linear-probe", "classification", train, valid)
    assert len(whole.grid_scores) == 6 and whole.selected == probe.selected
