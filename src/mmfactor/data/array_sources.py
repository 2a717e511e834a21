"""Readers of ``arrays`` files: :class:`H5Array`, a lazy HDF5 dataset that reads only the
rows asked for (and reopens its file in each worker process), and the ``.npz`` and HDF5
sources that list a file's arrays and read them (:mod:`mmfactor.data.array_files` loads a
data set from them)."""

from __future__ import annotations

import math
import os
import tokenize
import zipfile
import zlib
from pathlib import Path
from typing import Any, cast

import h5py
import numpy as np

from mmfactor.data.files import file_error
from mmfactor.errors import InputError

_HDF5_SUFFIXES = (".h5", ".hdf5", ".hdf", ".he5")
_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
# Read errors of a truncated or corrupt file, from h5py, zipfile, zlib and np.load.
# zipfile raises NotImplementedError for a zip version or compression method it lacks (one
# flipped bit in a header makes either).
READ_ERRORS = (
    OSError,
    zipfile.BadZipFile,
    zlib.error,
    EOFError,
    ValueError,
    KeyError,
    NotImplementedError,
)


def one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text or exc.__class__.__name__


def is_numeric(dtype: np.dtype) -> bool:
    return bool(np.issubdtype(dtype, np.number) or np.issubdtype(dtype, np.bool_))


def keys_hint(keys: list[str], limit: int = 20) -> str:
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
                    self.path, None, self.key, f"cannot read: {one_line(exc)}"
                ) from None
            self._pid = pid
        return self._ds

    def _read(self, selection: tuple[Any, ...]) -> np.ndarray:
        try:
            out = self._dataset()[selection]
        except OSError as exc:
            raise file_error(self.path, None, self.key, f"cannot read: {one_line(exc)}") from None
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
        except READ_ERRORS as exc:  # a ValueError is taken above
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
        return f"cannot read the archive (truncated or corrupt?): {one_line(exc)}"

    def _check_member(self, key: str) -> None:
        """Refuse a member that is not an ``.npy`` array, or whose header claims more data
        than the archive holds, before NumPy allocates what the header claims (10**12 rows
        from a 1 KB file)."""
        zf = self._npz.zip
        assert zf is not None  # None once closed
        info = zf.getinfo(key if key in zf.namelist() else key + ".npy")  # NumPy's look-up
        with zf.open(info) as fh:
            if fh.read(len(np.lib.format.MAGIC_PREFIX)) != np.lib.format.MAGIC_PREFIX:
                raise file_error(self.path, None, key, "not an .npy array (np.savez writes those)")
            fh.seek(0)
            # A 3.0 header is a 2.0 header in UTF-8: read as Latin-1, only the field names of
            # a structured dtype differ, not the shape or the item size.
            if np.lib.format.read_magic(fh) == (1, 0):
                shape, _, dtype = np.lib.format.read_array_header_1_0(fh)
            else:
                shape, _, dtype = np.lib.format.read_array_header_2_0(fh)
            stored = info.file_size - fh.tell()
        declared = math.prod(shape) * dtype.itemsize
        if not dtype.hasobject and declared != stored:
            raise file_error(
                self.path,
                None,
                key,
                f"the header declares shape {shape} of {dtype} ({declared} bytes), but "
                f"{stored} bytes are stored (truncated or corrupt?)",
            )
        # The stored size is a claim of the zip directory: deflate expands at most 1032-fold.
        ratio = {zipfile.ZIP_STORED: 1, zipfile.ZIP_DEFLATED: 1032}.get(info.compress_type)
        size = self.path.stat().st_size
        if ratio is not None and info.file_size > ratio * size:
            raise file_error(
                self.path,
                None,
                key,
                f"claims {info.file_size} bytes, more than the {size}-byte archive can hold "
                "(corrupt?)",
            )

    def _array(self, key: str) -> np.ndarray:
        if key not in self._cache:
            try:
                self._check_member(key)
                self._cache[key] = self._npz[key]
            except InputError:
                raise
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
            except (*READ_ERRORS, SyntaxError, tokenize.TokenError) as exc:  # header parsing
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
                f"cannot read the HDF5 file (truncated or corrupt?): {one_line(exc)}",
            ) from None
        for name in names:
            if not isinstance(name, str):  # h5py hands over a name that is not UTF-8 as bytes
                raise file_error(
                    path, None, None, f"a data set name that is not UTF-8: {name!r} (corrupt?)"
                )
        self.keys = names

    def shape(self, key: str) -> tuple[int, ...]:
        ds = self._f[key]
        # Unwritten data (chunks never stored, a contiguous block never allocated) read as
        # fill values: a data set can declare 10**12 rows in a 2 KB file. Refused before
        # anything is read.
        if ds.size and not ds.external:
            if ds.chunks is None:
                missing = ds.id.get_storage_size() == 0
            else:
                per_axis = (-(-s // c) for s, c in zip(ds.shape, ds.chunks, strict=True))
                missing = ds.id.get_num_chunks() < math.prod(per_axis)
            if missing:
                raise file_error(
                    self.path,
                    None,
                    key,
                    f"shape {ds.shape} declared, but not all its data were written "
                    "(an interrupted or pre-allocated file?)",
                )
        return tuple(ds.shape)

    def dtype(self, key: str) -> np.dtype:
        return np.dtype(self._f[key].dtype)

    def small(self, key: str) -> np.ndarray:
        ds = self._f[key]
        try:
            if h5py.check_string_dtype(ds.dtype) is not None:
                return np.asarray(ds.asstr()[()], dtype=str)
            return np.asarray(ds[()])
        except (OSError, ValueError, UnicodeDecodeError) as exc:
            raise file_error(self.path, None, key, f"cannot read: {one_line(exc)}") from None

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


Source = _NpzSource | _H5Source


def open_source(path: Path) -> Source:
    suffix = path.suffix.lower()
    if suffix == ".npz":
        return _NpzSource(path)
    if suffix in _HDF5_SUFFIXES:
        return _H5Source(path)
    try:
        with path.open("rb") as fh:
            head = fh.read(8)
    except OSError as exc:
        raise file_error(path, None, None, f"cannot read: {one_line(exc)}") from None
    if head.startswith(b"PK"):
        return _NpzSource(path)
    if head == _HDF5_MAGIC:
        return _H5Source(path)
    raise file_error(
        path, None, None, "unknown format: expected an .npz archive or an HDF5 file (.h5, .hdf5)"
    )
