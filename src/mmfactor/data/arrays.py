"""Build a :class:`MultimodalDataset` from user arrays, with validation and default splits."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from mmfactor.checks import check_choice
from mmfactor.data.dataset import SPLITS, ModalitySpec, MultimodalDataset, Target
from mmfactor.errors import InputError

_KIND_BY_NDIM = {2: "vector", 3: "sequence", 4: "image"}


def as_target(name: str, values: np.ndarray, kind: str | None = None) -> Target:
    """A :class:`Target`; the kind is guessed when not given (integers or strings -> classes)."""
    values = np.asarray(values)
    if values.ndim == 2 and values.shape[1] == 1:
        values = values[:, 0]
    if values.ndim != 1:
        raise InputError(
            f"target {name!r}: expected one value per sample, got shape {values.shape}"
        )
    if kind is None:
        kind = "regression" if np.issubdtype(values.dtype, np.floating) else "classification"
    check_choice(f"target {name!r}", "kind", kind, ("classification", "regression"))
    if kind == "classification":
        classes, codes = np.unique(values, return_inverse=True)
        return Target(
            name, codes.astype(np.int64), "classification", tuple(str(c) for c in classes)
        )
    values = values.astype(np.float32)
    if not np.isfinite(values).all():
        raise InputError(f"target {name!r}: contains NaN or infinite values")
    return Target(name, values, "regression")


def random_splits(
    n: int,
    seed: int = 0,
    valid: float = 0.15,
    test: float = 0.15,
    stratify: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """Seeded train/valid/test index arrays, stratified on ``stratify`` when given."""
    if not (0 < valid < 1 and 0 < test < 1 and valid + test < 1):
        raise InputError(f"split fractions must be in (0, 1) and sum below 1: {valid}, {test}")
    rng = np.random.default_rng(seed)
    groups = (
        [np.arange(n)]
        if stratify is None
        else [np.flatnonzero(stratify == c) for c in np.unique(stratify)]
    )
    out: dict[str, list[np.ndarray]] = {s: [] for s in SPLITS}
    for g in groups:
        g = rng.permutation(g)
        n_valid, n_test = round(len(g) * valid), round(len(g) * test)
        out["valid"].append(g[:n_valid])
        out["test"].append(g[n_valid : n_valid + n_test])
        out["train"].append(g[n_valid + n_test :])
    return {s: np.sort(np.concatenate(v)).astype(np.int64) for s, v in out.items()}


def from_arrays(
    arrays: Mapping[str, np.ndarray],
    y: np.ndarray | None = None,
    *,
    targets: Mapping[str, np.ndarray] | None = None,
    target_kinds: Mapping[str, str] | None = None,
    splits: Mapping[str, np.ndarray] | np.ndarray | None = None,
    present: Mapping[str, np.ndarray] | None = None,
    lengths: Mapping[str, np.ndarray] | None = None,
    kinds: Mapping[str, str] | None = None,
    seed: int = 0,
    name: str = "arrays",
) -> MultimodalDataset:
    """A data set from one array per modality, ``(N, ...)`` each.

    Args:
        arrays: modality name -> array; 2-D arrays are vectors, 3-D sequences ``(N, T, D)``,
            4-D images ``(N, C, H, W)`` unless ``kinds`` says otherwise. Arrays are stored as
            float32, except 8-bit images (``uint8``), kept as they are and given to methods
            as float32 in ``[0, 1]``.
        y: the target, stored as ``"y"``; ``targets`` adds named ones.
        splits: ``{"train": idx, "valid": idx, "test": idx}``, or an array of split names per
            sample; by default a seeded (stratified for classes) 70/15/15 split.
        present: per-modality boolean flags ``(N,)``; missing entries may hold any finite value.
        lengths: per-sample lengths for sequences (padding at the end); default: full length.

    Raises:
        InputError: mismatched sample counts, NaN/inf values, bad shapes or names.
    """
    if len(arrays) < 1:
        raise InputError("from_arrays needs at least one modality array")
    kinds = dict(kinds or {})
    specs: dict[str, ModalitySpec] = {}
    data: dict[str, np.ndarray] = {}
    for m, a in arrays.items():
        a = np.asarray(a)
        if not np.issubdtype(a.dtype, np.number):
            raise InputError(f"modality {m!r}: expected a numeric array, got dtype {a.dtype}")
        kind = kinds.get(m, _KIND_BY_NDIM.get(a.ndim))
        if kind is None:
            raise InputError(
                f"modality {m!r}: cannot infer a kind from shape {a.shape}; "
                "expected (N, D), (N, T, D) or (N, C, H, W)"
            )
        if not (kind == "image" and a.dtype == np.uint8):  # 8-bit images stay (image_input)
            a = a.astype(np.float32, copy=False)
        if not np.isfinite(a).all():
            raise InputError(f"modality {m!r}: contains NaN or infinite values")
        data[m] = a
        feature_shape = tuple(a.shape[2:] if kind == "sequence" else a.shape[1:])
        specs[m] = ModalitySpec(m, kind, feature_shape)  # type: ignore[arg-type]
    sizes = {m: a.shape[0] for m, a in data.items()}
    if len(set(sizes.values())) != 1:
        raise InputError(f"modalities have different numbers of samples: {sizes}")
    n = next(iter(sizes.values()))

    all_targets = dict(targets or {})
    if y is not None:
        all_targets = {"y": y, **all_targets}
    target_kinds = dict(target_kinds or {})
    tgts = {}
    for k, v in all_targets.items():
        if len(v) != n:
            raise InputError(f"target {k!r} has {len(v)} values for {n} samples")
        tgts[k] = as_target(k, v, target_kinds.get(k))

    if splits is None:
        first = next(iter(tgts.values()), None)
        strat = first.values if first is not None and first.kind == "classification" else None
        split_idx = random_splits(n, seed=seed, stratify=strat)
    elif isinstance(splits, np.ndarray) or not isinstance(splits, Mapping):
        names = np.asarray(splits).astype(str)
        if names.shape != (n,):
            raise InputError(f"split array: expected shape ({n},), got {names.shape}")
        split_idx = {s: np.flatnonzero(names == s) for s in np.unique(names)}
    else:
        split_idx = {k: np.asarray(v, dtype=np.int64) for k, v in splits.items()}
    for s in SPLITS:
        if s not in split_idx:
            raise InputError(f"splits: missing the {s!r} split")

    pres = {m: np.asarray(p, dtype=bool) for m, p in (present or {}).items()}
    lens = {m: np.asarray(v, dtype=np.int64) for m, v in (lengths or {}).items()}
    for m, v in lens.items():
        if m not in specs or specs[m].kind != "sequence":
            raise InputError(f"lengths given for {m!r}, which is not a sequence modality")
        if v.shape != (n,) or v.min() < 1 or v.max() > data[m].shape[1]:
            raise InputError(f"lengths {m!r}: expected (N,) values in [1, {data[m].shape[1]}]")
    return MultimodalDataset(specs, data, tgts, split_idx, pres, lens, name=name)
