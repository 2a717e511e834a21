"""Mutations of valid data files, as small frozen dataclasses (hypothesis prints a failing
case as the list of mutations that made it) and the strategies that draw them.

- byte mutations of a serialised file: truncation, bit flips, overwritten runs;
- structural mutations of a dict of arrays before it is written: keys dropped, renamed or
  swapped, values cast to other dtypes (object, strings, complex, bool, ...), reshaped
  (axes added or dropped, rows cut or repeated), replaced by non-arrays, or poisoned with
  NaN, infinities and out-of-range integers.

Indices are taken modulo the size they index, so every mutation applies to every file.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

#: Row counts that a header or data set may claim: past int32, past memory, past int64 bytes.
HUGE_ROWS = (2**31 + 1, 10**9, 10**12, 2**62)

# ----------------------------------------------------------------------------- bytes


@dataclass(frozen=True)
class Truncate:
    at: int

    def apply(self, data: bytes) -> bytes:
        return data[: self.at % max(1, len(data))]


@dataclass(frozen=True)
class FlipBits:
    bits: tuple[int, ...]

    def apply(self, data: bytes) -> bytes:
        if not data:
            return data
        out = bytearray(data)
        for b in self.bits:
            out[(b // 8) % len(out)] ^= 1 << (b % 8)
        return bytes(out)


@dataclass(frozen=True)
class Overwrite:
    at: int
    run: bytes

    def apply(self, data: bytes) -> bytes:
        if not data:
            return data
        at = self.at % len(data)
        return data[:at] + self.run + data[at + len(self.run) :]


def byte_mutations(max_size: int = 3) -> st.SearchStrategy[list[Any]]:
    one = st.one_of(
        st.builds(Truncate, st.integers(0, 2**32)),
        st.builds(FlipBits, st.lists(st.integers(0, 2**40), min_size=1, max_size=8).map(tuple)),
        st.builds(
            Overwrite,
            st.integers(0, 2**32),
            st.one_of(
                st.binary(min_size=1, max_size=16),
                st.sampled_from([b"\xff" * 8, b"\x00" * 8, b"\x7f\xff\xff\xff\xff\xff\xff\xff"]),
            ),
        ),
    )
    return st.lists(one, min_size=1, max_size=max_size)


def apply_bytes(data: bytes, mutations: list[Any]) -> bytes:
    for m in mutations:
        data = m.apply(data)
    return data


# ----------------------------------------------------------------------------- structure

DTYPES = ("object", "U", "S", "complex128", "bool", "float16", "int8", "uint64", "int64", "M8")
RESHAPES = (
    "add_axis",
    "drop_axis",
    "flatten",
    "transpose",
    "scalar",
    "no_rows",
    "zero_width",
    "fewer_rows",
    "more_rows",
)
REPLACEMENTS = ("none", "int", "text", "empty_list", "dict", "ragged", "deep_list", "bytes")
POISONS = (float("nan"), float("inf"), float("-inf"), 3e38, -1.0, 2.0**40, -(2.0**62))
NAMES = ("x_a", "y", "split", "labels", "text", "audio", "id", "train", "a\nb", "é", "", "x_")


@dataclass(frozen=True)
class Drop:
    key: int


@dataclass(frozen=True)
class Rename:
    key: int
    name: str


@dataclass(frozen=True)
class Swap:
    key: int
    other: int


@dataclass(frozen=True)
class Retype:
    key: int
    dtype: str


@dataclass(frozen=True)
class Reshape:
    key: int
    how: str


@dataclass(frozen=True)
class Replace:
    key: int
    by: str


@dataclass(frozen=True)
class Poison:
    key: int
    at: int
    value: float


def structural_mutations(max_size: int = 3) -> st.SearchStrategy[list[Any]]:
    k = st.integers(0, 64)
    one = st.one_of(
        st.builds(Drop, k),
        st.builds(Rename, k, st.one_of(st.sampled_from(NAMES), st.text(max_size=8))),
        st.builds(Swap, k, k),
        st.builds(Retype, k, st.sampled_from(DTYPES)),
        st.builds(Reshape, k, st.sampled_from(RESHAPES)),
        st.builds(Replace, k, st.sampled_from(REPLACEMENTS)),
        st.builds(Poison, k, st.integers(0, 2**20), st.sampled_from(POISONS)),
    )
    return st.lists(one, min_size=1, max_size=max_size)


def _retype(a: np.ndarray, dtype: str) -> Any:
    if dtype == "S" and a.dtype.kind == "U":
        return np.char.encode(a, "utf-8")
    return a.astype(dtype)


def _reshape(a: np.ndarray, how: str) -> np.ndarray:
    if how == "add_axis":
        return a[:, None] if a.ndim else a[None]
    if how == "drop_axis":
        return a[..., 0] if a.ndim and a.shape[-1] else a.reshape(-1)
    if how == "flatten":
        return a.reshape(-1)
    if how == "transpose":
        return a.T
    if how == "scalar":
        return a.reshape(-1)[0] if a.size else np.float32(0)
    if how == "no_rows":
        return a[:0] if a.ndim else a
    if how == "zero_width":
        return a[:, :0] if a.ndim > 1 else a[:0]
    if how == "fewer_rows":
        return a[: len(a) // 2] if a.ndim else a
    return np.concatenate([a, a[:3]]) if a.ndim else a  # more_rows


def _replacement(by: str) -> Any:
    if by == "none":
        return None
    if by == "int":
        return 7
    if by == "text":
        return "not an array"
    if by == "empty_list":
        return []
    if by == "dict":
        return {"train": np.zeros(3)}
    if by == "ragged":
        return [np.zeros(3), np.zeros(5)]
    if by == "bytes":
        return b"\x00\x01"
    deep: Any = [0.0]
    for _ in range(500):  # deeper than NumPy's 64 axes, shallower than pickle's recursion
        deep = [deep]
    return deep


def _poison(a: np.ndarray, at: int, value: float) -> np.ndarray:
    if not a.size or a.dtype.kind not in "fiub":
        return a
    a = a.copy()
    flat = a.reshape(-1)
    try:
        with np.errstate(all="ignore"):
            flat[at % flat.size] = np.array(value).astype(a.dtype)
    except (ValueError, OverflowError):
        pass
    return a


def apply_structure(fields: dict[str, Any], mutations: list[Any]) -> dict[str, Any]:
    """``fields`` (a copy) after ``mutations``; a mutation that makes no sense for the value
    it lands on (casting text to complex) leaves it as it is."""
    out = dict(fields)
    for m in mutations:
        keys = list(out)
        if not keys:
            return out
        key = keys[m.key % len(keys)]
        if isinstance(m, Drop):
            del out[key]
        elif isinstance(m, Rename):
            out = {(m.name if k == key else k): v for k, v in out.items()}
        elif isinstance(m, Swap):
            other = keys[m.other % len(keys)]
            out[key], out[other] = out[other], out[key]
        elif isinstance(m, Replace):
            out[key] = _replacement(m.by)
        else:
            try:
                a = np.asarray(out[key])
            except ValueError:
                continue
            try:
                if isinstance(m, Retype):
                    out[key] = _retype(a, m.dtype)
                elif isinstance(m, Reshape):
                    out[key] = _reshape(a, m.how)
                else:
                    out[key] = _poison(a, m.at, m.value)
            except (ValueError, TypeError, IndexError, OverflowError, UnicodeError):
                continue
    return out


# ----------------------------------------------------------------------------- settings

#: Examples per test: a seeded corpus in CI; ``MMFACTOR_FUZZ_EXAMPLES=2000`` for a campaign,
#: which also draws a fresh random corpus each run (hypothesis prints the seed of a failure).
EXAMPLES = int(os.environ.get("MMFACTOR_FUZZ_EXAMPLES", "40"))
FUZZ = settings(
    max_examples=EXAMPLES,
    derandomize="MMFACTOR_FUZZ_EXAMPLES" not in os.environ,
    # The sandbox caps each case's time (a deadline cannot stop a hang); no database: the
    # corpus is the seed, and nothing is written into the working tree.
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
    print_blob=True,
)
