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

import json
import os
import zipfile
import zlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, cast

import h5py
import numpy as np
import yaml

from mmfactor.data.arrays import as_target, random_splits
from mmfactor.data.dataset import SPLITS, ModalityKind, ModalitySpec, MultimodalDataset, Target
from mmfactor.data.files import file_error, warn_notes
from mmfactor.errors import InputError
from mmfactor.yamlio import load_yaml_text

__all__ = ["H5Array", "load_arrays"]

_KIND_BY_NDIM: dict[int, ModalityKind] = {2: "vector", 3: "sequence", 4: "image"}
_NDIM_BY_KIND = {"vector": 2, "sequence": 3, "image": 4}
_TARGET_KINDS = ("classification", "regression")
_TOP_FIELDS = ("modalities", "targets", "split", "default_target")
_MODALITY_FIELDS = ("key", "kind", "lengths", "present")
_TARGET_FIELDS = ("key", "kind", "sentiment")
_SIDE_SUFFIXES = (".yaml", ".yml", ".json")
_HDF5_SUFFIXES = (".h5", ".hdf5", ".hdf", ".he5")
_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
#: Rows are scanned for NaN/inf in blocks of at most this many bytes.
BLOCK_BYTES = 64 * 2**20
# Read errors of a truncated or corrupt file, from h5py, zipfile, zlib and np.load.
_READ_ERRORS = (OSError, zipfile.BadZipFile, zlib.error, EOFError, ValueError, KeyError)


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text or exc.__class__.__name__


def _is_numeric(dtype: np.dtype) -> bool:
    return bool(np.issubdtype(dtype, np.number) or np.issubdtype(dtype, np.bool_))


def _keys_hint(keys: list[str], limit: int = 20) -> str:
    shown = ", ".join(keys[:limit]) or "none"
    return shown + (f", ... ({len(keys)} in all)" if len(keys) > limit else "")


class H5Array:
    """A read-only, lazily read HDF5 data set that reads like a float32 array.

    Indexing supports what batching and :meth:`MultimodalDataset.subset` use: an int, a slice,
    an integer index array (any order, duplicates allowed), and a tuple whose first entry is
    one of those (``a[idx, :t_max]``). Each read is converted to float32. The HDF5 file is
    opened on first read and again in every new process (DataLoader workers), since an h5py
    handle does not survive a fork; pickling (spawned workers) carries only the path and key.

    Args:
        path: the HDF5 file; key: the data set's path inside it.
    """

    def __init__(self, path: str | Path, key: str, shape: tuple[int, ...]) -> None:
        self.path, self.key = str(path), key
        self.shape = tuple(int(s) for s in shape)
        self.dtype = np.dtype(np.float32)
        self._file: Any = None
        self._ds: Any = None
        self._pid: int | None = None

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def __len__(self) -> int:
        return self.shape[0]

    def __repr__(self) -> str:
        return f"H5Array({self.path!r}, {self.key!r}, shape={self.shape})"

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_file": None, "_ds": None, "_pid": None}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)

    def _dataset(self) -> Any:
        pid = os.getpid()
        if self._ds is None or self._pid != pid:
            if self._file is not None:
                # A handle inherited through fork belongs to the parent's HDF5 state: closing
                # it here could disturb the parent, so it is parked, never closed, in the child.
                _INHERITED.append(self._file)
            try:
                self._file = h5py.File(self.path, "r", rdcc_nbytes=16 * 2**20)
                self._ds = self._file[self.key]
            except (OSError, KeyError) as exc:
                self._file = self._ds = None
                raise file_error(
                    self.path, None, self.key, f"cannot read: {_one_line(exc)}"
                ) from None
            self._pid = pid
        return self._ds

    def _read(self, selection: tuple[Any, ...]) -> np.ndarray:
        try:
            out = self._dataset()[selection]
        except OSError as exc:
            raise file_error(self.path, None, self.key, f"cannot read: {_one_line(exc)}") from None
        return np.asarray(out, dtype=np.float32)

    def __getitem__(self, item: Any) -> np.ndarray:
        rest: tuple[Any, ...] = ()
        if isinstance(item, tuple):
            item, rest = (item[0] if item else slice(None)), item[1:]
        if isinstance(item, slice):
            return self._read((item, *rest))
        n = self.shape[0]
        if isinstance(item, int | np.integer):
            i = int(item) + (n if int(item) < 0 else 0)
            if not 0 <= i < n:
                raise IndexError(f"index {int(item)} is out of bounds for size {n}")
            return self._read((i, *rest))
        idx = np.asarray(item)
        if idx.dtype == np.bool_:
            idx = np.flatnonzero(idx)
        if idx.ndim != 1 or not np.issubdtype(idx.dtype, np.integer):
            raise IndexError(f"H5Array: unsupported index {type(item).__name__} {idx.shape}")
        idx = np.where(idx < 0, idx + n, idx).astype(np.int64)
        if idx.size == 0:
            return self._read((slice(0, 0), *rest))
        if idx.min() < 0 or idx.max() >= n:
            raise IndexError(f"index out of bounds for size {n}")
        # h5py point selections need strictly increasing indices.
        inverse = None
        if idx.size > 1 and not bool((np.diff(idx) > 0).all()):
            idx, inverse = np.unique(idx, return_inverse=True)
        lo, hi = int(idx[0]), int(idx[-1]) + 1
        if hi - lo <= 2 * idx.size:
            # Dense batches: one contiguous read beats a point selection.
            out = self._read((slice(lo, hi), *rest))[idx - lo]
        else:
            out = self._read((idx, *rest))
        return out if inverse is None else out[inverse.reshape(-1)]

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        out = self._read((slice(None),))
        return out if dtype is None else out.astype(dtype, copy=False)

    def close(self) -> None:
        if self._file is not None and self._pid == os.getpid():
            self._file.close()
        self._file = self._ds = self._pid = None


