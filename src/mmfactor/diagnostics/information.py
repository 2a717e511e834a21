"""Partial information decomposition of a data set: from two modalities and a target to
discrete variables, then the PID of their table (:mod:`mmfactor.diagnostics.pid` defines the
parts and solves them).

Data path (:func:`information_decomposition`). A PID needs discrete variables with well
populated cells, so each modality is reduced to one or two scores, computed from its
first ``max_dim`` whitened principal components and cross-fitted (fitted on ``folds - 1``
folds, computed on the held-out fold, so no score has seen the target of its own row), then
binned (``bins``, ``binning``). ``projection``:

- ``"interaction"`` (default): two scores per modality. (i) Main effect: ridge regression
  of the target (one-hot classes, or the standardised value) on the components; binary or
  regression targets give one score, binned; more classes give the predicted class.
  (ii) Interaction: the top singular pair ``(u, v)`` of the cross-moment matrix
  ``sum_i y_i z1_i z2_i^T`` (``z`` the whitened components, ``y`` the centred target), the
  scores ``z1 . u`` and ``z2 . v``: the leading bilinear term ``(u . z1)(v . z2)`` that
  predicts the target, i.e. the direction of each modality that takes part in an
  interaction. Score (i) alone cannot see a target that neither modality predicts alone
  (XOR-like): a per-modality prediction of it is noise. Measured on ``synthetic``
  (n = 6000, target ``synergy``): 0.000 bits of synergy with ``"supervised"``, 0.19 with
  this projection. One direction per modality: a target with several interactions keeps
  the strongest (on a toy with one redundant, one unique and one XOR bit among 8 classes,
  the interaction direction mixes the XOR bit with a product of the other two and 0.41
  of the 1 bit of synergy is found, n = 4000, seed 0).
- ``"supervised"``: score (i) only (blind to synergy).
- ``"pca"``: the first ``components`` principal components, each binned (unsupervised:
  keeps what varies most, which need not be what the target depends on).

Sequences are averaged over their real steps (``data.lengths``), images replaced by
unsupervised, translation-invariant patch features (``images="patches"``,
:mod:`mmfactor.encoders.patches`: on Trifeatures, linear projections of the pixels cannot
see a shape or a texture at a random position) or flattened (``images="pixels"``), and
rows where either modality is absent dropped. Classification targets keep their classes,
regression targets are cut into ``target_bins`` quantile bins. The parts describe the
binned scores, not the raw modalities: by data processing, ``total`` and each ``I(X_m; Y)``
are lower bounds on those of the modalities (up to the plug-in bias), while the split into
parts depends on the projection.

``method="batch"``: Liang et al.'s neural estimator (:mod:`mmfactor.diagnostics.batch`) on
the vectors above, without projections, bins, cell counts or a shuffle estimate of bias.

Bias. Plug-in estimates on ``n`` samples are biased upward, for ``I(X1, X2; Y)`` by about
``(|X1||X2| - 1)(|Y| - 1) / (2 n ln 2)`` bits (Miller-Madow), and the bias lands mostly in
the synergy. The default ``bins`` are the largest that keep at least ``min_per_cell``
samples per cell on average; ``counts`` holds the sample count of every cell. ``shuffles``
recomputes the decomposition with the target randomly permuted (all information
destroyed, so whatever it finds is bias) and reports the mean as ``bias``;
``correct_bias=True`` subtracts it (parts can then come out slightly negative).
:meth:`InformationDecomposition.advice` and ``dominant`` always read the parts with the
bias subtracted.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from mmfactor.checks import check_int
from mmfactor.data.arrays import from_arrays
from mmfactor.data.dataset import MultimodalDataset, Target
from mmfactor.diagnostics.batch import BATCH_OPTIONS, batch_decompose
from mmfactor.diagnostics.pid import (
    InformationDecomposition,
    decompose,
    pid_result,
)
from mmfactor.encoders.patches import PatchFeatures
from mmfactor.errors import InputError

METHODS = ("broja", "imin", "batch")
PROJECTIONS = ("interaction", "supervised", "pca")
IMAGE_INPUTS = ("patches", "pixels")
BINNINGS = ("auto", "quantile", "kmeans")
#: Ridge strength per training sample on whitened components (the main-effect score).
_RIDGE = 1e-2
#: Per-score bin counts tried, largest first, when ``bins`` is not given.
_BIN_CHOICES = (4, 3, 2)


# ------------------------------------------------------------------------------------------
# From a data set to discrete variables


def _vectors(
    data: MultimodalDataset, m: str, rows: np.ndarray, images: str, seed: int
) -> np.ndarray:
    """``(n, d)`` float64: vectors as they are, sequences averaged over their real steps,
    images as their patch features (fitted on these rows) or flattened pixels."""
    if data.modalities[m].kind == "image" and images == "patches":
        pixels = data.arrays[m][rows]
        features = PatchFeatures(patch=min(5, *pixels.shape[2:]), seed=seed).fit(pixels)
        return features.transform(pixels).astype(np.float64)
    x = np.asarray(data.arrays[m][rows], dtype=np.float64)
    if data.modalities[m].kind == "sequence":
        lengths = np.asarray(data.lengths[m][rows])
        mask = np.arange(x.shape[1])[None, :] < lengths[:, None]
        x = np.einsum("ntd,nt->nd", x, mask) / np.maximum(lengths, 1)[:, None]
    return x.reshape(len(x), -1)


def _whitened_components(x: np.ndarray, r: int, seed: int) -> np.ndarray:
    """The first ``r`` principal components of the standardised columns, each scaled to
    unit variance ``(n, <= r)`` (components of a rank-deficient matrix dropped)."""
    x = x - x.mean(0)
    sd = x.std(0)
    x = x[:, sd > 1e-12] / sd[sd > 1e-12]
    if x.shape[1] == 0:
        return np.zeros((len(x), 0))
    r = min(r, *x.shape)
    if r < min(x.shape) // 2:
        from sklearn.utils.extmath import randomized_svd

        u, s, _ = randomized_svd(x, r, random_state=seed)
    else:
        u, s, _ = np.linalg.svd(x, full_matrices=False)
        u, s = u[:, :r], s[:r]
    keep = s > 1e-8 * s[0]
    return u[:, keep] * np.sqrt(len(x))


def _fold_ids(n: int, folds: int, seed: int) -> np.ndarray:
    ids = np.empty(n, dtype=np.int64)
    ids[np.random.default_rng(seed).permutation(n)] = np.arange(n) % folds
    return ids


def _main_scores(z: np.ndarray, y: np.ndarray, fold: np.ndarray) -> np.ndarray:
    """Cross-fitted ridge predictions ``(n, k)`` of the centred target columns ``y``."""
    x = np.concatenate([z, np.ones((len(z), 1))], 1)
    gram, cross = x.T @ x, x.T @ y
    penalty = np.eye(x.shape[1])
    penalty[-1, -1] = 0.0  # the intercept is not shrunk
    out = np.empty((len(z), y.shape[1]))
    for f in range(int(fold.max()) + 1):
        te = fold == f
        xt = x[te]
        w = np.linalg.solve(
            gram - xt.T @ xt + _RIDGE * (len(z) - te.sum()) * penalty, cross - xt.T @ y[te]
        )
        out[te] = xt @ w
    return out


def _interaction_scores(
    z1: np.ndarray, z2: np.ndarray, y: np.ndarray, fold: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Cross-fitted scores ``z1 . u``, ``z2 . v`` of the top singular pair of the
    cross-moment ``sum_i y_ik z1_i z2_i^T`` (classes side by side), signs aligned to the
    first fold's pair."""
    s1, s2 = np.zeros(len(z1)), np.zeros(len(z2))
    if z1.shape[1] == 0 or z2.shape[1] == 0:  # a constant modality
        return s1, s2
    moments = np.einsum("ni,nj,nk->kij", z1, z2, y, optimize=True)
    reference: tuple[np.ndarray, np.ndarray] | None = None
    for f in range(int(fold.max()) + 1):
        te = fold == f
        m = moments - np.einsum("ni,nj,nk->kij", z1[te], z2[te], y[te], optimize=True)
        u = np.linalg.svd(np.concatenate(list(m), 1))[0][:, 0]
        v = np.linalg.svd(np.concatenate([mk.T for mk in m], 1))[0][:, 0]
        if reference is None:
            reference = (u, v)
        u = u if u @ reference[0] >= 0 else -u
        v = v if v @ reference[1] >= 0 else -v
        s1[te], s2[te] = z1[te] @ u, z2[te] @ v
    return s1, s2


