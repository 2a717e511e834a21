"""Shared machinery of the file loaders (``multibench``, ``mmsa``, ``arrays``).

Every problem with a file is an :class:`~mmfactor.errors.InputError` whose one-line message
names the file, the split and the key (:func:`file_error`), so the CLI exits with code 2 and
no traceback. The loaders read a file's splits into one :class:`MultimodalDataset`
(:func:`join_splits`), turn front-padded sequences into the end-padded layout of the data
contract (:func:`front_to_end`), and build the sentiment targets both benchmark families use
(:func:`sentiment_targets`). Warnings that do not stop a load (samples dropped, ``-inf``
replaced) are kept in ``data.info["notes"]`` for ``mmfactor data inspect``.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mmfactor.checks import check_choice
from mmfactor.data.dataset import SPLITS, ModalitySpec, MultimodalDataset, Target
from mmfactor.errors import InputError


def file_error(path: str | Path, split: str | None, key: str | None, problem: str) -> InputError:
    """``"FILE: split 'train', key 'audio': problem"`` as an :class:`InputError`; a line break
    in ``problem`` (a key name read from the file can hold one) is escaped: one line."""
    problem = "".join(c if c.isprintable() else repr(c)[1:-1] for c in problem)
    where = ", ".join(
        part
        for part, value in ((f"split {split!r}", split), (f"key {key!r}", key))
        if value is not None
    )
    return InputError(f"{path}: {where}: {problem}" if where else f"{path}: {problem}")


def check_options(
    loader: str,
    modalities: Sequence[str] | None,
    known: Sequence[str],
    **choices: tuple[str, Sequence[str]],
) -> list[str]:
    """The chosen modalities (default: all ``known``), after checking them and each
    ``option=(value, allowed values)`` of a file loader."""
    chosen = list(modalities or known)
    for m in chosen:
        if m not in known:
            raise InputError(f"{loader}: unknown modality {m!r}; modalities: {', '.join(known)}")
    for option, (value, allowed) in choices.items():
        check_choice(loader, option, value, allowed)
    return chosen


class SplitFields:
    """The key -> value mapping of one split of a file, read with checks.

    Args:
        path: the file (for messages); split: the split's name; fields: its mapping.
    """

    def __init__(self, path: str | Path, split: str, fields: Any) -> None:
        if not isinstance(fields, Mapping):
            raise file_error(
                path, split, None, f"expected a dict of arrays, got {type(fields).__name__}"
            )
        self.path, self.split, self.fields = path, split, fields
        self.notes: list[str] = []  # problems that do not stop the load

    def __contains__(self, key: str) -> bool:
        return key in self.fields

    def error(self, key: str | None, problem: str) -> InputError:
        return file_error(self.path, self.split, key, problem)

    def array(self, key: str, ndim: int | Sequence[int], numeric: bool = True) -> np.ndarray:
        """``fields[key]`` as an array with ``ndim`` axes (one of them, if several)."""
        if key not in self.fields:
            raise self.error(key, f"missing (keys: {', '.join(map(str, self.fields)) or 'none'})")
        value = self.fields[key]
        if isinstance(value, np.ndarray):
            arr = value
        elif isinstance(value, list | tuple):
            # A pickle can repeat one list by reference: a few KB that np.asarray would
            # expand to 10**10 entries. Each stored entry takes a byte of the file at least.
            try:
                entries, size = _entries(value, {}), os.path.getsize(self.path)
            except RecursionError:
                raise self.error(key, "lists nested too deeply") from None
            if entries > size:
                raise self.error(
                    key,
                    f"nested lists of {entries} entries, more than the {size}-byte file holds "
                    "(lists repeated by reference?)",
                )
            try:
                arr = np.asarray(value)
            except ValueError:
                raise self.error(key, "a ragged list, expected an array") from None
        else:
            raise self.error(key, f"expected an array, got {type(value).__name__}")
        ndims = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        if arr.ndim not in ndims:
            raise self.error(
                key,
                f"expected {' or '.join(map(str, ndims))} axes, got shape {arr.shape}",
            )
        if numeric and not (
            np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.bool_)
        ):
            raise self.error(key, f"expected numbers, got dtype {arr.dtype}")
        return arr

    def features(self, key: str, ndim: int, neg_inf_to_zero: bool = False) -> np.ndarray:
        """A float32 feature array; NaN/inf are an error, except ``-inf`` -> 0 when asked
        (the audio policy of the affect loaders: COVAREP writes ``-inf`` for log energies of
        silence). The number replaced is reported in :meth:`notes`."""
        arr = self.array(key, ndim).astype(np.float32, copy=False)
        finite = np.isfinite(arr)
        if finite.all():
            return arr
        bad = ~finite
        if neg_inf_to_zero:
            neg_inf = np.isneginf(arr)
            bad &= ~neg_inf
            if not bad.any():
                self.notes.append(
                    f"split {self.split!r}, key {key!r}: {int(neg_inf.sum())} -inf values "
                    "replaced by 0"
                )
                return np.where(neg_inf, np.float32(0), arr)
        sample = int(np.argwhere(bad)[0][0])
        kind = "NaN" if np.isnan(arr[sample]).any() else "infinite"
        raise self.error(key, f"{kind} values (first at sample {sample})")

    def same_n(self, arrays: Mapping[str, np.ndarray]) -> int:
        """The common number of samples of ``arrays``; an error naming the odd key otherwise."""
        sizes = {k: len(v) for k, v in arrays.items()}
        first = next(iter(sizes))
        for key, n in sizes.items():
            if n != sizes[first]:
                raise self.error(key, f"{n} samples, but {first!r} has {sizes[first]}")
        return sizes[first]


def _entries(value: Any, seen: dict[int, int]) -> int:
    """The entries of nested lists and tuples as ``np.asarray`` would lay them out, a list
    repeated by reference counted each time, in time linear in the distinct lists."""
    if not isinstance(value, list | tuple):
        return 1
    if id(value) not in seen:
        seen[id(value)] = sum(_entries(v, seen) for v in value)
    return seen[id(value)]


def read_splits(path: str | Path, doc: Any, splits: Sequence[str] = SPLITS) -> list[SplitFields]:
    """The ``train`` / ``valid`` / ``test`` entries of a loaded file, each checked to exist."""
    if not isinstance(doc, Mapping):
        raise file_error(path, None, None, f"expected a dict of splits, got {type(doc).__name__}")
    for split in splits:
        if split not in doc:
            raise file_error(
                path, split, None, f"missing (top-level keys: {', '.join(map(str, doc))})"
            )
    return [SplitFields(path, split, doc[split]) for split in splits]


def join_splits(
    parts: Mapping[str, Mapping[str, np.ndarray]],
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Concatenate per-split arrays (``parts[split][key]``) into one array per key, plus the
    split index arrays. Sequences of different lengths across splits are end-padded to the
    longest."""
    keys = next(iter(parts.values())).keys()
    joined = {}
    for key in keys:
        for split in parts:
            if key not in parts[split]:  # an optional key (ids) in some splits only
                raise InputError(
                    f"split {split!r}, key {key.split(':', 1)[-1]!r}: missing, but split "
                    f"{next(iter(parts))!r} has it"
                )
        pieces = [parts[s][key] for s in parts]
        if pieces[0].ndim == 3 and len({p.shape[1] for p in pieces}) > 1:
            t_max = max(p.shape[1] for p in pieces)
            pieces = [np.pad(p, ((0, 0), (0, t_max - p.shape[1]), (0, 0))) for p in pieces]
        for split, p in zip(parts, pieces, strict=True):
            if p.shape[1:] != pieces[0].shape[1:]:
                raise InputError(
                    f"split {split!r}, key {key.split(':', 1)[-1]!r}: shape {p.shape[1:]} per "
                    f"sample, but split {next(iter(parts))!r} has {pieces[0].shape[1:]}"
                )
        joined[key] = np.concatenate(pieces)
    sizes = [len(next(iter(parts[s].values()))) for s in parts]
    bounds = np.cumsum([0, *sizes])
    splits = {s: np.arange(bounds[i], bounds[i + 1]) for i, s in enumerate(parts)}
    return joined, splits