_INHERITED: list[Any] = []


# ----------------------------------------------------------------------------- file readers


class _NpzSource:
    format = "npz"

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            npz = np.load(path, allow_pickle=False)
        except ValueError as exc:
            if "pickle" in str(exc):
                raise file_error(
                    path, None, None, "not an .npz archive (pickled data is refused)"
                ) from None
            raise file_error(path, None, None, self._corrupt(exc)) from None
        except (OSError, zipfile.BadZipFile, zlib.error, EOFError) as exc:
            raise file_error(path, None, None, self._corrupt(exc)) from None
        if not isinstance(npz, np.lib.npyio.NpzFile):
            raise file_error(
                path,
                None,
                None,
                "holds a single .npy array; expected an .npz archive of named arrays (np.savez)",
            )
        self._npz = npz
        self.keys = list(npz.files)
        self._cache: dict[str, np.ndarray] = {}

    @staticmethod
    def _corrupt(exc: BaseException) -> str:
        return f"cannot read the archive (truncated or corrupt?): {_one_line(exc)}"

    def _array(self, key: str) -> np.ndarray:
        if key not in self._cache:
            try:
                self._cache[key] = self._npz[key]
            except ValueError as exc:
                if "allow_pickle" in str(exc) or "Object arrays" in str(exc):
                    raise file_error(
                        self.path,
                        None,
                        key,
                        "an object array (pickled Python objects), which is refused; "
                        "store numeric or string arrays",
                    ) from None
                raise file_error(self.path, None, key, self._corrupt(exc)) from None
            except _READ_ERRORS as exc:
                raise file_error(self.path, None, key, self._corrupt(exc)) from None
        return self._cache[key]

    def shape(self, key: str) -> tuple[int, ...]:
        return tuple(self._array(key).shape)

    def dtype(self, key: str) -> np.dtype:
        return self._array(key).dtype

    def small(self, key: str) -> np.ndarray:
        return self._array(key)

    def modality(self, key: str) -> np.ndarray:
        return self._array(key).astype(np.float32, copy=False)

    def close(self) -> None:
        self._npz.close()
        self._cache.clear()