def _quantile_bins(score: np.ndarray, bins: int) -> np.ndarray:
    edges = np.quantile(score, np.linspace(0, 1, bins + 1)[1:-1])
    return np.searchsorted(edges, score, side="right")


def _kmeans_bins(score: np.ndarray, bins: int, iterations: int = 100) -> np.ndarray:
    """1-D k-means (Lloyd's algorithm) started from the quantile bins."""
    codes = _quantile_bins(score, bins)
    for _ in range(iterations):
        counts = np.bincount(codes, minlength=bins)
        used = counts > 0
        centres = np.sort(np.bincount(codes, score, minlength=bins)[used] / counts[used])
        new = np.searchsorted((centres[1:] + centres[:-1]) / 2, score)
        if np.array_equal(new, codes):
            break
        codes = new
    return codes


def _gaussian_distortion(bins: int) -> float:
    """Within-bin share of variance of the best ``bins``-level quantiser of a Gaussian
    (Lloyd-Max; Panter-Dite's ``pi sqrt(3) / 2 / bins^2`` beyond the table)."""
    table = {2: 1 - 2 / np.pi, 3: 0.1902, 4: 0.1175, 5: 0.0799}
    return table.get(bins, np.pi * np.sqrt(3) / 2 / bins**2)


def _score_bins(score: np.ndarray, bins: int, binning: str) -> np.ndarray:
    """Bins ``0..bins-1`` of a score (see ``binning`` in :func:`information_decomposition`)."""
    if binning == "quantile":
        return _quantile_bins(score, bins)
    codes = _kmeans_bins(score, bins)
    if binning == "kmeans":
        return codes
    variance = score.var()
    counts = np.bincount(codes)
    means = np.bincount(codes, score) / np.maximum(counts, 1)
    within = float(np.mean((score - means[codes]) ** 2))
    clustered = variance > 0 and within < 0.25 * _gaussian_distortion(bins) * variance
    return codes if clustered else _quantile_bins(score, bins)


