"""The generic ``arrays`` data set: modalities and targets from an ``.npz`` or HDF5 file.

Any user data in the layout below; bad input is an ``InputError`` naming the file and key.
The file holds one array per modality, ``(N, D)`` vectors, ``(N, T, D)`` end-padded sequences or
``(N, C, H, W)`` images, one array per target, and optionally a ``split`` array, per-modality
presence flags ``(N,)`` and sequence lengths ``(N,)``.

Which array is which is declared by a *mapping*, looked up in this order:

1. the ``mapping`` option: a dict, or the path of a YAML/JSON file;
2. a side file next to the data file: ``<file>.yaml``, ``<file>.yml`` or ``<file>.json``,
   where ``<file>`` is the full file name (``data.h5.yaml``) or its stem (``data.yaml``);
3. the naming convention: ``x_<name>`` arrays are modalities, ``y`` (the target ``y``) and
   ``y_<name>`` are targets, ``split`` is the split array, ``present_<m>`` and
   ``lengths_<m>`` the presence flags and lengths of modality ``<m>``; other arrays are
   ignored (with a note).

The mapping schema::

    modalities:
      text: text                 # short form: the array's key; kind from ndim (2, 3, 4 axes)
      audio: {key: audio, kind: sequence, lengths: audio_lengths, present: audio_present}
    targets:
      label: {key: y, kind: classification}                 # kind guessed when left out
      score: {key: s, kind: regression, sentiment: true}    # scored with sentiment metrics
    split: split                 # optional: train/valid/test strings (bytes ok) or ints 0/1/2
    default_target: label        # optional: the first target otherwise

Modality entries take ``key`` (default: the modality's name), ``kind`` (``vector``,
``sequence``, ``image``), ``lengths`` and ``present``; target entries take ``key``, ``kind``
(``classification``, ``regression``) and ``sentiment`` (a regression target with labels in
[-3, 3], see :class:`~mmfactor.data.dataset.Target`). Without a split array the samples get
a seeded 70/15/15 split (:func:`~mmfactor.data.arrays.random_splits`), stratified on the
default target when it is a classification target.

Policies:

- ``.npz`` files are read into memory with ``allow_pickle=False``: an object array is refused.
- HDF5 files are read lazily, so a file larger than memory trains: a contiguous, uncompressed
  native float32 data set is a true :class:`numpy.memmap` of the file; any other modality data
  set (chunked, compressed, another dtype) is an :class:`H5Array`, which reads what a batch
  asks for and converts it to float32. Targets, splits, lengths and presence flags are small
  and read into memory.
- Sequence lengths lie in ``[1, T]``; a length of 0 marks the modality absent for that sample
  (an error where a presence array says it is present) and is stored as 1.
- With ``check_finite`` (the default) every modality array is scanned in blocks of at most
  64 MiB; the first NaN or infinite value is an error naming its split, key and sample.

Every problem is an :class:`~mmfactor.errors.InputError` whose one-line message names the
file, the split and the key (:func:`~mmfactor.data.files.file_error`).

Example:
    >>> import os, tempfile
    >>> import numpy as np
    >>> path = os.path.join(tempfile.mkdtemp(), "toy.npz")
    >>> rng = np.random.default_rng(0)
    >>> np.savez(path, x_a=rng.normal(size=(20, 3)), x_b=rng.normal(size=(20, 4, 2)),
    ...          y=np.arange(20) % 2, split=np.repeat(["train", "valid", "test"], [14, 3, 3]))
    >>> data = load_arrays(path)
    >>> data.modality_names, data.modalities["b"].kind, len(data.indices("valid"))
    (['a', 'b'], 'sequence', 3)
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from mmfactor.data.array_mapping import NDIM_BY_KIND, resolve_mapping
from mmfactor.data.array_sources import (
    READ_ERRORS,
    H5Array,
    Source,
    is_numeric,
    one_line,
    open_source,
)
from mmfactor.data.arrays import as_target, random_splits
from mmfactor.data.dataset import SPLITS, ModalityKind, ModalitySpec, MultimodalDataset, Target
from mmfactor.data.files import file_error, warn_notes
from mmfactor.errors import InputError

__all__ = ["H5Array", "load_arrays"]

_KIND_BY_NDIM: dict[int, ModalityKind] = {2: "vector", 3: "sequence", 4: "image"}
#: Rows are scanned for NaN/inf in blocks of at most this many bytes.
BLOCK_BYTES = 64 * 2**20


# ----------------------------------------------------------------------------- validation


def _split_of(i: int, splits: Mapping[str, np.ndarray]) -> str | None:
    for name, idx in splits.items():
        pos = int(np.searchsorted(idx, i))
        if pos < len(idx) and int(idx[pos]) == i:
            return name
    return None


def _splits_from_array(path: Path, key: str, values: np.ndarray, n: int) -> dict[str, np.ndarray]:
    if values.ndim == 2 and values.shape[1] == 1:
        values = values[:, 0]
    if values.shape != (n,):
        raise file_error(path, None, key, f"split array: expected shape ({n},), got {values.shape}")
    if values.dtype.kind in "SU":
        names = values.astype(str) if values.dtype.kind == "S" else values
        found = np.unique(names)
        unknown = [str(v) for v in found if str(v) not in SPLITS]
        if unknown:
            raise file_error(
                path, None, key, f"unknown split value {unknown[0]!r}; expected train, valid, test"
            )
        out = {s: np.flatnonzero(names == s).astype(np.int64) for s in SPLITS}
    elif np.issubdtype(values.dtype, np.integer):
        codes = np.setdiff1d(np.unique(values), np.arange(len(SPLITS)))
        if codes.size:
            raise file_error(
                path,
                None,
                key,
                f"unknown split value {int(codes[0])}; expected 0 (train), "
                "1 (valid), 2 (test) or the names",
            )
        out = {s: np.flatnonzero(values == i).astype(np.int64) for i, s in enumerate(SPLITS)}
    else:
        raise file_error(
            path,
            None,
            key,
            f"split array: expected strings or integers 0/1/2, got dtype {values.dtype}",
        )
    for s in SPLITS:
        if out[s].size == 0:
            raise file_error(path, s, key, "no sample of this split in the split array")
    return out


def _first_nonfinite(array: Any, block_bytes: int = BLOCK_BYTES) -> tuple[int, str] | None:
    """The first sample holding NaN/inf, read in row blocks so memory stays bounded."""
    n = int(array.shape[0])
    row_bytes = max(1, int(np.prod(array.shape[1:], dtype=np.int64)) * 4)
    step = max(1, block_bytes // row_bytes)
    for start in range(0, n, step):
        block = np.asarray(array[start : start + step], dtype=np.float32)
        ok = np.isfinite(block).reshape(len(block), -1).all(axis=1)
        if not ok.all():
            i = int(np.argmin(ok))
            return start + i, "NaN" if np.isnan(block[i]).any() else "infinite"
    return None


def _flags(path: Path, key: str, values: np.ndarray, n: int) -> np.ndarray:
    if values.ndim == 2 and values.shape[1] == 1:
        values = values[:, 0]
    if values.shape != (n,) or not is_numeric(values.dtype):
        raise file_error(
            path,
            None,
            key,
            f"presence flags: expected ({n},) booleans, got {values.dtype} {values.shape}",
        )
    if values.dtype != np.bool_ and not np.isin(values, (0, 1)).all():
        raise file_error(path, None, key, "presence flags: expected 0/1 or booleans")
    return values.astype(bool)


def _lengths(
    path: Path,
    key: str,
    values: np.ndarray,
    t_max: int,
    present: np.ndarray,
    declared: bool,
    splits: Mapping[str, np.ndarray],
) -> tuple[np.ndarray, np.ndarray]:
    """Checked lengths (0 -> 1) and the presence flags they imply."""
    n = len(present)
    if values.ndim == 2 and values.shape[1] == 1:
        values = values[:, 0]
    if values.shape != (n,) or not is_numeric(values.dtype):
        raise file_error(
            path, None, key, f"lengths: expected ({n},) integers, got {values.dtype} {values.shape}"
        )
    lengths = values.astype(np.int64)
    if not np.array_equal(lengths, values):
        raise file_error(path, None, key, "lengths: expected whole numbers")
    bad = (lengths < 0) | (lengths > t_max)
    if declared:
        bad |= (lengths == 0) & present
    if bad.any():
        i = int(np.argmax(bad))
        raise file_error(
            path,
            _split_of(i, splits),
            key,
            f"length {lengths[i]} of sample {i} is outside [1, {t_max}]"
            + (" (0 is allowed only for absent samples)" if lengths[i] == 0 else ""),
        )
    return np.maximum(lengths, 1), present & (lengths > 0)


def _target(
    path: Path,
    name: str,
    entry: dict[str, Any],
    values: np.ndarray,
    n: int,
    splits: Mapping[str, np.ndarray],
) -> Target:
    key = entry["key"]
    if values.ndim == 2 and values.shape[1] == 1:
        values = values[:, 0]
    if values.shape != (n,):
        raise file_error(
            path,
            None,
            key,
            f"target {name!r}: expected shape ({n},) or ({n}, 1), got {values.shape}",
        )
    if values.dtype.kind == "S":
        values = values.astype(str)
    if not (is_numeric(values.dtype) or values.dtype.kind == "U"):
        raise file_error(path, None, key, f"target {name!r}: unsupported dtype {values.dtype}")
    if values.dtype.kind == "U" and entry["kind"] == "regression":
        raise file_error(path, None, key, f"target {name!r}: a regression target needs numbers")
    if np.issubdtype(values.dtype, np.floating):
        bad = ~np.isfinite(values)
        if bad.any():
            i = int(np.argmax(bad))
            kind = "NaN" if np.isnan(values[i]) else "infinite"
            raise file_error(
                path, _split_of(i, splits), key, f"{kind} values (first at sample {i})"
            )
    try:
        target = as_target(name, values, entry["kind"])
    except InputError as exc:
        raise file_error(path, None, key, str(exc)) from None
    if entry["sentiment"]:
        if target.kind != "regression":
            raise file_error(
                path,
                None,
                key,
                f"target {name!r}: sentiment targets are regression targets (got {target.kind})",
            )
        target.sentiment = True
    entry["kind"] = target.kind
    return target


# ----------------------------------------------------------------------------- the loader


def load_arrays(
    path: str | Path,
    mapping: str | Path | Mapping[str, Any] | None = None,
    seed: int = 0,
    check_finite: bool = True,
) -> MultimodalDataset:
    """The ``arrays`` data set from an ``.npz`` or HDF5 file (see the module docstring).

    Args:
        path: the ``.npz`` / ``.h5`` / ``.hdf5`` file.
        mapping: which array is which: a dict or a YAML/JSON file; by default a side file
            (``<file>.yaml``, ``<stem>.yaml``, ...) or else the naming convention.
        seed: seeds the 70/15/15 split used when the file has no split array.
        check_finite: scan every modality for NaN/inf (streamed, in 64 MiB blocks).

    Raises:
        InputError: a missing, truncated or corrupt file, a bad mapping, unequal sample
            counts, bad shapes or dtypes, NaN/inf values; one line naming file, split, key.
    """
    p = Path(path).expanduser()
    if not p.exists():
        raise InputError(f"{p}: no such file (the arrays data set needs an .npz or HDF5 file)")
    if not p.is_file():
        raise InputError(f"{p}: not a file (the arrays data set needs an .npz or HDF5 file)")
    source = open_source(p)
    try:
        return _load(p, source, mapping, seed, check_finite)
    finally:
        source.close()


def _load(
    p: Path,
    source: Source,
    mapping: str | Path | Mapping[str, Any] | None,
    seed: int,
    check_finite: bool,
) -> MultimodalDataset:
    resolved, where, mapping_source, notes = resolve_mapping(p, mapping, source.keys)
    mods, tgts = resolved["modalities"], resolved["targets"]
    shapes, n = _shapes(p, source, resolved)
    specs = _modality_specs(p, where, source, mods, shapes)  # before anything large is read
    splits = _splits(p, source, resolved, n, seed)  # first: later messages name a sample's split
    targets = {t: _target(p, t, e, source.small(e["key"]), n, splits) for t, e in tgts.items()}
    present, lengths = _presence(p, source, mods, shapes, n, splits, notes)
    arrays = {m: source.modality(e["key"]) for m, e in mods.items()}
    if check_finite:
        _check_finite(p, arrays, mods, splits)

    info: dict[str, Any] = {
        "path": str(p),
        "format": source.format,
        "mapping": resolved,
        "mapping_source": mapping_source or "naming convention",
    }
    if notes:
        info["notes"] = notes
    try:
        data = MultimodalDataset(
            modalities=specs,
            arrays=arrays,
            targets=targets,
            splits=splits,
            present=present,
            lengths=lengths,
            info=info,
            name="arrays",
            default_target=resolved["default_target"],
        )
    except InputError as exc:
        raise file_error(p, None, None, str(exc)) from None
    warn_notes(f"arrays {p.name}", notes)
    return data


def _shapes(
    p: Path, source: Source, resolved: Mapping[str, Any]
) -> tuple[dict[str, tuple[int, ...]], int]:
    """The shape of every array the mapping uses, and the sample count ``N`` they all share
    (the first modality's ``N`` being the reference)."""
    mods, tgts = resolved["modalities"], resolved["targets"]
    used: list[str] = []
    for e in mods.values():
        used += [e[f] for f in ("key", "lengths", "present") if e[f] is not None]
    used += [e["key"] for e in tgts.values()]
    if resolved["split"] is not None:
        used.append(resolved["split"])
    shapes = {k: source.shape(k) for k in dict.fromkeys(used)}
    first = next(iter(mods.values()))["key"]
    for key, shape in shapes.items():
        if len(shape) == 0:
            raise file_error(p, None, key, "a scalar; expected one row per sample")
    n = shapes[first][0]
    if n == 0:
        raise file_error(p, None, first, "no samples")
    for key, shape in shapes.items():
        if shape[0] != n:
            raise file_error(p, None, key, f"{shape[0]} samples, but {first!r} has {n}")
    return shapes, n


def _modality_specs(
    p: Path,
    where: str,
    source: Source,
    mods: dict[str, dict[str, Any]],
    shapes: Mapping[str, tuple[int, ...]],
) -> dict[str, ModalitySpec]:
    """Each modality's spec from its shape and dtype (its kind, when the mapping leaves it
    out, from the number of axes; written back into the mapping entry)."""
    specs: dict[str, ModalitySpec] = {}
    for m, e in mods.items():
        key, shape, dtype = e["key"], shapes[e["key"]], source.dtype(e["key"])
        if not is_numeric(dtype):
            raise file_error(p, None, key, f"modality {m!r}: expected numbers, got dtype {dtype}")
        kind: ModalityKind | None = e["kind"] or _KIND_BY_NDIM.get(len(shape))
        if kind is None:
            raise file_error(
                p,
                None,
                key,
                f"modality {m!r}: cannot infer a kind from shape {shape}; "
                "expected (N, D), (N, T, D) or (N, C, H, W)",
            )
        if len(shape) != NDIM_BY_KIND[kind]:
            raise file_error(
                p,
                None,
                key,
                f"modality {m!r}: a {kind} needs {NDIM_BY_KIND[kind]} axes, got shape {shape}",
            )
        if kind != "sequence" and e["lengths"] is not None:
            raise file_error(where, None, e["lengths"], f"lengths for {kind} modality {m!r}")
        try:
            specs[m] = ModalitySpec(m, kind, tuple(shape[2:] if kind == "sequence" else shape[1:]))
        except InputError as exc:
            raise file_error(p, None, key, str(exc)) from None
        e["kind"] = kind
    return specs


def _splits(
    p: Path, source: Source, resolved: Mapping[str, Any], n: int, seed: int
) -> dict[str, np.ndarray]:
    """The file's split array, or a seeded 70/15/15 split stratified on the default target
    when it is a classification target."""
    if resolved["split"] is not None:
        return _splits_from_array(p, resolved["split"], source.small(resolved["split"]), n)
    tgts = resolved["targets"]
    default = resolved["default_target"] or next(iter(tgts), None)
    strat = None
    if default is not None:
        t0 = _target(p, default, dict(tgts[default]), source.small(tgts[default]["key"]), n, {})
        strat = t0.values if t0.kind == "classification" else None
    return random_splits(n, seed=seed, stratify=strat)


def _presence(
    p: Path,
    source: Source,
    mods: Mapping[str, dict[str, Any]],
    shapes: Mapping[str, tuple[int, ...]],
    n: int,
    splits: Mapping[str, np.ndarray],
    notes: list[str],
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Presence flags ``(N,)`` of every modality and lengths ``(N,)`` of the sequences that
    have them (a length of 0 marks the sample absent, with a note when no flags say so)."""
    present: dict[str, np.ndarray] = {}
    lengths: dict[str, np.ndarray] = {}
    for m, e in mods.items():
        flags = np.ones(n, dtype=bool)
        if e["present"] is not None:
            flags = _flags(p, e["present"], source.small(e["present"]), n)
        if e["lengths"] is not None:
            t_max = shapes[e["key"]][1]
            lengths[m], flags = _lengths(
                p,
                e["lengths"],
                source.small(e["lengths"]),
                t_max,
                flags,
                e["present"] is not None,
                splits,
            )
            if not flags.all() and e["present"] is None:
                notes.append(f"{m}: {int((~flags).sum())} samples of length 0 marked absent")
        present[m] = flags
    return present, lengths


def _check_finite(
    p: Path,
    arrays: Mapping[str, Any],
    mods: Mapping[str, dict[str, Any]],
    splits: Mapping[str, np.ndarray],
) -> None:
    """An error naming the first NaN/inf value of any modality (streamed, in blocks)."""
    for m, a in arrays.items():
        try:
            bad = _first_nonfinite(a)
        except InputError:
            raise
        except READ_ERRORS as exc:
            raise file_error(p, None, mods[m]["key"], f"cannot read: {one_line(exc)}") from None
        if bad is not None:
            i, what = bad
            raise file_error(
                p, _split_of(i, splits), mods[m]["key"], f"{what} values (first at sample {i})"
            )