def front_to_end(x: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Sequences ``(N, T, D)`` whose last ``lengths[i]`` steps are real (front padding) ->
    the same sequences starting at step 0 with zeros after (end padding).

    Example:
        >>> x = np.array([[[0.], [0.], [1.], [2.]]])
        >>> front_to_end(x, np.array([2]))[0, :, 0]
        array([1., 2., 0., 0.])
    """
    t = x.shape[1]
    steps = np.arange(t)[None, :]
    source = np.minimum(steps + (t - lengths)[:, None], t - 1)
    out = np.take_along_axis(x, source[:, :, None], axis=1)
    out[steps >= lengths[:, None]] = 0
    return out


def sentiment_targets(y: np.ndarray) -> dict[str, Target]:
    """Named targets from continuous sentiment labels ``(N,)`` in [-3, 3].

    - ``sentiment``: the regression target, scored with the sentiment metrics
      (:func:`mmfactor.evaluate.metrics.sentiment_metrics`);
    - ``binary-ge0``: ``y >= 0`` positive, the convention of FactorCL and MFM (MMSA's
      "has0" for labels);
    - ``binary-gt0``: ``y > 0`` positive (zero counts as negative), MultiBench's convention;
    - ``sentiment7``: ``round(clip(y, -3, 3))`` as 7 classes ``-3..3`` (Acc-7's classes).
    """
    y = y.astype(np.float32)
    out = {"sentiment": Target("sentiment", y, "regression", sentiment=True)}
    out["binary-ge0"] = Target(
        "binary-ge0", (y >= 0).astype(np.int64), "classification", ("negative", "non-negative")
    )
    out["binary-gt0"] = Target(
        "binary-gt0", (y > 0).astype(np.int64), "classification", ("non-positive", "positive")
    )
    seven = np.round(np.clip(y, -3, 3)).astype(np.int64) + 3
    out["sentiment7"] = Target(
        "sentiment7", seven, "classification", tuple(str(c) for c in range(-3, 4))
    )
    return out


def warn_notes(name: str, notes: Sequence[str]) -> None:
    """Surface a loader's notes as one warning (shown once on stderr by the CLI)."""
    if notes:
        warnings.warn(f"{name}: " + "; ".join(notes), UserWarning, stacklevel=3)


def as_text(values: np.ndarray | Sequence[Any]) -> np.ndarray:
    """Strings, bytes (UTF-8, Latin-1 as a fallback) or numbers -> an array of ``str``."""

    def one(v: Any) -> str:
        if isinstance(v, bytes | np.bytes_):
            try:
                return v.decode("utf-8")
            except UnicodeDecodeError:
                return v.decode("latin1")
        return str(v)

    return np.array(
        [one(v) for v in np.asarray(values, dtype=object).reshape(len(values))], dtype=object
    )


def assemble(
    name: str,
    parts: Mapping[str, Mapping[str, np.ndarray]],
    make_targets: Callable[[dict[str, np.ndarray]], dict[str, Target]],
    info: Mapping[str, Any] | None = None,
) -> MultimodalDataset:
    """One data set of sequence modalities from per-split columns (``parts[split][column]``):

    - ``x:<m>``: end-padded sequences ``(N, T, D)``;
    - ``lengths:<m>``: ``(N,)`` real steps; 0 marks the modality absent for that sample;
    - ``y:<label>``: raw label columns, which ``make_targets`` turns into named targets;
    - ``meta:<key>``: per-sample values that are not inputs (ids, raw text).
    """
    try:
        cols, splits = join_splits(parts)
        arrays = {k[2:]: v for k, v in cols.items() if k.startswith("x:")}
        lengths, present = {}, {}
        for m in arrays:
            raw = cols[f"lengths:{m}"].astype(np.int64)
            present[m] = raw > 0
            lengths[m] = np.maximum(raw, 1)  # an absent modality keeps one (zero) step
        modalities = {m: ModalitySpec(m, "sequence", (a.shape[2],)) for m, a in arrays.items()}
        return MultimodalDataset(
            modalities,
            arrays,
            make_targets({k[2:]: v for k, v in cols.items() if k.startswith("y:")}),
            splits,
            present,
            lengths,
            meta={k[5:]: v for k, v in cols.items() if k.startswith("meta:")},
            info=dict(info or {}),
            name=name,
        )
    except InputError as exc:  # splits that disagree, a feature width of 0: name the file
        raise file_error((info or {}).get("path", name), None, None, str(exc)) from None


#: File names of the public releases -> loader (MultiBench and MMSA).
KNOWN_FILES = {
    **dict.fromkeys(
        ("mosi_raw", "mosi_data", "mosei_senti_data", "mosei_raw", "humor", "sarcasm"),
        "multibench",
    ),
    **dict.fromkeys(("aligned_50", "unaligned_50", "unaligned_39"), "mmsa"),
}


def detect_format(path: str | Path) -> str:
    """The loader for a file: ``arrays`` for ``.npz`` / HDF5, and for pickles ``multibench``
    or ``mmsa`` by the released file names, else by the label keys inside."""
    path = Path(path)
    if path.suffix in (".npz", ".h5", ".hdf5"):
        return "arrays"
    if path.stem in KNOWN_FILES:
        return KNOWN_FILES[path.stem]
    if path.suffix not in (".pkl", ".pickle"):
        raise InputError(
            f"{path}: cannot tell the format from the name; use multibench:PATH, mmsa:PATH "
            "or arrays:PATH"
        )
    from mmfactor.data.safe_pickle import load_pickle

    doc = load_pickle(path)
    train = doc.get("train") if isinstance(doc, Mapping) else None
    if isinstance(train, Mapping) and "labels" in train:
        return "multibench"
    if isinstance(train, Mapping) and "regression_labels" in train:
        return "mmsa"
    raise InputError(
        f"{path}: neither a MultiBench (train/labels) nor an MMSA (train/regression_labels) "
        "pickle; use multibench:PATH or mmsa:PATH to see what is missing"
    )