class _H5Source:
    format = "hdf5"

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self._f = h5py.File(path, "r")
            names: list[str] = []
            self._f.visititems(
                lambda name, obj: names.append(name) if isinstance(obj, h5py.Dataset) else None
            )
        except (OSError, RuntimeError, KeyError, ValueError) as exc:
            raise file_error(
                path,
                None,
                None,
                f"cannot read the HDF5 file (truncated or corrupt?): {_one_line(exc)}",
            ) from None
        self.keys = names

    def shape(self, key: str) -> tuple[int, ...]:
        return tuple(self._f[key].shape)

    def dtype(self, key: str) -> np.dtype:
        return np.dtype(self._f[key].dtype)

    def small(self, key: str) -> np.ndarray:
        ds = self._f[key]
        try:
            if h5py.check_string_dtype(ds.dtype) is not None:
                return np.asarray(ds.asstr()[()], dtype=str)
            return np.asarray(ds[()])
        except (OSError, ValueError, UnicodeDecodeError) as exc:
            raise file_error(self.path, None, key, f"cannot read: {_one_line(exc)}") from None

    def modality(self, key: str) -> np.ndarray:
        ds = self._f[key]
        offset = ds.id.get_offset() if ds.chunks is None and not ds.external else None
        if offset is not None and ds.dtype == np.float32 and ds.size > 0:
            end = offset + ds.size * ds.dtype.itemsize
            size = os.path.getsize(self.path)
            if end > size:
                raise file_error(
                    self.path,
                    None,
                    key,
                    f"data end at byte {end}, past the end of the {size}-byte file (truncated?)",
                )
            return np.memmap(self.path, dtype=ds.dtype, mode="r", offset=offset, shape=ds.shape)
        # The lazy wrapper is indexed like an array by batching and subset(); the data set
        # contract types arrays as ndarrays.
        return cast(np.ndarray, H5Array(self.path, key, ds.shape))

    def close(self) -> None:
        self._f.close()


_Source = _NpzSource | _H5Source


def _open(path: Path) -> _Source:
    suffix = path.suffix.lower()
    if suffix == ".npz":
        return _NpzSource(path)
    if suffix in _HDF5_SUFFIXES:
        return _H5Source(path)
    try:
        with path.open("rb") as fh:
            head = fh.read(8)
    except OSError as exc:
        raise file_error(path, None, None, f"cannot read: {_one_line(exc)}") from None
    if head.startswith(b"PK"):
        return _NpzSource(path)
    if head == _HDF5_MAGIC:
        return _H5Source(path)
    raise file_error(
        path, None, None, "unknown format: expected an .npz archive or an HDF5 file (.h5, .hdf5)"
    )


# ----------------------------------------------------------------------------- the mapping


def _side_file(path: Path) -> Path | None:
    for base in (path.name, path.stem):
        for suffix in _SIDE_SUFFIXES:
            candidate = path.with_name(base + suffix)
            if candidate.is_file():
                return candidate
    return None


