"""Real data sets shipped inside the package.

The files in ``mmfactor/data/files/`` are built by ``tools/embed_data.py`` from the raw CSVs;
the package never reads the CSVs.

- ``uci-mfeat``: UCI Machine Learning Repository, "Multiple Features" (R. Duin), CC BY 4.0:
  2000 handwritten digits, 10 classes x 200 in class order, six views.
- ``nutrimouse``: Martin et al. (2007), "Novel aspects of PPARalpha-mediated regulation of
  lipid and xenobiotic metabolism revealed through a nutrigenomic study", Hepatology
  45(3):767-777: 40 mice, 120 hepatic gene expressions and 21 hepatic fatty-acid
  concentrations; genotype (wt, ppar) x diet (coc, fish, lin, ref, sun), 4 mice per cell.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mmfactor.checks import check_int
from mmfactor.data.arrays import as_target, random_splits
from mmfactor.data.dataset import ModalitySpec, MultimodalDataset
from mmfactor.errors import InputError

FILES = Path(__file__).resolve().parent / "files"
MFEAT_VIEWS: dict[str, int] = {"fou": 76, "fac": 216, "kar": 64, "pix": 240, "zer": 47, "mor": 6}
MFEAT_DESCRIPTIONS = {
    "fou": "Fourier coefficients of the character shapes",
    "fac": "profile correlations",
    "kar": "Karhunen-Loeve coefficients",
    "pix": "pixel averages in 2 x 3 windows",
    "zer": "Zernike moments",
    "mor": "morphological features",
}
MFEAT_SOURCE = "UCI Machine Learning Repository, Multiple Features, R. Duin, CC BY 4.0"
NUTRIMOUSE_VIEWS: dict[str, int] = {"gene": 120, "lipid": 21}
NUTRIMOUSE_SOURCE = (
    "Martin P.G.P. et al. (2007), Novel aspects of PPARalpha-mediated regulation of lipid and "
    "xenobiotic metabolism revealed through a nutrigenomic study, Hepatology 45(3):767-777"
)


def read_embedded(name: str) -> dict[str, np.ndarray]:
    """All arrays of an embedded ``.npz`` file (strings as unicode arrays, no pickles)."""
    path = FILES / f"{name}.npz"
    if not path.is_file():
        raise FileNotFoundError(
            f"embedded data file {path} is missing; rebuild it with tools/embed_data.py "
            "(av_digits.npz: tools/build_av_digits.py)"
        )
    with np.load(path, allow_pickle=False) as f:
        return {k: f[k] for k in f.files}


def _views(dataset: str, views: Any, known: Sequence[str]) -> list[str]:
    """Validated view names (a single string is one view), in the order given."""
    if isinstance(views, str):
        views = [views]
    if not isinstance(views, Sequence) or len(views) < 1:
        raise InputError(
            f"{dataset}: views needs at least one view; known views: {', '.join(known)}"
        )
    out = list(views)
    for v in out:
        if v not in known:
            raise InputError(
                f"{dataset}: views has an unknown view {v!r}; known views: {', '.join(known)}"
            )
    if len(set(out)) != len(out):
        raise InputError(f"{dataset}: views repeats a view: {out}")
    return out


def load_uci_mfeat(views: Sequence[str] = ("fou", "pix"), seed: int = 0) -> MultimodalDataset:
    """The UCI multiple-features digits, one vector modality per selected view.

    Args:
        views: view names among ``fou`` (76), ``fac`` (216), ``kar`` (64), ``pix`` (240),
            ``zer`` (47), ``mor`` (6); at least one.
        seed: seeds the stratified 70/15/15 train/valid/test split (1400/300/300, 140/30/30
            per digit).

    Returns:
        A :class:`MultimodalDataset` named ``"uci-mfeat"``: arrays ``(2000, D_view)`` float32
        in the file's order (class order), target ``"digit"`` (classes ``"0"`` .. ``"9"``).

    Raises:
        InputError: an unknown, repeated or empty view list, or a bad seed.
    """
    names = _views("uci-mfeat", views, list(MFEAT_VIEWS))
    seed = check_int("uci-mfeat", "seed", seed, minimum=0)
    raw = read_embedded("uci_mfeat")
    digit = as_target("digit", raw["digit"].astype(np.int64), "classification")
    return MultimodalDataset(
        modalities={v: ModalitySpec(v, "vector", (MFEAT_VIEWS[v],)) for v in names},
        arrays={v: raw[v] for v in names},
        targets={"digit": digit},
        splits=random_splits(len(digit.values), seed=seed, stratify=digit.values),
        info={
            "options": {"views": names, "seed": seed},
            "source": MFEAT_SOURCE,
            "attribution": "R. Duin; UCI Machine Learning Repository (Multiple Features)",
            "license": "CC BY 4.0",
            "url": "https://archive.ics.uci.edu/dataset/72/multiple+features",
            "views": {
                v: {"dim": MFEAT_VIEWS[v], "description": MFEAT_DESCRIPTIONS[v]} for v in names
            },
            "splits": "stratified by digit, 70/15/15, seeded",
        },
        name="uci-mfeat",
        default_target="digit",
    )


def stratified_folds(strata: np.ndarray, n_folds: int, seed: int) -> np.ndarray:
    """A fold number in ``[0, n_folds)`` per sample ``(N,)`` int64, stratified on ``strata``.

    Samples are ordered by stratum (strata in a random order) and randomly within a stratum,
    then dealt to folds in turn: every fold gets ``N / n_folds`` samples (within one) and
    every stratum is spread as evenly as its size allows.
    """
    rng = np.random.default_rng(seed)
    _, codes = np.unique(strata, return_inverse=True)
    stratum_rank = rng.permutation(codes.max() + 1)[codes]
    order = np.lexsort((rng.random(len(codes)), stratum_rank))
    folds = np.empty(len(codes), dtype=np.int64)
    folds[order] = np.arange(len(codes)) % n_folds
    return folds


def load_nutrimouse(
    seed: int = 0, fold: int = 0, n_folds: int = 5, views: Sequence[str] = ("gene", "lipid")
) -> MultimodalDataset:
    """Nutrimouse: gene expression and lipid concentrations of 40 mice, one fold of a
    repeated stratified K-fold cross-validation.

    The mice are dealt into ``n_folds`` folds stratified on genotype x diet (seeded by
    ``seed``: each seed is one repetition); fold ``fold`` is the test split, fold
    ``(fold + 1) % n_folds`` the valid split, and the remaining folds the train split. With
    the defaults: 24 / 8 / 8 mice. Loop over ``fold`` (and ``seed``) for cross-validation.

    Args:
        seed: the repetition (fold assignment).
        fold: the test fold, in ``[0, n_folds)``.
        n_folds: number of folds, in ``[3, 40]``.
        views: among ``gene`` (120) and ``lipid`` (21).

    Returns:
        A :class:`MultimodalDataset` named ``"nutrimouse"``: arrays ``(40, D_view)`` float32,
        targets ``"diet"`` (classes coc, fish, lin, ref, sun; the default) and ``"genotype"``
        (ppar, wt); ``info["folds"]`` is the fold of every mouse and ``info["feature_names"]``
        the gene and lipid names.

    Raises:
        InputError: a bad view list, seed, fold or number of folds.
    """
    names = _views("nutrimouse", views, list(NUTRIMOUSE_VIEWS))
    seed = check_int("nutrimouse", "seed", seed, minimum=0)
    n_folds = check_int("nutrimouse", "n_folds", n_folds, 3, 40)
    fold = check_int("nutrimouse", "fold", fold, 0, n_folds - 1)
    raw = read_embedded("nutrimouse")
    genotype, diet = raw["genotype"], raw["diet"]
    folds = stratified_folds(np.char.add(np.char.add(genotype, "/"), diet), n_folds, seed)
    valid = (fold + 1) % n_folds
    splits = {
        "train": np.flatnonzero((folds != fold) & (folds != valid)),
        "valid": np.flatnonzero(folds == valid),
        "test": np.flatnonzero(folds == fold),
    }
    return MultimodalDataset(
        modalities={v: ModalitySpec(v, "vector", (NUTRIMOUSE_VIEWS[v],)) for v in names},
        arrays={v: raw[v] for v in names},
        targets={
            "diet": as_target("diet", diet, "classification"),
            "genotype": as_target("genotype", genotype, "classification"),
        },
        splits=splits,
        info={
            "options": {"seed": seed, "fold": fold, "n_folds": n_folds, "views": names},
            "source": NUTRIMOUSE_SOURCE,
            "splits": f"stratified (genotype x diet) {n_folds}-fold CV, repetition seed {seed}: "
            f"test fold {fold}, valid fold {valid}, train the rest",
            "folds": folds.tolist(),
            "feature_names": {v: raw[f"{v}_names"].tolist() for v in names},
        },
        name="nutrimouse",
        default_target="diet",
    )