def _codes(columns: list[np.ndarray]) -> np.ndarray:
    """One code ``0..V-1`` per distinct combination of the columns (used values only)."""
    return np.unique(np.stack(columns, 1), axis=0, return_inverse=True)[1].reshape(-1)


def _table(c1: np.ndarray, c2: np.ndarray, y: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    flat = (c1 * shape[1] + c2) * shape[2] + y
    return np.bincount(flat, minlength=int(np.prod(shape))).reshape(shape).astype(np.float64)


def _default_bins(n: int, scores: int, n_y: int, min_per_cell: float, fixed: int) -> int:
    """The largest per-score bin count keeping ``min_per_cell`` samples per cell on average
    (``fixed`` values per modality come from non-binned parts, e.g. predicted classes)."""
    for b in _BIN_CHOICES:
        if n / ((b**scores * fixed) ** 2 * n_y) >= min_per_cell:
            return b
    return _BIN_CHOICES[-1]


def information_decomposition(
    data: MultimodalDataset,
    target: str | None = None,
    *,
    modalities: Sequence[str] | None = None,
    method: str = "broja",
    projection: str = "interaction",
    images: str = "patches",
    bins: int | None = None,
    binning: str = "auto",
    target_bins: int = 4,
    components: int = 2,
    max_dim: int = 48,
    folds: int = 5,
    split: str | None = None,
    shuffles: int = 10,
    correct_bias: bool = False,
    min_per_cell: float = 20.0,
    batch_options: Mapping[str, Any] | None = None,
    seed: int = 0,
) -> InformationDecomposition:
    """Redundancy, unique information and synergy of two modalities about a target (bits).

    Args:
        data: the data set.
        target: a target name (default: the data set's default target).
        modalities: the two modalities (default: the first two).
        method: ``"broja"`` (default) or ``"imin"`` on the binned projections, or
            ``"batch"`` (see the module docstring: no projection, binning or shuffle
            options, no ``counts`` or ``bias``, so no ``correct_bias``; ``solver`` holds
            its rows, ``i_q``, classifier accuracies and temperatures).
        projection: ``"interaction"`` (default), ``"supervised"`` or ``"pca"``: how each
            modality becomes a discrete variable (see the module docstring).
        images: what the projections of an image modality read: ``"patches"`` (default:
            :class:`~mmfactor.encoders.patches.PatchFeatures` of 5 x 5 windows, or the
            whole image if smaller, fitted on the rows used, without the target) or
            ``"pixels"`` (the flattened pixels).
        bins: bins per score (default: the largest of 4, 3, 2 that keeps ``min_per_cell``
            samples per cell on average).
        binning: ``"quantile"`` (equal-frequency bins), ``"kmeans"`` (1-D k-means from the
            quantile bins: edges move into the gaps between clusters of values) or
            ``"auto"`` (default: k-means where a score is clustered, its k-means
            within-bin variance under a quarter of what the best quantiser of a Gaussian
            leaves, as with discrete inputs; quantile bins otherwise).
        target_bins: quantile bins of a regression target.
        components: principal components binned by ``projection="pca"``.
        max_dim: principal components (whitened) every score is computed from.
        folds: cross-fitting folds of the supervised scores.
        split: the rows used (default: every row outside the ``unlabeled`` split).
        shuffles: permuted-target repetitions estimating the plug-in bias (0: none).
        correct_bias: subtract the estimated bias from every part (needs ``shuffles``).
        batch_options: options of
            :func:`~mmfactor.diagnostics.batch.batch_decompose` for ``method="batch"``
            (``epochs``, ``align_epochs``, ``batch_size``, ``hidden``, ``depth``, ``embed``,
            ``lr``, ``held_out``, ``valid``, ``calibrate``).
        seed: seeds the folds, the randomised SVD and the shuffles (BATCH: its row split,
            initialisation and minibatches).

    Returns:
        An :class:`InformationDecomposition` with the sample ``counts`` per cell, the
        ``bias`` estimate (both ``None`` for BATCH) and the ``settings`` used.

    Raises:
        InputError: unknown target, modality, method or projection; fewer than two
            modalities; bad option values; too few rows.
    """
    _check_options(
        method,
        projection,
        images,
        bins,
        binning,
        target_bins,
        components,
        max_dim,
        folds,
        shuffles,
        correct_bias,
        batch_options,
    )
    names = _modality_pair(data, modalities)
    tgt = data.target(target)
    rows = _rows(data, names, split, folds)
    n = len(rows)
    y, y_fit = _target_codes(tgt, rows, target_bins)
    if method == "batch":
        vectors = [_vectors(data, m, rows, images, seed) for m in names]
        options = dict(batch_options or {})
        parts, facts = batch_decompose(vectors[0], vectors[1], y, seed=seed, **options)
        return pid_result(
            parts,
            method,
            (names[0], names[1]),
            target=tgt.name,
            settings={
                "images": images,
                "target_bins": target_bins if tgt.kind == "regression" else None,
                "split": split,
                "seed": seed,
                **facts.pop("settings"),
            },
            solver=facts,
        )
    n_y = int(y.max()) + 1
    settings: dict[str, Any] = {
        "projection": projection,
        "images": images,
        "binning": binning,
        "target_bins": target_bins if tgt.kind == "regression" else None,
        "max_dim": max_dim,
        "folds": folds,
        "split": split,
        "shuffles": shuffles,
        "seed": seed,
    }

    vectors = [_vectors(data, m, rows, images, seed) for m in names]
    with threadpool_limits(limits=1, user_api="blas"):
        z = [_whitened_components(v, max_dim, seed) for v in vectors]
        if projection == "pca":
            columns, pca_bins = _pca_columns(z, n, n_y, components, bins, binning, min_per_cell)
            settings.update(bins=pca_bins, components=components)
        else:
            columns, score_bins = _supervised_columns(
                z, y_fit, n, n_y, projection, bins, binning, folds, min_per_cell, seed
            )
            settings.update(bins=score_bins)
        c1, c2 = _codes(columns[0]), _codes(columns[1])
        shape = (int(c1.max()) + 1, int(c2.max()) + 1, n_y)
        counts = _table(c1, c2, y, shape)
        parts, solver = decompose(counts / n, method)
        bias = _shuffle_bias(c1, c2, y, shape, n, method, shuffles, seed, parts)
    if correct_bias and bias is not None:
        parts = {k: v - bias.get(k, 0.0) for k, v in parts.items()}
    names2 = (names[0], names[1])
    return pid_result(
        parts,
        method,
        names2,
        target=tgt.name,
        settings=settings,
        counts=counts.astype(np.int64),
        bias=None if bias is None else _named_bias(bias, names2),
        corrected=bool(correct_bias),
        solver=solver,
    )


# ------------------------------------------------------------------------------------------
# The steps of information_decomposition


def _check_options(
    method: str,
    projection: str,
    images: str,
    bins: int | None,
    binning: str,
    target_bins: int,
    components: int,
    max_dim: int,
    folds: int,
    shuffles: int,
    correct_bias: bool,
    batch_options: Mapping[str, Any] | None,
) -> None:
    if method not in METHODS:
        raise InputError(f"unknown PID method {method!r}; available: {', '.join(METHODS)}")
    if batch_options is not None and method != "batch":
        raise InputError(f"batch_options are for method='batch', not {method!r}")
    if batch_options is not None and not isinstance(batch_options, Mapping):
        raise InputError(f"batch_options must be a mapping of option names, got {batch_options!r}")
    unknown = sorted(set(batch_options or {}) - set(BATCH_OPTIONS))
    if unknown:
        raise InputError(
            f"unknown batch option(s) {', '.join(map(repr, unknown))}; available: "
            f"{', '.join(BATCH_OPTIONS)}"
        )
    if method == "batch" and correct_bias:
        raise InputError(
            "correct_bias=True subtracts the shuffle estimate of the plug-in bias, which "
            "method='batch' does not make"
        )
    if images not in IMAGE_INPUTS:
        raise InputError(f"unknown images {images!r}; available: {', '.join(IMAGE_INPUTS)}")
    if projection not in PROJECTIONS:
        raise InputError(f"unknown projection {projection!r}; available: {', '.join(PROJECTIONS)}")
    owner = "information_decomposition"
    check_int(owner, "target_bins", target_bins, minimum=2)
    check_int(owner, "components", components, minimum=1)
    check_int(owner, "max_dim", max_dim, minimum=1)
    check_int(owner, "folds", folds, minimum=2)
    check_int(owner, "shuffles", shuffles, minimum=0)
    if bins is not None:
        check_int(owner, "bins", bins, minimum=2)
    if binning not in BINNINGS:
        raise InputError(f"unknown binning {binning!r}; available: {', '.join(BINNINGS)}")
    if correct_bias and shuffles < 1:
        raise InputError("correct_bias=True needs shuffles >= 1 to estimate the bias")


def _modality_pair(data: MultimodalDataset, modalities: Sequence[str] | None) -> list[str]:
    """The two modalities decomposed (default: the data set's first two), checked."""
    names = list(data.modalities) if modalities is None else list(modalities)
    if modalities is None:
        names = names[:2]
    if len(names) != 2 or names[0] == names[1]:
        raise InputError(
            f"information_decomposition needs two distinct modalities, got {names} "
            f"(data set modalities: {', '.join(data.modalities)})"
        )
    for m in names:
        if m not in data.modalities:
            raise InputError(
                f"data set {data.name!r} has no modality {m!r}; modalities: "
                f"{', '.join(data.modalities)}"
            )
    return names


def _rows(data: MultimodalDataset, names: list[str], split: str | None, folds: int) -> np.ndarray:
    """The rows used: those of ``split`` (default: every row outside ``unlabeled``) where
    both modalities are present; enough of them for the folds."""
    if split is None:
        rows = np.setdiff1d(np.arange(len(data)), data.splits.get("unlabeled", []))
    else:
        rows = data.indices(split)
    rows = rows[data.present[names[0]][rows] & data.present[names[1]][rows]]
    if len(rows) < max(4 * folds, 20):
        raise InputError(
            f"information_decomposition needs at least {max(4 * folds, 20)} rows with both "
            f"modalities present, got {len(rows)}"
        )
    return rows


def _target_codes(tgt: Target, rows: np.ndarray, target_bins: int) -> tuple[np.ndarray, np.ndarray]:
    """The discrete target ``(n,)`` (classes, or quantile bins of a regression target) and
    the centred columns ``(n, k)`` the supervised scores are fitted to (one-hot classes, one
    column for two classes, or the standardised value)."""
    values = tgt.values[rows]
    if tgt.kind == "classification":
        y = _codes([values])
        onehot = np.eye(int(y.max()) + 1)[y]
        onehot = onehot[:, 1:] if onehot.shape[1] == 2 else onehot  # binary: one column
        return y, onehot - onehot.mean(0)
    y = _codes([_quantile_bins(values.astype(np.float64), target_bins)])
    v = values.astype(np.float64)
    return y, ((v - v.mean()) / (v.std() + 1e-12))[:, None]


def _pca_columns(
    z: list[np.ndarray],
    n: int,
    n_y: int,
    components: int,
    bins: int | None,
    binning: str,
    min_per_cell: float,
) -> tuple[list[list[np.ndarray]], int]:
    """``projection="pca"``: the binned first ``components`` components of each modality,
    and the bins per score."""
    per = [min(components, zm.shape[1]) for zm in z]
    b = bins or _default_bins(n, max(per), n_y, min_per_cell, 1)
    columns = [
        [_score_bins(zm[:, j], b, binning) for j in range(k)] or [np.zeros(n, np.int64)]
        for zm, k in zip(z, per, strict=True)
    ]
    return columns, b


def _supervised_columns(
    z: list[np.ndarray],
    y_fit: np.ndarray,
    n: int,
    n_y: int,
    projection: str,
    bins: int | None,
    binning: str,
    folds: int,
    min_per_cell: float,
    seed: int,
) -> tuple[list[list[np.ndarray]], int | None]:
    """``"supervised"`` and ``"interaction"``: the binned cross-fitted scores of each
    modality (the predicted class where the target has more than two), and the bins per
    score (``None`` when no score is binned)."""
    fold = _fold_ids(n, folds, seed)
    main = [_main_scores(zm, y_fit, fold) for zm in z]
    predicted_class = y_fit.shape[1] > 1  # more than two classes
    scores = 2 if projection == "interaction" else 1
    b = bins or _default_bins(
        n, scores - int(predicted_class), n_y, min_per_cell, n_y if predicted_class else 1
    )
    columns = [
        [np.argmax(s, 1) if predicted_class else _score_bins(s[:, 0], b, binning)] for s in main
    ]
    if projection == "interaction":
        s1, s2 = _interaction_scores(z[0], z[1], y_fit, fold)
        columns[0].append(_score_bins(s1, b, binning))
        columns[1].append(_score_bins(s2, b, binning))
    return columns, None if predicted_class and scores == 1 else b


def _shuffle_bias(
    c1: np.ndarray,
    c2: np.ndarray,
    y: np.ndarray,
    shape: tuple[int, ...],
    n: int,
    method: str,
    shuffles: int,
    seed: int,
    parts: dict[str, float],
) -> dict[str, float] | None:
    """The mean of each part over ``shuffles`` decompositions with the target permuted
    (the plug-in bias), or ``None`` without shuffles."""
    if not shuffles:
        return None
    rng = np.random.default_rng([seed, 1])
    null = [
        decompose(_table(c1, c2, rng.permutation(y), shape) / n, method)[0] for _ in range(shuffles)
    ]
    return {k: float(np.mean([r[k] for r in null])) for k in parts if k != "h_y"}


def _named_bias(bias: dict[str, float], names: tuple[str, str]) -> dict[str, float]:
    return {
        "redundancy": bias["redundancy"],
        f"unique:{names[0]}": bias["unique1"],
        f"unique:{names[1]}": bias["unique2"],
        "synergy": bias["synergy"],
        "total": bias["total"],
    }


#: Toy data with a known decomposition: case -> (redundancy, unique x1, unique x2, synergy) in
#: bits, for :func:`bit_toy`.
TOY_PARTS: dict[str, tuple[float, float, float, float]] = {
    "redundant": (1.0, 0.0, 0.0, 0.0),  # x1 = x2 = y
    "unique": (0.0, 1.0, 0.0, 0.0),  # y = x1, x2 an independent bit
    "xor": (0.0, 0.0, 0.0, 1.0),  # y = x1 xor x2
    "mixed": (0.0, 1.0, 0.0, 1.0),  # x1 = (a, b), x2 = c, y = (a, b xor c)
}


def bit_toy(case: str, n: int = 4000, noise: float = 0.05, seed: int = 0) -> MultimodalDataset:
    """Two modalities made of fair random bits, each bit a +-1 feature plus Gaussian
    ``noise``, and a class target whose decomposition is known exactly (:data:`TOY_PARTS`):
    a check that :func:`information_decomposition` finds it.

    >>> from mmfactor.diagnostics import bit_toy, information_decomposition
    >>> out = information_decomposition(bit_toy("xor"), shuffles=0)
    >>> round(out.synergy, 1), round(out.redundancy, 1) + 0.0  # + 0.0: no "-0.0"
    (1.0, 0.0)
    """
    if case not in TOY_PARTS:
        raise InputError(f"unknown toy case {case!r}; choose from {sorted(TOY_PARTS)}")
    rng = np.random.default_rng(seed)
    a, b, c = rng.integers(0, 2, size=(3, n))

    def features(*bits: np.ndarray) -> np.ndarray:
        return 2.0 * np.stack(bits, 1) - 1 + noise * rng.normal(size=(n, len(bits)))

    arrays, y = {
        "redundant": ({"x1": features(a), "x2": features(a)}, a),
        "unique": ({"x1": features(a), "x2": features(b)}, a),
        "xor": ({"x1": features(b), "x2": features(c)}, b ^ c),
        "mixed": ({"x1": features(a, b), "x2": features(c)}, 2 * a + (b ^ c)),
    }[case]
    return from_arrays(arrays, y=y)