def _read_mapping_file(where: Path) -> Any:
    try:
        text = where.read_text(encoding="utf-8")
        return json.loads(text) if where.suffix.lower() == ".json" else load_yaml_text(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        line = f"line {mark.line + 1}: " if mark is not None else ""
        raise InputError(f"{where}: cannot parse the mapping: {line}{exc.problem}") from None
    except json.JSONDecodeError as exc:
        raise InputError(
            f"{where}: cannot parse the mapping: line {exc.lineno}: {exc.msg}"
        ) from None
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise InputError(f"{where}: cannot read the mapping: {_one_line(exc)}") from None


def _entry(
    where: str, section: str, name: str, entry: Any, fields: tuple[str, ...]
) -> dict[str, Any]:
    if isinstance(entry, str):
        entry = {"key": entry}
    elif entry is None:
        entry = {}
    elif not isinstance(entry, Mapping):
        raise file_error(
            where,
            None,
            f"{section}.{name}",
            f"expected an array key or a mapping of "
            f"{', '.join(fields)}, got {type(entry).__name__}",
        )
    for field in entry:
        if field not in fields:
            raise file_error(
                where,
                None,
                f"{section}.{name}.{field}",
                f"unknown entry; expected one of {', '.join(fields)}",
            )
    out = {f: entry.get(f) for f in fields}
    out["key"] = name if out["key"] is None else out["key"]
    for field in ("key", "lengths", "present"):
        if field in out and out[field] is not None and not isinstance(out[field], str):
            raise file_error(
                where,
                None,
                f"{section}.{name}.{field}",
                f"expected an array key (a string), got {out[field]!r}",
            )
    return out


def _normalise(raw: Any, where: str) -> dict[str, Any]:
    """The mapping in its full form, its schema checked (not yet against the file)."""
    if not isinstance(raw, Mapping):
        raise file_error(
            where,
            None,
            None,
            f"the mapping must be a dict with {', '.join(_TOP_FIELDS)}; got {type(raw).__name__}",
        )
    for field in raw:
        if field not in _TOP_FIELDS:
            raise file_error(
                where, None, str(field), f"unknown mapping entry; expected {', '.join(_TOP_FIELDS)}"
            )
    mods_raw = raw.get("modalities")
    if not isinstance(mods_raw, Mapping) or not mods_raw:
        raise file_error(where, None, "modalities", "the mapping declares no modalities")
    mods = {}
    for name, entry in mods_raw.items():
        m = _entry(where, "modalities", str(name), entry, _MODALITY_FIELDS)
        if m["kind"] is not None and m["kind"] not in _NDIM_BY_KIND:
            raise file_error(
                where,
                None,
                f"modalities.{name}.kind",
                f"unknown kind {m['kind']!r}; expected vector, sequence or image",
            )
        mods[str(name)] = m
    tgts_raw = raw.get("targets") or {}
    if not isinstance(tgts_raw, Mapping):
        raise file_error(where, None, "targets", "expected a mapping of target names")
    tgts = {}
    for name, entry in tgts_raw.items():
        t = _entry(where, "targets", str(name), entry, _TARGET_FIELDS)
        if t["kind"] is not None and t["kind"] not in _TARGET_KINDS:
            raise file_error(
                where,
                None,
                f"targets.{name}.kind",
                f"unknown kind {t['kind']!r}; expected classification or regression",
            )
        t["sentiment"] = False if t["sentiment"] is None else t["sentiment"]
        if not isinstance(t["sentiment"], bool):
            raise file_error(
                where,
                None,
                f"targets.{name}.sentiment",
                f"expected true or false, got {t['sentiment']!r}",
            )
        if t["sentiment"] and t["kind"] == "classification":
            raise file_error(
                where,
                None,
                f"targets.{name}.sentiment",
                "sentiment marks continuous labels: the target must be a regression target",
            )
        tgts[str(name)] = t
    split = raw.get("split")
    if split is not None and not isinstance(split, str):
        raise file_error(where, None, "split", f"expected an array key, got {split!r}")
    default = raw.get("default_target")
    if default is not None and str(default) not in tgts:
        raise file_error(
            where,
            None,
            "default_target",
            f"{default!r} is not a target; targets: {', '.join(tgts) or '(none)'}",
        )
    return {
        "modalities": mods,
        "targets": tgts,
        "split": split,
        "default_target": None if default is None else str(default),
    }


def _convention(path: Path, keys: list[str]) -> tuple[dict[str, Any], list[str]]:
    """The mapping implied by the array names; the names it leaves unused."""
    mods: dict[str, Any] = {}
    tgts: dict[str, Any] = {}
    extras: dict[str, tuple[str, str]] = {}
    unused = []
    for k in keys:
        if k.startswith("x_") and len(k) > 2:
            mods[k[2:]] = {"key": k, "kind": None, "lengths": None, "present": None}
        elif k == "y" or (k.startswith("y_") and len(k) > 2):
            tgts[k if k == "y" else k[2:]] = {"key": k, "kind": None, "sentiment": False}
        elif k.startswith("present_") and len(k) > 8:
            extras[k] = ("present", k[8:])
        elif k.startswith("lengths_") and len(k) > 8:
            extras[k] = ("lengths", k[8:])
        elif k != "split":
            unused.append(k)
    if not mods:
        looked = ", ".join(f"{path.name}{s}" for s in _SIDE_SUFFIXES)
        raise file_error(
            path,
            None,
            None,
            f"no mapping (no mapping option, no side file such as {looked}) "
            f"and no arrays named x_<modality>; arrays: {_keys_hint(keys)}",
        )
    for k, (field, m) in extras.items():
        if m not in mods:
            raise file_error(
                path, None, k, f"{field} of modality {m!r}, but the file has no array 'x_{m}'"
            )
        mods[m][field] = k
    mapping = {
        "modalities": mods,
        "targets": tgts,
        "split": "split" if "split" in keys else None,
        "default_target": "y" if "y" in tgts else None,
    }
    return mapping, unused


def _resolve_mapping(
    path: Path, mapping: str | Path | Mapping[str, Any] | None, keys: list[str]
) -> tuple[dict[str, Any], str, str | None, list[str]]:
    """(mapping, where-prefix for messages, mapping source, notes)."""
    if mapping is None:
        side = _side_file(path)
        if side is None:
            resolved, unused = _convention(path, keys)
            notes = [f"arrays ignored (not x_/y/y_/split/present_/lengths_): {_keys_hint(unused)}"]
            return resolved, str(path), None, notes if unused else []
        mapping = side
    if isinstance(mapping, Mapping):
        source = "the mapping option"
        raw: Any = mapping
    elif isinstance(mapping, str | Path):
        mp = Path(mapping).expanduser()
        if not mp.is_file() and not mp.is_absolute() and (path.parent / mp).is_file():
            mp = path.parent / mp
        if not mp.is_file():
            raise InputError(f"{mp}: no such mapping file (the mapping of {path})")
        source = str(mp)
        raw = _read_mapping_file(mp)
    else:
        raise InputError(
            f"{path}: the mapping option must be a dict or a YAML/JSON file, got "
            f"{type(mapping).__name__}"
        )
    where = f"{path} (mapping {source})"
    resolved = _normalise(raw, where)
    refs = [
        (f"modalities.{m}", e[f])
        for m, e in resolved["modalities"].items()
        for f in ("key", "lengths", "present")
        if e[f] is not None
    ]
    refs += [(f"targets.{t}", e["key"]) for t, e in resolved["targets"].items()]
    if resolved["split"] is not None:
        refs.append(("split", resolved["split"]))
    known = set(keys)
    for ref, key in refs:
        if key not in known:
            raise file_error(
                where,
                None,
                key,
                f"missing from the file (named by {ref}); arrays: {_keys_hint(keys)}",
            )
    return resolved, where, source, []


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
    if values.shape != (n,) or not _is_numeric(values.dtype):
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
    if values.shape != (n,) or not _is_numeric(values.dtype):
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
    if not (_is_numeric(values.dtype) or values.dtype.kind == "U"):
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
    source = _open(p)
    try:
        return _load(p, source, mapping, seed, check_finite)
    finally:
        source.close()


def _load(
    p: Path,
    source: _Source,
    mapping: str | Path | Mapping[str, Any] | None,
    seed: int,
    check_finite: bool,
) -> MultimodalDataset:
    resolved, where, mapping_source, notes = _resolve_mapping(p, mapping, source.keys)
    mods, tgts = resolved["modalities"], resolved["targets"]

    # Equal N across every array used, the first modality's N being the reference.
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

    # Modality kinds and dtypes, before anything large is read.
    specs: dict[str, ModalitySpec] = {}
    for m, e in mods.items():
        key, shape, dtype = e["key"], shapes[e["key"]], source.dtype(e["key"])
        if not _is_numeric(dtype):
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
        if len(shape) != _NDIM_BY_KIND[kind]:
            raise file_error(
                p,
                None,
                key,
                f"modality {m!r}: a {kind} needs {_NDIM_BY_KIND[kind]} axes, got shape {shape}",
            )
        if kind != "sequence" and e["lengths"] is not None:
            raise file_error(where, None, e["lengths"], f"lengths for {kind} modality {m!r}")
        try:
            specs[m] = ModalitySpec(m, kind, tuple(shape[2:] if kind == "sequence" else shape[1:]))
        except InputError as exc:
            raise file_error(p, None, key, str(exc)) from None
        e["kind"] = kind

    # Splits first: later messages name the split of a bad sample.
    if resolved["split"] is not None:
        splits = _splits_from_array(p, resolved["split"], source.small(resolved["split"]), n)
    else:
        default = resolved["default_target"] or next(iter(tgts), None)
        strat = None
        if default is not None:
            t0 = _target(p, default, dict(tgts[default]), source.small(tgts[default]["key"]), n, {})
            strat = t0.values if t0.kind == "classification" else None
        splits = random_splits(n, seed=seed, stratify=strat)

    targets = {t: _target(p, t, e, source.small(e["key"]), n, splits) for t, e in tgts.items()}

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

    arrays = {m: source.modality(e["key"]) for m, e in mods.items()}
    if check_finite:
        for m, a in arrays.items():
            try:
                bad = _first_nonfinite(a)
            except InputError:
                raise
            except _READ_ERRORS as exc:
                raise file_error(
                    p, None, mods[m]["key"], f"cannot read: {_one_line(exc)}"
                ) from None
            if bad is not None:
                i, what = bad
                raise file_error(
                    p, _split_of(i, splits), mods[m]["key"], f"{what} values (first at sample {i})"
                )

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
